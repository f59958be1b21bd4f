"""The rule-set store: the compacted topic read to its end, versions appended with validation."""

from __future__ import annotations

import pytest

from darooghe.fraud.rule_store import history_from_records, load_rule_history, publish_rule_set
from darooghe.fraud.ruleset import DEFAULT_HISTORY, DEFAULT_RULESET, RuleSetError
from darooghe.records import Record


def _rec(ruleset, offset, key=None):
    return Record(key or str(ruleset.version), ruleset.to_json(), 0, {}, 0, offset)


def test_no_records_is_the_default_history():
    assert history_from_records([]) == DEFAULT_HISTORY


def test_records_add_to_the_default_version_one():
    v2 = DEFAULT_RULESET.changed(2, 1_000, velocity_max_count=3)
    history = history_from_records([_rec(v2, 0)])
    assert [r.version for r in history.versions] == [1, 2]
    assert history.at(999).velocity_max_count == 5
    assert history.at(1_000).velocity_max_count == 3


def test_a_stored_version_one_replaces_the_default():
    v1 = DEFAULT_RULESET.changed(1, 0, geo_max_km=80.0)
    assert history_from_records([_rec(v1, 0)]).at(0).geo_max_km == 80.0


def test_a_bad_record_is_named_by_offset():
    bad = Record("2", '{"version": 2, "velocity_window_ms": -5}', 0, {}, 0, 7)
    with pytest.raises(RuleSetError, match=r"offset 7: .*velocity_window_ms = -5"):
        history_from_records([bad])
    v2 = DEFAULT_RULESET.changed(2, 0)
    with pytest.raises(RuleSetError, match="key '3' does not match"):
        history_from_records([_rec(v2, 3, key="3")])


@pytest.mark.integration
def test_publish_then_load_round_trip(stack, unique_topic):
    topic = unique_topic("fraud-rules")
    assert load_rule_history(stack, topic) == DEFAULT_HISTORY
    assert load_rule_history(stack, "no.such.rules.topic") == DEFAULT_HISTORY
    v2 = DEFAULT_RULESET.changed(2, 5_000, amount_factor=4.0, enabled={"VELOCITY": False})
    published = publish_rule_set(stack, v2, topic)
    loaded = load_rule_history(stack, topic)
    assert loaded == published
    assert loaded.at(5_000) == v2 and not loaded.at(5_000).is_enabled("VELOCITY")
    with pytest.raises(RuleSetError, match="not newer"):
        publish_rule_set(stack, DEFAULT_RULESET.changed(2, 6_000), topic)
    with pytest.raises(RuleSetError, match="before the latest"):
        publish_rule_set(stack, DEFAULT_RULESET.changed(3, 4_000), topic)
    assert load_rule_history(stack, topic) == published  # nothing refused was written
