"""Run config that names a topic, a path or a clock is checked against allow-lists: from the
Dagster launchpad nobody can backfill into the validated topic, point the lake at any directory,
or set a future clock that empties the 24-hour store."""

from __future__ import annotations

import datetime as dt

import pydantic
import pytest

from darooghe import topics
from darooghe.config import load_settings
from darooghe_assets.assets.generator import HistoricalBackfillConfig
from darooghe_assets.assets.lake import LakeConfig
from darooghe_assets.assets.storage import ClockConfig
from darooghe_assets.checks.validation import ErrorRateCheckConfig


@pytest.fixture()
def production(monkeypatch):
    """No extra topics or roots allowed: the defaults of a deployment."""
    monkeypatch.delenv("DAROOGHE_RUN_CONFIG_TOPICS", raising=False)
    monkeypatch.delenv("DAROOGHE_RUN_CONFIG_ROOTS", raising=False)


@pytest.mark.parametrize(
    "topic", [topics.VALID_TRANSACTIONS.name, topics.FRAUD_ALERTS.name, "anything.else"]
)
def test_backfill_topic_outside_the_allow_list_is_refused(production, topic):
    with pytest.raises(pydantic.ValidationError, match=rf"topic {topic!r} is not allowed"):
        HistoricalBackfillConfig(topic=topic)
    assert HistoricalBackfillConfig().topic == topics.TRANSACTIONS.name


def test_extra_topics_never_open_another_project_topic(monkeypatch):
    monkeypatch.setenv("DAROOGHE_RUN_CONFIG_TOPICS", "*")
    assert HistoricalBackfillConfig(topic="test.backfill.1").topic == "test.backfill.1"
    with pytest.raises(pydantic.ValidationError, match="not allowed"):
        HistoricalBackfillConfig(topic=topics.VALID_TRANSACTIONS.name)


def test_lake_source_topic_is_checked(production):
    with pytest.raises(pydantic.ValidationError, match="not allowed"):
        LakeConfig(source_topic=topics.TRANSACTIONS.name)  # unvalidated records into the lake


@pytest.mark.parametrize("field", ["lake_dir", "checkpoint_dir"])
def test_lake_paths_must_stay_under_the_home(production, field):
    home = load_settings().home
    assert LakeConfig(**{field: str(home / "lake2")})
    for outside in ("/etc/darooghe", str(home / ".." / "elsewhere"), "relative/dir"):
        with pytest.raises(pydantic.ValidationError, match=rf"{field} .* is not under"):
            LakeConfig(**{field: outside})


def test_future_clock_beyond_the_skew_allowance_is_refused(production):
    now = dt.datetime.now(dt.UTC)
    assert ClockConfig(now=now.isoformat()).instant() <= now + dt.timedelta(seconds=1)
    assert ClockConfig(now="2026-03-23T12:00:00Z")  # a past instant: replays
    with pytest.raises(pydantic.ValidationError, match="in the future"):
        ClockConfig(now=(now + dt.timedelta(hours=2)).isoformat())
    with pytest.raises(pydantic.ValidationError, match="time zone"):
        ClockConfig(now="2026-03-23T12:00:00")


def test_error_rate_check_topics_are_checked(production):
    with pytest.raises(pydantic.ValidationError, match="not allowed"):
        ErrorRateCheckConfig(error_topic=topics.VALID_TRANSACTIONS.name)
