"""`darooghe rules set` changes: parsed and typed by field, validated, errors naming the input."""

from __future__ import annotations

import pytest

from darooghe.fraud.rule_edits import differences, next_version, parse_time_ms
from darooghe.fraud.ruleset import DEFAULT_RULESET, RuleSetError
from darooghe.schema import GEO_IMPOSSIBLE, VELOCITY


def test_changes_give_the_next_version_from_the_given_time():
    r = next_version(
        DEFAULT_RULESET,
        ["velocity_max_count=3", "enabled.VELOCITY=false", "geo_max_km=75.5"],
        1_000,
        "tighter velocity",
    )
    assert (r.version, r.effective_from_ms, r.comment) == (2, 1_000, "tighter velocity")
    assert r.velocity_max_count == 3 and r.geo_max_km == 75.5
    assert r.enabled == {**DEFAULT_RULESET.enabled, VELOCITY: False}
    assert r.is_enabled(GEO_IMPOSSIBLE)
    assert differences(DEFAULT_RULESET, r) == [
        "velocity_max_count: 5 -> 3",
        "geo_max_km: 50.0 -> 75.5",
        "enabled.VELOCITY: True -> False",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("velocity_window_ms=-5", "velocity_window_ms = -5; expected a positive window"),
        ("enabled.FOO=true", "'enabled.FOO=true': unknown rule 'FOO'"),
        ("enabled=true", "unknown rule ''"),
        ("speed=3", "'speed=3': unknown field 'speed'; the fields are"),
        ("geo_max_km=far", "'geo_max_km=far': 'far' is not a number"),
        ("geo_max_km=nan", "'geo_max_km=nan': 'nan' is not a finite number"),
        ("velocity_max_count=3.5", "'velocity_max_count=3.5': '3.5' is not an integer"),
        ("enabled.VELOCITY=maybe", "'maybe' is not true or false"),
        ("severity_points.extreme=5", "unknown severity 'extreme'"),
        ("version=9", "version is set by the command"),
        ("velocity_max_count", "expected field=value"),
        ("review_score=90", "block_score = 80; expected an integer >= review_score (90)"),
    ],
)
def test_bad_changes_name_the_input(change, message):
    with pytest.raises(RuleSetError) as err:
        next_version(DEFAULT_RULESET, [change], 0)
    assert message in str(err.value)


def test_no_change_is_refused():
    with pytest.raises(RuleSetError, match="no change given"):
        next_version(DEFAULT_RULESET, [], 0)


def test_effective_time_iso_or_epoch_ms():
    assert parse_time_ms("1774260000000") == 1_774_260_000_000
    assert parse_time_ms("2026-03-23T10:00:00Z") == parse_time_ms("2026-03-23T10:00:00")
    assert parse_time_ms("2026-03-23T13:30:00+03:30") == parse_time_ms("2026-03-23T10:00:00Z")
    with pytest.raises(RuleSetError, match="effective-from 'tomorrow'"):
        parse_time_ms("tomorrow")
