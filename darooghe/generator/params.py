"""The generator's parameters: defaults, ranges, environment variables, checks.

One table drives the CLI flags, the environment variables and the range checks, so a parameter
cannot be added in one place and forgotten in another. A value out of its range is refused with
the parameter's name, the value and the range (`ParameterError`); the CLI turns that into exit
status 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from darooghe.topics import MAX_HISTORY_DAYS


class ParameterError(ValueError):
    """A generator parameter outside its range, or not a number."""


@dataclass(frozen=True)
class Spec:
    name: str  # environment variable and the name used in messages
    field: str  # GeneratorParams attribute
    kind: type
    default: float | int
    low: float | int
    high: float | int
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    def range_text(self) -> str:
        return f"{_fmt(self.low)}–{_fmt(self.high)}"


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


#: Invalid-event rates default to 0.5% each: enough to see every error code in a few minutes of
#: live data, small enough that the valid stream dominates every chart.
DEFAULT_INVALID_RATE = 0.005

SPECS: tuple[Spec, ...] = (
    Spec("EVENT_RATE", "event_rate", float, 100.0, 10.0, 1000.0,
         "mean events per minute over a week"),
    Spec("PEAK_FACTOR", "peak_factor", float, 2.5, 1.0, 5.0,
         "intensity at the daily peak relative to the quiet night level"),
    Spec("FRAUD_RATE", "fraud_rate", float, 0.02, 0.0, 0.1,
         "share of events injected as fraud (velocity bursts, impossible travel, amount spikes)"),
    Spec("DECLINED_RATE", "declined_rate", float, 0.05, 0.0, 0.2, "share of declined transactions"),
    Spec("MERCHANT_COUNT", "merchant_count", int, 50, 10, 500, "distinct merchants"),
    Spec("CUSTOMER_COUNT", "customer_count", int, 1000, 100, 10000, "distinct customers"),
    Spec("ERR_AMOUNT_RATE", "err_amount_rate", float, DEFAULT_INVALID_RATE, 0.0, 0.1,
         "share of events with inconsistent totals (ERR_AMOUNT)"),
    Spec("ERR_TIME_RATE", "err_time_rate", float, DEFAULT_INVALID_RATE, 0.0, 0.1,
         "share of events with clock drift: future, or more than a day old (ERR_TIME)"),
    Spec("ERR_DEVICE_RATE", "err_device_rate", float, DEFAULT_INVALID_RATE, 0.0, 0.1,
         "share of mobile payments from a non-mobile OS (ERR_DEVICE)"),
    Spec("ERR_SCHEMA_RATE", "err_schema_rate", float, DEFAULT_INVALID_RATE, 0.0, 0.1,
         "share of malformed records: bad JSON, missing field, wrong type, bad enum (ERR_SCHEMA)"),
    Spec("GENERATOR_DAYS", "days", int, 7, 1, MAX_HISTORY_DAYS, "history length in days"),
    Spec("GENERATOR_SEED", "seed", int, 42, 0, 2**63 - 1, "random seed (same seed, same events)"),
)
BY_FIELD = {s.field: s for s in SPECS}


@dataclass(frozen=True)
class GeneratorParams:
    event_rate: float = 100.0
    peak_factor: float = 2.5
    fraud_rate: float = 0.02
    declined_rate: float = 0.05
    merchant_count: int = 50
    customer_count: int = 1000
    err_amount_rate: float = DEFAULT_INVALID_RATE
    err_time_rate: float = DEFAULT_INVALID_RATE
    err_device_rate: float = DEFAULT_INVALID_RATE
    err_schema_rate: float = DEFAULT_INVALID_RATE
    days: int = 7
    seed: int = 42

    def __post_init__(self) -> None:
        for f in fields(self):
            check(BY_FIELD[f.name], getattr(self, f.name))

    def with_(self, **changes) -> GeneratorParams:
        return replace(self, **changes)

    def invalid_rates(self) -> dict[str, float]:
        return {
            "ERR_AMOUNT": self.err_amount_rate,
            "ERR_TIME": self.err_time_rate,
            "ERR_DEVICE": self.err_device_rate,
            "ERR_SCHEMA": self.err_schema_rate,
        }

    def as_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check(spec: Spec, value, source: str | None = None) -> None:
    """Refuse a value of the wrong kind or out of range; `source` names the flag or variable."""
    where = f" (from {source})" if source else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(
            f"{spec.name}={value!r}{where} is not a number; expected {spec.range_text()}"
        )
    if spec.kind is int and int(value) != value:
        raise ParameterError(
            f"{spec.name}={_fmt(value)}{where} is not an integer; expected {spec.range_text()}"
        )
    if not spec.low <= value <= spec.high:
        raise ParameterError(
            f"{spec.name}={_fmt(value)}{where} is outside its range {spec.range_text()}"
        )


def parse(spec: Spec, raw: str, source: str) -> float | int:
    """Text from a flag or the environment to a number of the parameter's kind; `source` names it."""
    try:
        value = float(raw) if spec.kind is float else int(raw)
    except ValueError:
        kind = "a number" if spec.kind is float else "an integer"
        raise ParameterError(
            f"{spec.name}={raw!r} (from {source}) is not {kind}; expected {spec.range_text()}"
        ) from None
    check(spec, value, source)
    return value


def from_sources(flags: dict[str, str | None], environ: dict[str, str] | None = None) -> GeneratorParams:
    """Parameters from flags (field -> raw text or None), then the environment, then defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, float | int] = {}
    for spec in SPECS:
        raw = flags.get(spec.field)
        if raw is not None:
            values[spec.field] = parse(spec, str(raw), spec.flag)
        elif env.get(spec.name, "") != "":
            values[spec.field] = parse(spec, env[spec.name], f"environment variable {spec.name}")
    return GeneratorParams(**values)
