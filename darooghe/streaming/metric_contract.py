"""What the live-metrics job and the sinks that store its values agree on: ids and the ranking.

- `metric_id`: a value is identified by its topic, window start and group (a category, a
  commission type, or a rank), so a window re-emitted by a later micro-batch, or a record read
  twice, replaces itself wherever it is stored. The job stamps every value with it; a sink that
  meets a value without one derives the same id rather than drop it.
- `top_ranked`: the top merchants of a window, highest commission first and ties by merchant id, so
  the job's ranking and the sink's merge of rankings order the same merchants the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import TypeVar

#: Merchants ranked per window of the top-merchants metric.
TOP_MERCHANTS_RANKS = 5

T = TypeVar("T")


def metric_id(topic: str, window_start_ms: int, group: str) -> str:
    """The id of one metric value: the same topic, window start (epoch ms) and group, the same id."""
    return hashlib.sha256(f"{topic}|{window_start_ms}|{group}".encode()).hexdigest()[:32]


def top_ranked(
    entries: Iterable[T],
    merchant: Callable[[T], str],
    commission: Callable[[T], float],
    ranks: int = TOP_MERCHANTS_RANKS,
) -> list[tuple[int, T]]:
    """(rank, entry) of the `ranks` entries with the highest commission, rank 1 first; ties go to
    the smaller merchant id, so the ranking is deterministic."""
    ordered = sorted(entries, key=lambda e: (-commission(e), merchant(e)))[:ranks]
    return list(enumerate(ordered, start=1))
