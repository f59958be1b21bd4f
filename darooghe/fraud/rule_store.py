"""Where the fraud rule sets live: the compacted Kafka topic `darooghe.fraud_rules`.

One record per version, key = the version number, value = `RuleSet.to_json()`. Compaction keeps
the last record of each key, so the topic always holds the whole history (a version is never
rewritten: `publish_rule_set` only appends newer ones). Kafka rather than a MongoDB collection
because the fraud job already reads Kafka on every micro-batch and the history must be there even
when the database is down; a compacted topic is a durable, ordered, replayable log of versions.

The fraud job reads the history on every micro-batch through `RuleRefresher` (a cheap end-offset
check, a full read only when the topic grew) into a `RuleSnapshot` file its tasks read.

Version 1 is the specification's `DEFAULT_RULESET` unless the topic holds its own version 1, so an
empty (or missing) topic means the default history and the first published change is version 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from darooghe.config import Settings, load_settings
from darooghe.fraud.rule_snapshot import RuleSnapshot
from darooghe.fraud.ruleset import (
    DEFAULT_HISTORY,
    DEFAULT_RULESET,
    RuleHistory,
    RuleSet,
    RuleSetError,
)
from darooghe.kafka_io import (
    UnknownTopicError,
    consume_all,
    consumer_config,
    ensure_topics,
    produce_records,
)
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


def load_rules_file(path: str | Path) -> RuleHistory:
    """A rule history from a JSON file: a list of rule sets (RuleHistory.to_json) or one rule set
    (it then follows the default version 1 unless it is version 1 itself)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuleSetError(f"{path}: no such rules file (expected JSON rule sets)") from None
    except ValueError as exc:
        raise RuleSetError(f"{path}: not JSON ({exc})") from None
    sets = data if isinstance(data, list) else [data]
    try:
        records = [Record(None, json.dumps(d), 0, {}, 0, i) for i, d in enumerate(sets)]
        return history_from_records(records, str(path))
    except RuleSetError as exc:
        raise RuleSetError(f"{path}: {exc}") from None


class RuleSource:
    """Where the job's rule history comes from: the rule-set topic, or a JSON file."""

    def __init__(
        self,
        settings: Settings | None = None,
        topic: str | None = FRAUD_RULES.name,
        path: str | Path | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.topic = None if path else topic
        self.path = Path(path) if path else None
        self._consumer = None

    def describe(self) -> str:
        if self.path:
            return f"file {self.path}"
        return f"Kafka topic {self.topic}" if self.topic else "the specification's defaults"

    def fingerprint(self) -> str:
        """Changes whenever the history may have changed: the file's mtime and size, or the
        topic's end offsets (one metadata and one offsets request: cheap enough for every batch)."""
        if self.path:
            st = self.path.stat()
            return f"{st.st_mtime_ns}:{st.st_size}"
        if not self.topic:
            return "default"
        from confluent_kafka import Consumer, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer(consumer_config(None, self.settings))
        md = self._consumer.list_topics(self.topic, timeout=5)
        meta = md.topics.get(self.topic)
        if meta is None or meta.error is not None:
            return "missing"
        ends = [
            self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=5, cached=False
            )
            for p in sorted(meta.partitions)
        ]
        return repr(ends)

    def load(self) -> RuleHistory:
        if self.path:
            return load_rules_file(self.path)
        if not self.topic:
            return DEFAULT_HISTORY
        return load_rule_history(self.settings, self.topic)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class RuleRefresher:
    """Driver side: before each micro-batch runs, bring the snapshot in step with the source.

    Called from foreachBatch before the batch's tasks start (they read the snapshot when they
    start), as darooghe.fraud.profiles does for the averages, but on every batch: the check is two
    small Kafka requests, and a new version then judges from the next batch on. A version applies
    by event time (`effective_from_ms`), so a batch that runs before the check and a batch that
    runs after it agree on every transaction the version does not reach back to. A source that
    cannot be read keeps the previous history (fraud detection goes on).
    """

    def __init__(self, source: RuleSource, snapshot: RuleSnapshot, log=print) -> None:
        self.source = source
        self.snapshot = snapshot
        self.log = log
        self._fingerprint: str | None = None
        self.history: RuleHistory = DEFAULT_HISTORY

    @property
    def version(self) -> int:
        return self.history.latest.version

    def refresh(self) -> bool:
        """Reload when the source changed; returns True when a new snapshot was written."""
        try:
            fp = self.source.fingerprint()
            if fp == self._fingerprint:
                return False
            history = self.source.load()
        except Exception as exc:  # noqa: BLE001 — an unreadable source must not stop detection
            self.log(
                f"rules: cannot read {self.source.describe()} ({exc}); keeping rule set "
                f"v{self.version}"
            )
            if not Path(self.snapshot.path).exists():
                self.snapshot.write(self.history)
            return False
        changed = history != self.history or not Path(self.snapshot.path).exists()
        self._fingerprint = fp
        if changed:
            self.snapshot.write(history)
            self.history = history
            latest = history.latest
            self.log(
                f"rules: {len(history.versions)} version(s) from {self.source.describe()}; latest "
                f"v{latest.version} from event time {latest.effective_from_ms} ({latest.comment})"
            )
        return changed
