"""Allow-lists for run config that names a topic, a path or a clock.

Anyone who can open the Dagster launchpad can edit run config, so a free string there is a way in:
a backfill straight into the validated topic, a lake written to any directory, a future clock that
makes retention empty the 24-hour store. The rules, used by every config class that has such a
field (pydantic validators, so a bad value fails the run before any step starts, naming the field,
the value and what is allowed):

- Topics: each field has its project topics (e.g. a backfill writes only darooghe.transactions).
  The operator (not the launchpad) may allow more through DAROOGHE_RUN_CONFIG_TOPICS: a comma list
  of names or `prefix*` patterns (`*` = any topic outside the project's). Another of the project's
  topics is never allowed.
- Paths: absolute, and under $DAROOGHE_HOME or a root in DAROOGHE_RUN_CONFIG_ROOTS (a
  os.pathsep-separated list), after resolving `..` and symlinks. Empty means the default.
- Clocks: an ISO-8601 instant with a time zone, at most the clock-skew allowance
  (DAROOGHE_CLOCK_SKEW_MS, the validator's own) after the wall clock. Past instants are replays.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

from darooghe.config import load_settings
from darooghe.topics import BY_NAME

TOPICS_ENV = "DAROOGHE_RUN_CONFIG_TOPICS"
ROOTS_ENV = "DAROOGHE_RUN_CONFIG_ROOTS"


def _extra_topic_patterns() -> list[str]:
    return [p.strip() for p in os.environ.get(TOPICS_ENV, "").split(",") if p.strip()]


def allowed_topic(field: str, value: str, defaults: Iterable[str]) -> str:
    """`value` when it is one of `defaults` or an operator-allowed non-project topic."""
    defaults = tuple(defaults)
    if value in defaults:
        return value
    if value not in BY_NAME:
        for pattern in _extra_topic_patterns():
            if value == pattern or (pattern.endswith("*") and value.startswith(pattern[:-1])):
                return value
    raise ValueError(
        f"{field}: topic {value!r} is not allowed; allowed: {', '.join(defaults)}"
        + (f" and {os.environ[TOPICS_ENV]!r} ({TOPICS_ENV})" if _extra_topic_patterns() else "")
    )


def allowed_path(field: str, value: str) -> str:
    """`value` when empty (the default) or an absolute path under the home or an allowed root."""
    if not value:
        return value
    roots = [load_settings().home]
    roots += [Path(r) for r in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if r]
    resolved = [r.resolve() for r in roots]
    path = Path(value)
    if path.is_absolute():
        real = path.resolve()
        if any(real == r or r in real.parents for r in resolved):
            return value
    raise ValueError(
        f"{field} {value!r} is not under {' or '.join(map(str, resolved))} "
        f"($DAROOGHE_HOME or {ROOTS_ENV}); give an absolute path there, or leave it empty"
    )


def allowed_instant(field: str, value: str) -> str:
    """`value` when empty (the wall clock) or an instant no later than wall clock + skew."""
    if not value:
        return value
    try:
        instant = dt.datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z
    except ValueError:
        raise ValueError(f"{field} {value!r} is not an ISO-8601 instant") from None
    if instant.tzinfo is None:
        raise ValueError(f"{field} {value!r} has no time zone; expected e.g. 2026-03-23T12:00:00Z")
    skew_ms = load_settings().clock_skew_ms
    ahead = instant - dt.datetime.now(dt.UTC)
    if ahead > dt.timedelta(milliseconds=skew_ms):
        raise ValueError(
            f"{field} {value!r} is {ahead} in the future, more than the clock-skew allowance of "
            f"{skew_ms / 1000:g} s (DAROOGHE_CLOCK_SKEW_MS)"
        )
    return value
