"""The rule history file a running fraud job's tasks read (written by the driver before a batch).

Kept apart from `rule_store` (Kafka clients) so a Python worker imports only this to read it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from darooghe.fraud.ruleset import DEFAULT_HISTORY, RuleHistory


class RuleSnapshot:
    """The history file the stateful processor reads (RuleHistory.to_json), like the profiles
    snapshot: written by the driver (write + atomic rename), re-read by a task when it changed."""

    _cache: ClassVar[dict[str, tuple[int, RuleHistory]]] = {}  # per Python worker

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    def write(self, history: RuleHistory) -> None:
        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(history.to_json(), encoding="utf-8")
        os.replace(tmp, target)

    def read(self) -> RuleHistory:
        """The current snapshot; a missing file is the default history."""
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return DEFAULT_HISTORY
        cached = self._cache.get(self.path)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        with open(self.path, encoding="utf-8") as fh:
            history = RuleHistory.from_json(fh.read())
        self._cache[self.path] = (mtime, history)
        return history
