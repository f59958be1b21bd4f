"""A decision per alerted transaction: its risk score from the alerts and APPROVE/REVIEW/BLOCK.

The score and the thresholds are the rule set's (`RuleSet.score`, `RuleSet.decide`): the
severities of the rules that fired on the transaction plus its record's `risk_level`. A
transaction no rule fired on is always APPROVE (the rule set guarantees it), so decisions are
made from the alerts alone and only REVIEW and BLOCK are published.

The fraud job decides per micro-batch over the batch's alerts, in its stateful processor: all the
alerts of a transaction are in its customer's bucket, and the processor scores them with the very
rule history that judged them (darooghe.streaming.fraud_processor.output_frame). A transaction
whose alerts fall into two micro-batches (a late event completing a VELOCITY pattern for a later
transaction) gets a decision in each, the later from the later alerts only; the decision store
keeps the latest per transaction.

Which rule set scores a transaction: the version named by its alerts (`rule_set_version`), else
the one active at its event time. `risk_level` and `rule_set_version` are read from the alert
value when it carries them; an alert without `risk_level` counts as the lowest risk level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from darooghe.fraud.ruleset import APPROVE, RuleHistory, RuleSet
from darooghe.fraud.txn import iso_ms, parse_event_ms
from darooghe.schema import RISK_LEVELS

#: An alert value without `risk_level` (detectors before the field existed) scores as this.
DEFAULT_RISK_LEVEL = RISK_LEVELS[0]
DECISIONS_SIDE = "fraud_decisions"  # the side output name: file mode's FILE.fraud_decisions.jsonl


def ruleset_for(history: RuleHistory, alert: Mapping) -> RuleSet:
    """The version an alert names (when the history has it), else the one at its event time."""
    version = alert.get("rule_set_version")
    if version is not None:
        for ruleset in history.versions:
            if ruleset.version == version:
                return ruleset
    return history.at(parse_event_ms(alert["event_time"]))


def decide_transactions(
    alerts: Iterable[Mapping], history: RuleHistory, decided_ms: int
) -> list[dict]:
    """Decision values (REVIEW and BLOCK only) for the transactions these alerts are about, in
    the order of their first alert."""
    by_txn: dict[str, dict[str, Mapping]] = {}
    for alert in alerts:
        by_txn.setdefault(alert["transaction_id"], {})[alert["rule"]] = alert
    out = []
    for transaction_id, fired in by_txn.items():
        first = next(iter(fired.values()))
        ruleset = ruleset_for(history, first)
        risk_level = int(
            next(
                (a["risk_level"] for a in fired.values() if a.get("risk_level") is not None),
                DEFAULT_RISK_LEVEL,
            )
        )
        score = ruleset.score((a["severity"] for a in fired.values()), risk_level)
        decision = ruleset.decide(score)
        if decision == APPROVE:
            continue
        out.append(
            {
                "transaction_id": transaction_id,
                "customer_id": first["customer_id"],
                "event_time": first["event_time"],
                "score": score,
                "decision": decision,
                "rules": [
                    {"rule": rule, "severity": a["severity"], "alert_id": a["alert_id"]}
                    for rule, a in sorted(fired.items())
                ],
                "risk_level": risk_level,
                "rule_set_version": ruleset.version,
                "decided_at": iso_ms(decided_ms),
            }
        )
    return out
