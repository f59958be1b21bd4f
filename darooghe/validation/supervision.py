"""Background validator instances that are meant to run: enabled on start, restarted when dead.

`darooghe validate --detach` records the wish that an instance runs, with its command line, in
`$DAROOGHE_HOME/run/<process>.enabled`; `darooghe validator stop` removes it. So "dead" means
enabled but without a live process (a crash, a kill, a fatal error after a long broker outage, a
reboot): the `validator_watch` sensor then requests `restart_validator_job`, which starts it again
with the same command line. An instance stopped on purpose stays stopped. Restarting under the
same instance id is safe: init_transactions() fences the dead one and aborts what it left open.
"""

from __future__ import annotations

import json
import time

from darooghe.config import Settings
from darooghe.services.process import ManagedProcess

_PREFIX = "validator"


def process_name(instance: str) -> str:
    """Instance 0 runs as background process "validator", instance N as "validator-N"."""
    return _PREFIX if instance == "0" else f"{_PREFIX}-{instance}"


def _instance_of(name: str) -> str:
    return "0" if name == _PREFIX else name.removeprefix(f"{_PREFIX}-")


def _enabled_file(settings: Settings, instance: str):
    return settings.run_dir / f"{process_name(instance)}.enabled"


def enable(settings: Settings, instance: str, argv: list[str]) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    _enabled_file(settings, instance).write_text(json.dumps({"argv": argv, "since": time.time()}))


def disable(settings: Settings, instance: str) -> None:
    _enabled_file(settings, instance).unlink(missing_ok=True)


def enabled_argv(settings: Settings, instance: str) -> list[str] | None:
    """The command line the instance was started with, or None when it is not meant to run."""
    try:
        return list(json.loads(_enabled_file(settings, instance).read_text())["argv"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


def enabled_instances(settings: Settings) -> list[str]:
    if not settings.run_dir.exists():
        return []
    return sorted(_instance_of(p.stem) for p in settings.run_dir.glob(f"{_PREFIX}*.enabled"))


def dead_instances(settings: Settings) -> list[str]:
    """Enabled instances without a live process."""
    return [
        i
        for i in enabled_instances(settings)
        if ManagedProcess(process_name(i), settings).pid() is None
    ]


def restart_if_dead(settings: Settings, instance: str) -> int | None:
    """Start an enabled instance that is not running, with its recorded command line; its PID."""
    argv = enabled_argv(settings, instance)
    proc = ManagedProcess(process_name(instance), settings)
    if argv is None or proc.pid() is not None:
        return None
    return proc.start(argv)
