"""The project's Kafka topics: one definition of their names, partition counts and retention.

Retention is by record timestamp. History records carry their event time (up to MAX_HISTORY_DAYS
old), so a topic must keep records longer than that or the broker would delete a backfill at once.

A record timestamp may be at most the clock-skew allowance ahead of the broker's clock
(`message.timestamp.after.max.ms`, darooghe.validation.clock): the broker's 1-hour default let one
record hold event time an hour ahead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000
#: The longest history the generator writes; topic retention is longer.
MAX_HISTORY_DAYS = 28
RETENTION_MS = (MAX_HISTORY_DAYS + 7) * DAY_MS
TIMESTAMP_AFTER_MAX = "message.timestamp.after.max.ms"


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    description: str
    config: dict[str, str] = field(default_factory=dict)

    def broker_config(self, clock_skew_ms: int) -> dict[str, str]:
        """The topic's broker configuration; clock_skew_ms is Settings.clock_skew_ms."""
        return {
            "retention.ms": str(RETENTION_MS),
            TIMESTAMP_AFTER_MAX: str(clock_skew_ms),
            **self.config,
        }


#: Replication of every topic on a cluster (`services up --cluster`, docker-compose).
CLUSTER_REPLICATION = 3


def min_insync_replicas(replication: int) -> int:
    """Acknowledged writes (acks=all) survive one lost replica: all but one must have them."""
    return max(1, replication - 1)


def replication_config(replication: int) -> dict[str, str]:
    """The replication-dependent part of a topic's broker configuration."""
    return {"min.insync.replicas": str(min_insync_replicas(replication))}


TRANSACTIONS = Topic("darooghe.transactions", 4, "raw transaction events from the generator")
VALID_TRANSACTIONS = Topic(
    "darooghe.valid_transactions", 4, "validated, normalised transactions (read_committed)"
)
ERROR_LOGS = Topic("darooghe.error_logs", 2, "records that failed validation, with error codes")
FRAUD_ALERTS = Topic("darooghe.fraud_alerts", 2, "fraud alerts from the streaming fraud job")
#: The fraud job's dead letters: transactions behind its event-time watermark, whose windows are
#: gone (darooghe.fraud.late); as many partitions as the alerts, keyed the same way.
LATE_TRANSACTIONS = Topic(
    "darooghe.late_transactions",
    2,
    "transactions that reached the fraud job behind its watermark: the transaction, the watermark, "
    "the lag and the rules that still judged it, key = customer_id",
)
#: The fraud rules' parameters as data (darooghe.fraud.ruleset): one record per version, key = the
#: version number, so compaction keeps the whole history.
FRAUD_RULES = Topic(
    "darooghe.fraud_rules",
    1,
    "versioned fraud rule sets (thresholds, switches, decision scores), key = version, compacted",
    config={"cleanup.policy": "compact"},
)
#: A decision per transaction some rule fired on (REVIEW or BLOCK; APPROVE is not written).
FRAUD_DECISIONS = Topic(
    "darooghe.fraud_decisions",
    2,
    "REVIEW/BLOCK decisions with the risk score and the signals, key = customer_id",
)
METRICS_CATEGORY_VOLUME = Topic(
    "darooghe.metrics.category_volume", 1, "volume and amount per category, 1-min windows sliding 20 s"
)
METRICS_COMMISSION_BY_TYPE = Topic(
    "darooghe.metrics.commission_by_type", 1, "total commission by commission type per minute"
)
METRICS_COMMISSION_RATIO = Topic(
    "darooghe.metrics.commission_ratio", 1, "commission / amount by category, 1-min sliding 20 s"
)
METRICS_TOP_MERCHANTS = Topic(
    "darooghe.metrics.top_merchants", 1, "top 5 merchants by commission per 5-minute window"
)
#: Reference data, not events: compacted, one record per merchant (darooghe.merchant_reference).
MERCHANTS = Topic(
    "darooghe.merchants",
    1,
    "the generator's merchant register (reference data), key = merchant_id, compacted",
    config={"cleanup.policy": "compact"},
)

#: A dead letter is the refused record's own bytes plus headers; room above the broker's 1 MB default
#: so that a source record at that limit still fits with them.
DEAD_LETTER_MAX_BYTES = 2 * 1024 * 1024
SINK_DEAD_LETTERS = Topic(
    "darooghe.sink_dead_letters",
    1,
    "records a Kafka -> MongoDB sink could not store: the record as it was, source and error in headers",
    {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES)},
)

#: How far back the live metrics reach: the live charts draw this span, and a metrics query that
#: starts without a checkpoint begins at records this recent, not at a week of replayed history
#: (in `make demo` that history made ~310k metric documents, none of them drawn, and the sinks and
#: live charts spent ~80 s on them).
LIVE_METRICS_SPAN_MS = 3 * 60 * 60 * 1000

METRICS_TOPICS: tuple[Topic, ...] = (
    METRICS_CATEGORY_VOLUME,
    METRICS_COMMISSION_BY_TYPE,
    METRICS_COMMISSION_RATIO,
    METRICS_TOP_MERCHANTS,
)
ALL_TOPICS: tuple[Topic, ...] = (
    TRANSACTIONS,
    VALID_TRANSACTIONS,
    ERROR_LOGS,
    FRAUD_ALERTS,
    FRAUD_RULES,
    FRAUD_DECISIONS,
    LATE_TRANSACTIONS,
    *METRICS_TOPICS,
    SINK_DEAD_LETTERS,
    MERCHANTS,
)
BY_NAME = {t.name: t for t in ALL_TOPICS}

#: Kafka record header carrying the generator's ground-truth label (never in the JSON value).
LABEL_HEADER = "darooghe-label"
