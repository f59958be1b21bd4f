"""Charts: the pure helpers (unit) and every chart drawn from a small seeded MongoDB (integration),
including the "no data yet" pictures of an empty database."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from darooghe import schema
from darooghe.charts import catalog
from darooghe.charts import sources as src
from darooghe.charts.files import PLOTLY_JS
from darooghe.charts.model import Chart, Panel, irr_scale, palette_for, time_bucket
from darooghe_tests.chart_seed import (
    assert_real_picture,
    chart_documents,
    rollups,
    seed,
)

CHART_NAMES = [spec.name for spec in catalog.CHARTS]


# --- unit -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("peak", "expected"),
    [
        (0, (1.0, "IRR")),
        (9_999, (1.0, "IRR")),
        (850_000, (1e3, "thousand IRR")),
        (12_000_000, (1e6, "million IRR")),
        (9.4e10, (1e9, "billion IRR")),
    ],
)
def test_irr_scale_keeps_tick_labels_short(peak, expected):
    assert irr_scale(pd.Series([peak / 2, peak])) == expected


def test_scaled_panel_divides_the_irr_column_and_names_the_unit():
    panel = Panel(
        "Amount",
        "bar",
        pd.DataFrame({"k": ["a"], "amount": [25_000_000]}),
        x="k",
        y="amount",
        ylabel="Amount ({irr})",
        irr_column="amount",
    )
    scaled = panel.scaled()
    assert scaled.ylabel == "Amount (million IRR)" and scaled.data["amount"].tolist() == [25.0]
    assert panel.data["amount"].tolist() == [25_000_000]  # the original is untouched


def test_time_bucket_grows_with_the_span():
    hours = pd.Series(pd.date_range("2026-03-01", periods=30, freq="h"))
    assert time_bucket(hours) == pd.Timedelta(hours=1)
    assert time_bucket(
        pd.Series(pd.date_range("2026-03-01", periods=10, freq="D"))
    ) == pd.Timedelta(hours=6)
    assert time_bucket(
        pd.Series(pd.date_range("2026-01-01", periods=60, freq="D"))
    ) == pd.Timedelta(days=1)


def test_palette_is_stable_for_domain_values_and_distinct_within_a_panel():
    assert (
        palette_for(["VELOCITY"])["VELOCITY"]
        == palette_for(["AMOUNT_ANOMALY", "VELOCITY"])["VELOCITY"]
    )
    levels = ["Champions", "Loyal", "At risk", "New", "retail"]
    colors = palette_for(levels)
    assert len(set(colors.values())) == len(levels)


def test_panel_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind 'pie' is not one of"):
        Panel("x", "pie", pd.DataFrame())


def test_chart_note_names_empty_sources_and_panels():
    empty = Panel("A", "bar", pd.DataFrame(), source="transactions")
    full = Panel("B", "bar", pd.DataFrame({"x": [1]}), x="x", y="x")
    assert Chart("c", "C", [empty], ("transactions",)).note() == "no data yet: transactions empty"
    assert Chart("c", "C", [empty, full], ("transactions",)).note() == "no data yet for: A"


def test_every_chart_name_is_unique_and_reads_known_collections():
    assert len(set(CHART_NAMES)) == len(CHART_NAMES)
    known = {v for k, v in vars(src).items() if k.isupper() and isinstance(v, str)}
    for spec in catalog.CHARTS:
        assert set(spec.reads) <= known, spec.name
    with pytest.raises(KeyError, match="unknown chart 'pie'; expected one of volume_history"):
        catalog.chart_spec("pie")


# --- integration: FerretDB ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded(scratch_db, spark):
    return scratch_db, seed(scratch_db, spark)


@pytest.mark.integration
def test_grouped_computes_every_sum_despite_ferretdb_first_accumulator_limit(seeded):
    db, docs = seeded
    frame = pd.DataFrame(docs["transactions"])
    got = src.grouped(
        db,
        src.TRANSACTIONS,
        "merchant_category",
        {"n": 1, "amount": "amount", "fee": "commission_amount"},
    )
    expected = frame.groupby("merchant_category").agg(
        n=("amount", "size"), amount=("amount", "sum"), fee=("commission_amount", "sum")
    )
    got = got.set_index("merchant_category").sort_index()
    assert (
        got[["n", "amount", "fee"]]
        .astype(int)
        .equals(expected.sort_index()[["n", "amount", "fee"]].astype(int))
    )


@pytest.mark.integration
def test_grouped_top_n_matches_pandas(seeded):
    db, docs = seeded
    approved = pd.DataFrame(docs["transactions"]).query("status == 'approved'")
    expected = (
        approved.groupby("merchant_id")["commission_amount"]
        .sum()
        .sort_values(ascending=False)
        .head(5)
    )
    got = src.grouped(
        db,
        src.TRANSACTIONS,
        "merchant_id",
        {"fee": "commission_amount"},
        {"status": "approved"},
        sort="fee",
        limit=5,
    )
    assert got["merchant_id"].tolist() == expected.index.tolist()
    assert got["fee"].astype(int).tolist() == expected.astype(int).tolist()


@pytest.mark.integration
@pytest.mark.parametrize("name", CHART_NAMES)
def test_chart_renders_png_html_and_figure_from_seeded_data(seeded, tmp_path, name):
    db, _ = seeded
    chart, files = catalog.render(name, db, tmp_path)
    assert not chart.empty, chart.note()
    assert chart.empty_panels == []
    assert set(chart.sources) == set(catalog.chart_spec(name).reads)
    assert chart.rows_read > 0
    assert_real_picture(files.png_bytes)
    assert files.png.read_bytes() == files.png_bytes
    page = files.html.read_text()
    assert f'src="{PLOTLY_JS}"' in page and "cdn.plot.ly" not in page
    assert (tmp_path / PLOTLY_JS).stat().st_size > 1_000_000
    facts = json.loads(files.figure_json.read_text())
    assert facts["name"] == name and facts["empty"] is False
    assert len(facts["figure"]["data"]) >= len(chart.panels) - 1  # at least one trace per panel
    titles = [a["text"] for a in facts["figure"]["layout"]["annotations"]]
    assert {p.scaled().title for p in chart.panels} <= set(titles)


@pytest.mark.integration
def test_chart_contents_match_the_seeded_documents(seeded, tmp_path):
    db, docs = seeded
    frame = pd.DataFrame(docs["transactions"])

    top = catalog.chart_spec("top_merchants").build(db)
    by_count = frame.groupby("merchant_id").size().sort_values(ascending=False)
    assert top.panels[0].data["transactions"].tolist() == by_count.head(5).tolist()

    alerts = catalog.chart_spec("fraud_alerts").build(db)
    assert dict(zip(alerts.panels[1].data["rule"], alerts.panels[1].data["count"])) == {
        rule: 10 for rule in schema.FRAUD_RULES
    }
    assert alerts.panels[0].data["count"].sum() == 30

    errors = catalog.chart_spec("validation_errors").build(db)
    seeded_totals = pd.DataFrame(docs["error_summary"]).groupby("code")["count"].sum()
    assert (
        dict(zip(errors.panels[0].data["code"], errors.panels[0].data["count"]))
        == seeded_totals.to_dict()
    )

    heat = catalog.chart_spec("temporal_heatmap").build(db).panels[0].data
    assert heat.shape == (7, 24) and heat.index[0] == "Saturday" and heat.index[-1] == "Friday"
    assert heat.loc["Friday", 12] < heat.loc["Monday", 12]

    live = catalog.chart_spec("volume_live").build(db).panels[0].data
    assert (live["window_start"].dt.second == 0).all()  # whole-minute windows only: no triple count
    assert len(live) == 30 * len(schema.MERCHANT_CATEGORIES)

    ranking = catalog.chart_spec("top_merchants_live").build(db).panels[0].data
    assert ranking["rank"].tolist() == [1, 2, 3, 4, 5]
    assert ranking["merchant_id"].tolist() == [
        "merch_3",
        "merch_4",
        "merch_5",
        "merch_6",
        "merch_7",
    ]

    by_type = catalog.chart_spec("commission_by_type").build(db).panels[0].data
    approved = (
        frame.query("status == 'approved'").groupby("commission_type")["commission_amount"].sum()
    )
    assert dict(zip(by_type["commission_type"], by_type["total_commission"])) == approved.to_dict()


@pytest.mark.integration
def test_every_chart_draws_no_data_yet_on_an_empty_database(scratch_db, tmp_path):
    empty_db = scratch_db.client[scratch_db.name + "_empty"]
    try:
        for name in CHART_NAMES:
            chart, files = catalog.render(name, empty_db, tmp_path)
            assert chart.empty and chart.rows_read == 0, name
            assert chart.note().startswith("no data yet:"), name
            assert_real_picture(files.png_bytes, min_size=5_000)
            facts = json.loads(files.figure_json.read_text())
            assert facts["empty"] is True
            assert any(
                "No data yet" in a["text"] for a in facts["figure"]["layout"]["annotations"]
            ), name
    finally:
        scratch_db.client.drop_database(empty_db.name)


@pytest.mark.integration
def test_history_chart_falls_back_to_the_hourly_rollups_before_the_batch_layer_ran(
    scratch_db, spark, tmp_path
):
    db = scratch_db.client[scratch_db.name + "_partial"]
    try:
        for name, docs in rollups(spark, chart_documents(transactions=50)["transactions"]).items():
            db[name].insert_many(docs)
        chart = catalog.chart_spec("volume_history").build(db)
        assert not chart.panels[0].empty and chart.panels[0].data["transaction_count"].sum() == 50
        assert "transactions_hourly" in chart.panels[0].source
        users = catalog.chart_spec("user_activity").build(db)
        # per-customer counts and gaps need the profiles; active customers come from the rollup
        assert users.panels[0].empty and users.panels[1].empty and not users.panels[-1].empty
        assert "no data yet for:" in users.note()
    finally:
        scratch_db.client.drop_database(db.name)
