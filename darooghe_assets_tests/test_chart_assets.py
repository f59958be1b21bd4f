"""Chart assets: each materialises from a small seeded MongoDB with its PNG inline in the metadata,
its files on disk, and the dashboard gathers them; on an empty database they still materialise."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg
import pytest

from darooghe.charts import catalog
from darooghe.charts.dashboard import DASHBOARD
from darooghe_assets import constants as c
from darooghe_assets.assets.charts import COLLECTION_KEYS, chart_assets, chart_key, dashboard
from darooghe_assets.resources import MongoResource, SettingsResource
from darooghe_tests.chart_seed import assert_real_picture, seed

CHART_KEYS = [chart_key(spec.name) for spec in catalog.CHARTS]
_INLINE_PNG = re.compile(r"^!\[[^\]]+\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def _materialize(settings, database: str) -> dict[dg.AssetKey, dict]:
    result = dg.materialize(
        [*chart_assets, dashboard],
        resources={
            "mongo": MongoResource(uri=settings.mongo_uri, database=database),
            "settings": SettingsResource.of(settings),
        },
    )
    assert result.success
    return {
        e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()
    }


def test_chart_assets_are_wired_to_the_collections_they_read():
    assert [a.key for a in chart_assets] == CHART_KEYS
    for spec, asset in zip(catalog.CHARTS, chart_assets):
        deps = set(asset.asset_deps[asset.key])
        assert deps == {COLLECTION_KEYS[name] for name in spec.reads}, spec.name
        assert asset.group_names_by_key[asset.key] == c.GROUP_CHARTS
        assert asset.specs_by_key[asset.key].kinds == {"seaborn", "plotly", "mongodb"}
    assert set(dashboard.asset_deps[c.DASHBOARD]) == set(CHART_KEYS)


@pytest.mark.integration
def test_every_chart_asset_materialises_with_its_png_inline_and_files(stack, spark, scratch_db):
    seed(scratch_db, spark)
    metadata = _materialize(stack, scratch_db.name)
    assert set(metadata) == {*CHART_KEYS, c.DASHBOARD}
    for key in CHART_KEYS:
        meta = metadata[key]
        match = _INLINE_PNG.match(meta["plot"].value)
        assert match, f"{key.to_user_string()}: plot is not an inline PNG"
        png = base64.b64decode(match.group(1))
        assert_real_picture(png)
        png_path, html_path = Path(meta["png"].value), Path(meta["html"].value)
        assert png_path.parent == stack.charts_dir
        assert png_path.read_bytes() == png
        assert html_path.is_file() and html_path.stat().st_size > 1000
        assert meta["empty"].value is False and meta["rows_read"].value > 0
        assert "no data yet" not in meta["note"].value
    board = metadata[c.DASHBOARD]
    assert board["charts"].value == len(CHART_KEYS)
    assert board["empty_charts"].value == "none" and board["missing_charts"].value == "none"
    assert Path(board["path"].value) == stack.charts_dir / DASHBOARD


@pytest.mark.integration
def test_chart_assets_on_an_empty_database_say_no_data_yet(stack, scratch_db):
    empty = scratch_db.name + "_empty"
    try:
        metadata = _materialize(stack, empty)
    finally:
        scratch_db.client.drop_database(empty)
    for key in CHART_KEYS:
        assert metadata[key]["empty"].value is True
        assert metadata[key]["note"].value.startswith("no data yet:")
        assert _INLINE_PNG.match(metadata[key]["plot"].value)
    assert metadata[c.DASHBOARD]["empty_charts"].value.split(", ") == [
        s.name for s in catalog.CHARTS
    ]


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")  # raised inside Dagster's evaluator
def test_charts_are_redrawn_once_the_collections_they_read_change():
    instance = dg.DagsterInstance.ephemeral()
    collections = [dg.AssetSpec(key) for key in dict.fromkeys(COLLECTION_KEYS.values())]
    defs = dg.Definitions(
        assets=[*chart_assets, dashboard, *collections],
        resources={
            "mongo": MongoResource(uri="mongodb://127.0.0.1:1/", database="unused"),
            "settings": SettingsResource(home="/nonexistent", build="/nonexistent"),
        },  # never run
    )

    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing to draw from yet

    instance.report_runless_asset_event(dg.AssetMaterialization(c.LIVE_CATEGORY_VOLUME))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_num_requested(chart_key("volume_live")) == 1
    assert second.total_requested == 1  # only the chart reading that collection
