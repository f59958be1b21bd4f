"""Rule-set changes written as text (`velocity_max_count=3 enabled.VELOCITY=false`): parsed,
typed by the field they name, applied to the latest version as the next one, and validated.

Every error names the assignment as typed, the value and what was expected, so `darooghe rules
set` can print it as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import fields

from darooghe.fraud.ruleset import SEVERITIES, RuleSet, RuleSetError
from darooghe.schema import FRAUD_RULES, parse_iso_ms

#: Fields a change may not name: the version and its start are given by `set` itself.
FIXED_FIELDS = ("version", "effective_from_ms")
_TRUE, _FALSE = ("true", "on", "yes", "1"), ("false", "off", "no", "0")


def editable_fields() -> list[str]:
    return [f.name for f in fields(RuleSet) if f.name not in FIXED_FIELDS]


def _typed(assignment: str, value: str, like):
    """`value` converted to the type of the field's current value `like`."""
    text = value.strip()
    if isinstance(like, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise RuleSetError(f"{assignment!r}: {value!r} is not true or false")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise RuleSetError(f"{assignment!r}: {value!r} is not an integer") from None
    if isinstance(like, float):
        try:
            number = float(text)
        except ValueError:
            raise RuleSetError(f"{assignment!r}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise RuleSetError(f"{assignment!r}: {value!r} is not a finite number")
        return number
    return value  # text (the comment)


def parse_changes(base: RuleSet, assignments: Iterable[str]) -> dict:
    """`field=value` and `enabled.RULE=bool` / `severity_points.LEVEL=int` as RuleSet.changed
    keyword arguments, typed after `base`."""
    changes: dict = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RuleSetError(f"{assignment!r}: expected field=value, e.g. velocity_max_count=3")
        field_name, dot, member = name.partition(".")
        if field_name in FIXED_FIELDS:
            raise RuleSetError(
                f"{assignment!r}: {field_name} is set by the command (--effective-from; the "
                "version is the next one)"
            )
        if field_name not in editable_fields():
            raise RuleSetError(
                f"{assignment!r}: unknown field {field_name!r}; the fields are "
                f"{', '.join(editable_fields())}"
            )
        current = getattr(base, field_name)
        if isinstance(current, dict):
            members = FRAUD_RULES if field_name == "enabled" else SEVERITIES
            if not dot or member not in members:
                raise RuleSetError(
                    f"{assignment!r}: unknown {'rule' if field_name == 'enabled' else 'severity'} "
                    f"{member!r}; expected {field_name}.X with X among {', '.join(members)}"
                )
            merged = changes.setdefault(field_name, dict(current))
            merged[member] = _typed(assignment, value, current[member])
        elif dot:
            raise RuleSetError(f"{assignment!r}: {field_name} has no members")
        else:
            changes[field_name] = _typed(assignment, value, current)
    return changes


def parse_time_ms(text: str) -> int:
    """Epoch milliseconds, or an ISO time (a time without a zone is UTC)."""
    value = text.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        return parse_iso_ms(value)
    except ValueError:
        raise RuleSetError(
            f"effective-from {text!r}: expected an ISO time (2026-03-23T10:00:00Z) or epoch ms"
        ) from None


def next_version(
    latest: RuleSet, assignments: Iterable[str], effective_from_ms: int, comment: str | None = None
) -> RuleSet:
    """The version after `latest` with these changes, from this event time on (validated)."""
    changes = parse_changes(latest, assignments)
    if not changes:
        raise RuleSetError("no change given: expected field=value, e.g. velocity_max_count=3")
    if comment is not None:
        changes["comment"] = comment
    elif "comment" not in changes:
        changes["comment"] = ""
    try:
        return latest.changed(latest.version + 1, effective_from_ms, **changes)
    except TypeError as exc:  # a value the range checks could not compare
        raise RuleSetError(f"rule set v{latest.version + 1}: {exc}") from None


def differences(before: RuleSet | None, after: RuleSet) -> list[str]:
    """`field: old -> new` for what a version changed (everything for the first one)."""
    out = []
    for name in editable_fields():
        if name == "comment":
            continue
        new = getattr(after, name)
        old = None if before is None else getattr(before, name)
        if isinstance(new, dict):
            for key, value in new.items():
                was = None if old is None else old.get(key)
                if before is None or was != value:
                    member = f"{name}.{key}"
                    out.append(f"{member}: {was} -> {value}" if before else f"{member}={value}")
        elif before is None or old != new:
            out.append(f"{name}: {old} -> {new}" if before else f"{name}={new}")
    return out
