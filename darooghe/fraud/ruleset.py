"""The fraud rules' parameters as data: a versioned rule set and its history.

Each rule's *logic* lives in `darooghe.fraud.rules`; its *numbers* (windows, limits, factors, an
on/off switch) and the decision thresholds live here, in a `RuleSet`. Rule sets are never edited in
place: a change is a new version with the event time it applies from, so the history says which
thresholds judged any transaction, a replayed batch judges it the same way, and the oracle, given
the same history, stays exact across a change. The detector, the batch oracle and the generator's
labeller all read their numbers from a `RuleSet`; `DEFAULT_RULESET` is the specification's.

A transaction is judged by the rule set active at its own event time (`RuleHistory.at`): the last
version whose `effective_from_ms` is at or before it.

Decisions: a transaction's risk score is the sum of `severity_points` over the rules that fired on
it plus `risk_level_points` times the record's `risk_level`; REVIEW from `review_score`, BLOCK from
`block_score` (both inclusive). `review_score` is above the largest score a transaction can get from
its risk_level alone, so a transaction no rule fired on is always APPROVE: decisions need only the
alerts and the alerted records, never a pass over every transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace

from darooghe.schema import AMOUNT_ANOMALY, FRAUD_RULES, GEO_IMPOSSIBLE, RISK_LEVELS, VELOCITY

MINUTE_MS = 60_000
APPROVE, REVIEW, BLOCK = "APPROVE", "REVIEW", "BLOCK"
DECISIONS = (APPROVE, REVIEW, BLOCK)
SEVERITIES = ("low", "medium", "high")


class RuleSetError(ValueError):
    """A rule set that cannot be used; the message names the field, the value and what is valid."""


@dataclass(frozen=True)
class RuleSet:
    """One version of the rules' parameters, applied from `effective_from_ms` (event time) on."""

    version: int = 1
    effective_from_ms: int = 0
    #: VELOCITY fires when more than `velocity_max_count` transactions are in (t - window, t].
    velocity_window_ms: int = 2 * MINUTE_MS
    velocity_max_count: int = 5
    #: GEO_IMPOSSIBLE compares t with transactions at most `geo_horizon_ms` before it.
    geo_horizon_ms: int = 5 * MINUTE_MS
    geo_max_km: float = 50.0
    #: AMOUNT_ANOMALY fires when amount > amount_factor x the customer's historical average.
    amount_factor: float = 10.0
    enabled: Mapping[str, bool] = field(
        default_factory=lambda: {rule: True for rule in FRAUD_RULES}
    )
    severity_points: Mapping[str, int] = field(
        default_factory=lambda: {"low": 30, "medium": 50, "high": 80}
    )
    risk_level_points: int = 5
    review_score: int = 40
    block_score: int = 80
    #: Who changed it and why (free text; shown in the history).
    comment: str = "the specification's thresholds"

    def __post_init__(self) -> None:
        # Plain dicts (picklable: the set travels to Spark's Python workers); treat as read-only.
        object.__setattr__(self, "enabled", dict(self.enabled))
        object.__setattr__(self, "severity_points", dict(self.severity_points))
        self.validate()

    def validate(self) -> None:
        """Raise RuleSetError naming the first field that is out of range."""

        def need(ok: bool, name: str, expected: str) -> None:
            if not ok:
                raise RuleSetError(
                    f"rule set v{self.version}: {name} = {getattr(self, name)!r}; expected {expected}"
                )

        need(isinstance(self.version, int) and self.version >= 1, "version", "an integer >= 1")
        need(isinstance(self.effective_from_ms, int), "effective_from_ms", "epoch milliseconds")
        need(_int(self.velocity_window_ms) > 0, "velocity_window_ms", "a positive window in ms")
        need(_int(self.velocity_max_count) >= 1, "velocity_max_count", "an integer >= 1")
        need(_int(self.geo_horizon_ms) > 0, "geo_horizon_ms", "a positive horizon in ms")
        need(_num(self.geo_max_km) > 0, "geo_max_km", "a positive distance in km")
        need(_num(self.amount_factor) > 0, "amount_factor", "a positive factor")
        unknown = sorted(set(self.enabled) - set(FRAUD_RULES))
        need(not unknown, "enabled", f"rules among {', '.join(FRAUD_RULES)} (unknown: {unknown})")
        need(
            all(isinstance(v, bool) for v in self.enabled.values()),
            "enabled",
            "true/false per rule",
        )
        need(
            set(self.severity_points) == set(SEVERITIES)
            and all(_int(v) >= 0 for v in self.severity_points.values()),
            "severity_points",
            "non-negative integer points for each of low, medium, high",
        )
        need(_int(self.risk_level_points) >= 0, "risk_level_points", "a non-negative integer")
        most_risk_alone = self.risk_level_points * RISK_LEVELS[-1]
        need(
            _int(self.review_score) > most_risk_alone,
            "review_score",
            f"an integer above risk_level_points x {RISK_LEVELS[-1]} = {most_risk_alone} (a "
            "transaction no rule fired on must be APPROVE)",
        )
        need(
            _int(self.block_score) >= self.review_score,
            "block_score",
            f"an integer >= review_score ({self.review_score})",
        )

    def is_enabled(self, rule: str) -> bool:
        if rule not in FRAUD_RULES:
            raise RuleSetError(f"unknown rule {rule!r}; the rules are {', '.join(FRAUD_RULES)}")
        return self.enabled.get(rule, True)

    @property
    def horizon_ms(self) -> int:
        """How far back in event time the windowed rules of this version look."""
        return max(self.velocity_window_ms, self.geo_horizon_ms)

    def score(self, severities: Iterable[str], risk_level: int) -> int:
        """Risk score of one transaction: its alerts' severities and its record's risk_level."""
        return sum(self.severity_points[s] for s in severities) + self.risk_level_points * int(
            risk_level
        )

    def decide(self, score: int) -> str:
        return (
            BLOCK
            if score >= self.block_score
            else REVIEW
            if score >= self.review_score
            else APPROVE
        )

    def changed(self, version: int, effective_from_ms: int, **changes) -> RuleSet:
        """The next version: these changes applied from the given event time on."""
        if "enabled" in changes:
            changes["enabled"] = {**self.enabled, **changes["enabled"]}
        return replace(self, version=version, effective_from_ms=effective_from_ms, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping) -> RuleSet:
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - fields)
        if unknown:
            raise RuleSetError(
                f"rule set: unknown field(s) {unknown}; the fields are {sorted(fields)}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> RuleSet:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RuleSetError(f"rule set is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RuleSetError(f"rule set must be a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return -1  # fails every range check above, which then names the field
    return value


def _num(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return -1.0
    return float(value)


DEFAULT_RULESET = RuleSet()


@dataclass(frozen=True)
class RuleHistory:
    """Every version, ordered by the event time it applies from; `at` picks a transaction's set."""

    versions: tuple[RuleSet, ...] = (DEFAULT_RULESET,)

    def __post_init__(self) -> None:
        if not self.versions:
            raise RuleSetError("a rule history needs at least one rule set")
        ordered = tuple(sorted(self.versions, key=lambda r: (r.effective_from_ms, r.version)))
        numbers = [r.version for r in ordered]
        if len(set(numbers)) != len(numbers):
            raise RuleSetError(f"rule history: duplicate versions in {numbers}")
        if numbers != sorted(numbers):
            raise RuleSetError(
                f"rule history: versions {numbers} are not in the order of their effective times; "
                "a later version must apply from a later (or the same) event time"
            )
        object.__setattr__(self, "versions", ordered)
        object.__setattr__(self, "_starts", [r.effective_from_ms for r in ordered])

    def at(self, event_ms: int) -> RuleSet:
        """The rule set that judges a transaction with this event time."""
        from bisect import bisect_right

        i = bisect_right(self._starts, event_ms) - 1
        return self.versions[max(i, 0)]

    @property
    def latest(self) -> RuleSet:
        return self.versions[-1]

    @property
    def horizon_ms(self) -> int:
        """The longest look-back of any version: what per-customer state must keep."""
        return max(r.horizon_ms for r in self.versions)

    def with_version(self, ruleset: RuleSet) -> RuleHistory:
        if ruleset.version <= self.latest.version:
            raise RuleSetError(
                f"rule set version {ruleset.version} is not newer than the latest "
                f"({self.latest.version})"
            )
        if ruleset.effective_from_ms < self.latest.effective_from_ms:
            raise RuleSetError(
                f"rule set v{ruleset.version} applies from {ruleset.effective_from_ms}, before the "
                f"latest version's start ({self.latest.effective_from_ms})"
            )
        return RuleHistory((*self.versions, ruleset))

    def to_json(self) -> str:
        return json.dumps([r.to_dict() for r in self.versions], sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RuleHistory:
        data = json.loads(text)
        return cls(tuple(RuleSet.from_dict(d) for d in data))


DEFAULT_HISTORY = RuleHistory()

__all__ = [
    "AMOUNT_ANOMALY",
    "APPROVE",
    "BLOCK",
    "DEFAULT_HISTORY",
    "DEFAULT_RULESET",
    "GEO_IMPOSSIBLE",
    "REVIEW",
    "VELOCITY",
    "RuleHistory",
    "RuleSet",
    "RuleSetError",
]
