"""Where the fraud rule sets live: the compacted Kafka topic `darooghe.fraud_rules`.

One record per version, key = the version number, value = `RuleSet.to_json()`. Compaction keeps
the last record of each key, so the topic always holds the whole history (a version is never
rewritten: `publish_rule_set` only appends newer ones). Kafka rather than a MongoDB collection
because the fraud job already reads Kafka on every micro-batch and the history must be there even
when the database is down; a compacted topic is a durable, ordered, replayable log of versions.

Version 1 is the specification's `DEFAULT_RULESET` unless the topic holds its own version 1, so an
empty (or missing) topic means the default history and the first published change is version 2.
"""

from __future__ import annotations

import time

from darooghe.config import Settings, load_settings
from darooghe.fraud.ruleset import DEFAULT_RULESET, RuleHistory, RuleSet, RuleSetError
from darooghe.kafka_io import UnknownTopicError, consume_all, ensure_topics, produce_records
from darooghe.records import Record
from darooghe.topics import FRAUD_RULES


def history_from_records(records, topic: str = FRAUD_RULES.name) -> RuleHistory:
    """The rule history held by a topic's records (in offset order; a later key wins)."""
    by_version: dict[int, RuleSet] = {}
    for rec in records:
        where = f"{topic} partition {rec.partition} offset {rec.offset}"
        if not rec.value:
            continue  # a tombstone: compaction will drop the key; it holds no rule set
        try:
            ruleset = RuleSet.from_json(rec.value)
        except (RuleSetError, TypeError) as exc:
            raise RuleSetError(f"{where}: {exc}") from None
        if rec.key is not None and rec.key != str(ruleset.version):
            raise RuleSetError(
                f"{where}: key {rec.key!r} does not match the rule set's version "
                f"{ruleset.version}; expected key = version"
            )
        by_version[ruleset.version] = ruleset
    by_version.setdefault(DEFAULT_RULESET.version, DEFAULT_RULESET)
    try:
        return RuleHistory(tuple(by_version.values()))
    except RuleSetError as exc:
        raise RuleSetError(f"{topic}: {exc}") from None


def load_rule_history(
    settings: Settings | None = None, topic: str = FRAUD_RULES.name
) -> RuleHistory:
    """Read the rule-set topic to its end; an empty or missing topic gives DEFAULT_HISTORY."""
    s = settings or load_settings()
    try:
        records = list(consume_all(topic, s, idle_timeout=2.0))
    except UnknownTopicError:
        records = []
    return history_from_records(records, topic)


def publish_rule_set(
    settings: Settings | None, ruleset: RuleSet, topic: str = FRAUD_RULES.name
) -> RuleHistory:
    """Append `ruleset` as the next version; returns the history with it.

    Validated against the stored history first (`RuleHistory.with_version`: a newer version, from
    an event time at or after the latest one's), so a refused set is never written. Two writers
    publishing at once are not serialised here: the later one's version may then collide, which
    the reader reports (duplicate key = the later record wins, as compaction would do).
    """
    s = settings or load_settings()
    history = load_rule_history(s, topic).with_version(ruleset)
    if topic == FRAUD_RULES.name:
        ensure_topics([FRAUD_RULES], s)
    produce_records(
        topic,
        [Record(str(ruleset.version), ruleset.to_json(), int(time.time() * 1000))],
        s,
        keep_partitions=False,
    )
    return history
