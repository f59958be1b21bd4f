"""How good the alerts are: per rule precision, recall and false-positive rate against the
generator's labels, the agreement with the oracle, and the first wrong alerts with their evidence.

The labels (Kafka header `darooghe-label` on each valid transaction) say what each rule gives on the
full stream with the generator's running averages; the oracle (darooghe.fraud.reference) says what
it gives with the averages and the rule history the detector had. So a disagreement with the labels
that the oracle shares is a difference of inputs (e.g. the batch profile's average against the
running one for AMOUNT_ANOMALY), and one the oracle does not share is a detector error.

Per rule, over the transactions given: precision = alerted and labelled / alerted; recall =
alerted and labelled / labelled; false-positive rate = alerted but not labelled / transactions not
labelled; oracle agreement = |alerts ∩ oracle| / |alerts ∪ oracle| (1.0 when both are empty).
An alert on a transaction outside the set given counts as not labelled. A source that labels
only some rules (the streaming bench labels its amount spikes) names them: the others get no
precision, recall or false-positive rate, only the oracle's agreement.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from darooghe.schema import FRAUD_RULES

Finding = tuple[str, str]  # (rule, transaction_id)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class RuleQuality:
    rule: str
    alerts: int
    labelled: int
    true_positives: int
    false_positives: int
    false_negatives: int
    negatives: int  # transactions the labels say this rule does not fire on
    oracle: int | None = None  # findings of the oracle for this rule (None: no oracle given)
    oracle_common: int | None = None
    has_labels: bool = True  # False: the source does not label this rule

    @property
    def precision(self) -> float | None:
        return _ratio(self.true_positives, self.alerts) if self.has_labels else None

    @property
    def recall(self) -> float | None:
        return _ratio(self.true_positives, self.labelled) if self.has_labels else None

    @property
    def false_positive_rate(self) -> float | None:
        return _ratio(self.false_positives, self.negatives) if self.has_labels else None

    @property
    def oracle_agreement(self) -> float | None:
        if self.oracle is None or self.oracle_common is None:
            return None
        union = self.alerts + self.oracle - self.oracle_common
        return self.oracle_common / union if union else 1.0


@dataclass(frozen=True)
class WrongAlert:
    """An alert the labels do not hold (false positive) or a label no alert found (missed)."""

    kind: str  # "false positive" | "missed"
    rule: str
    transaction_id: str
    label: str  # the transaction's label header ("" when none)
    evidence: Mapping = field(default_factory=dict)
    in_oracle: bool | None = None


@dataclass(frozen=True)
class QualityReport:
    transactions: int
    rules: dict[str, RuleQuality]
    wrong: list[WrongAlert]
    wrong_total: int

    def lines(self) -> list[str]:
        """The report as text lines (the demo summary and the bench print them)."""

        def pct(x: float | None, digits: int = 1) -> str:
            return "n/a" if x is None else f"{x:.{digits}%}"

        head = f"fraud alert quality on {self.transactions:,} valid transactions (labels: the "
        out = [head + "generator's darooghe-label header):"]
        for q in self.rules.values():
            labelled = q.labelled if q.has_labels else "n/a"
            out.append(
                f"  {q.rule:<15} alerts={q.alerts:<6} labelled={labelled:<6} "
                f"precision={pct(q.precision):<7} recall={pct(q.recall):<7} "
                f"FPR={pct(q.false_positive_rate, 3):<8} oracle agreement="
                f"{pct(q.oracle_agreement)}"
            )
        if self.wrong:
            shown = len(self.wrong)
            out.append(f"wrong alerts and misses ({self.wrong_total}; the first {shown}):")
            for w in self.wrong:
                oracle = (
                    ""
                    if w.in_oracle is None
                    else f", oracle {'agrees' if w.in_oracle else 'disagrees'}"
                )
                evidence = f" evidence {dict(w.evidence)}" if w.evidence else ""
                out.append(
                    f"  {w.kind}: {w.rule} on {w.transaction_id} (label {w.label or 'none'}"
                    f"{oracle}){evidence}"
                )
        return out


def measure_quality(
    transactions: Iterable[tuple[str, str | None]],
    alerts: Iterable[Mapping],
    oracle: Iterable[Finding] | None = None,
    examples: int = 5,
    labelled_rules: Iterable[str] = FRAUD_RULES,
) -> QualityReport:
    """transactions: (transaction_id, label header or None) of every valid transaction; alerts:
    alert values (rule, transaction_id, evidence); oracle: the (rule, transaction_id) findings of
    the reference evaluator on the same transactions, or None; labelled_rules: the rules the
    labels speak for."""
    labelled_rules = set(labelled_rules)
    labels: dict[str, str] = {}
    labelled: dict[str, set[str]] = {rule: set() for rule in FRAUD_RULES}
    for tid, label in transactions:
        labels[tid] = label or ""
        for rule in (label or "").split(","):
            if rule in labelled:
                labelled[rule].add(tid)
    alerted: dict[str, dict[str, Mapping]] = {rule: {} for rule in FRAUD_RULES}
    for a in alerts:
        if a.get("rule") in alerted and a.get("transaction_id") is not None:
            alerted[a["rule"]].setdefault(a["transaction_id"], a)
    found: dict[str, set[str]] | None = None
    if oracle is not None:
        found = {rule: set() for rule in FRAUD_RULES}
        for rule, tid in oracle:
            found[rule].add(tid)
    rules: dict[str, RuleQuality] = {}
    wrong: list[WrongAlert] = []
    for rule in FRAUD_RULES:
        hits, truth = set(alerted[rule]), labelled[rule]
        rules[rule] = RuleQuality(
            rule=rule,
            alerts=len(hits),
            labelled=len(truth),
            true_positives=len(hits & truth),
            false_positives=len(hits - truth),
            false_negatives=len(truth - hits),
            negatives=len(labels) - len(truth),
            oracle=None if found is None else len(found[rule]),
            oracle_common=None if found is None else len(hits & found[rule]),
            has_labels=rule in labelled_rules,
        )
        if rule not in labelled_rules:
            continue
        in_oracle = (lambda tid, r=rule: None if found is None else tid in found[r])
        for tid in sorted(hits - truth):
            evidence = alerted[rule][tid].get("evidence") or {}
            label = labels.get(tid, "")
            wrong.append(WrongAlert("false positive", rule, tid, label, evidence, in_oracle(tid)))
        for tid in sorted(truth - hits):
            wrong.append(WrongAlert("missed", rule, tid, labels.get(tid, ""), {}, in_oracle(tid)))
    # False positives first: they are the "wrong alerts"; misses after them.
    wrong.sort(key=lambda w: w.kind != "false positive")
    return QualityReport(len(labels), rules, wrong[:examples], len(wrong))


def _object(value: str) -> dict:
    """A record's JSON object; {} for anything else (a sink dead-letters such records)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def quality_from_kafka(
    settings,
    valid_topic: str,
    alerts_topic: str,
    averages: Mapping[str, float],
    late_topic: str | None = None,
    rules=None,
    examples: int = 5,
    labelled_rules: Iterable[str] = FRAUD_RULES,
) -> QualityReport:
    """`measure_quality` of the topics as they are now (read_committed): the valid transactions
    with their label headers, the alerts, and the oracle on the same transactions with these
    averages and rule history (default: the rule-set topic's), the late ones (the late topic's
    transaction ids) judged by the amount rule only, as the detector does."""
    from darooghe.fraud.reference import reference_findings
    from darooghe.fraud.rule_store import load_rule_history
    from darooghe.fraud.txn import Txn
    from darooghe.kafka_io import UnknownTopicError, consume_all
    from darooghe.topics import LABEL_HEADER

    txns, labels = [], []
    for rec in consume_all(valid_topic, settings):
        t = Txn.from_value(rec.value)
        txns.append(t)
        labels.append((t.transaction_id, rec.headers.get(LABEL_HEADER)))
    alerts = [_object(r.value) for r in consume_all(alerts_topic, settings)]
    late_ids: set[str] = set()
    if late_topic is not None:
        try:
            late_ids = {
                _object(r.value).get("transaction_id") for r in consume_all(late_topic, settings)
            }
        except UnknownTopicError:
            pass
    history = rules if rules is not None else load_rule_history(settings)
    oracle = reference_findings(
        [t for t in txns if t.transaction_id not in late_ids],
        averages,
        [t for t in txns if t.transaction_id in late_ids],
        history,
    )
    return measure_quality(labels, alerts, oracle, examples, labelled_rules)
