"""The fraud alert published on `darooghe.fraud_alerts`.

`alert_id` is a hash of rule and transaction_id only, so a replay, a restarted batch or a second
detector produces the same id for the same finding and sinks deduplicate on it. `detected_at` is
wall-clock time at detection and differs between such duplicates; everything else is a function of
the events the detector had seen when it fired.

The detector's alerts also carry `rule_set_version` (the version of the rule set that judged the
transaction, `darooghe.fraud.ruleset`) and the transaction's `risk_level` (the decision score reads
it); an alert made without them (a test, a tool) leaves the two keys out.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from darooghe.fraud.rules import RULES
from darooghe.fraud.txn import Txn, iso_ms


def alert_id(rule: str, transaction_id: str) -> str:
    """Deterministic id of the finding "rule fired on transaction"."""
    if rule not in RULES:
        raise ValueError(f"rule {rule!r} is not one of {', '.join(RULES)}")
    return hashlib.sha256(f"{rule}|{transaction_id}".encode()).hexdigest()[:32]


def value_json(value: dict) -> str:
    """An alert's or a decision's value as published: compact JSON, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Alert:
    rule: str
    transaction_id: str
    customer_id: str
    event_ms: int
    detected_ms: int
    evidence: dict = field(compare=False)
    severity: str = field(compare=False)
    rule_set_version: int | None = field(default=None, compare=False)
    risk_level: int | None = field(default=None, compare=False)

    @property
    def alert_id(self) -> str:
        return alert_id(self.rule, self.transaction_id)

    @property
    def finding(self) -> tuple[str, str]:
        """(rule, transaction_id): what "alerted at most once" is about."""
        return (self.rule, self.transaction_id)

    def to_value(self) -> dict:
        value = {
            "alert_id": self.alert_id,
            "rule": self.rule,
            "transaction_id": self.transaction_id,
            "customer_id": self.customer_id,
            "event_time": iso_ms(self.event_ms),
            "detected_at": iso_ms(self.detected_ms),
            "evidence": self.evidence,
            "severity": self.severity,
        }
        if self.rule_set_version is not None:
            value["rule_set_version"] = self.rule_set_version
        if self.risk_level is not None:
            value["risk_level"] = self.risk_level
        return value

    def to_json(self) -> str:
        return value_json(self.to_value())


def make_alert(
    rule: str,
    t: Txn,
    evidence: dict,
    detected_ms: int | None = None,
    rule_set_version: int | None = None,
) -> Alert:
    """The alert of `rule` on t; risk_level comes from the transaction (None when not known)."""
    return Alert(
        rule=rule,
        transaction_id=t.transaction_id,
        customer_id=t.customer_id,
        event_ms=t.event_ms,
        detected_ms=now_ms() if detected_ms is None else detected_ms,
        evidence=evidence,
        severity=RULES[rule].severity(evidence),
        rule_set_version=rule_set_version,
        risk_level=t.risk_level,
    )
