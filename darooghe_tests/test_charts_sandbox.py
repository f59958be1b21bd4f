"""Headless Chromium opens pages inside its sandbox, also when the tests run as root."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from darooghe.charts import browser


def _renderers(proc) -> list[psutil.Process]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "--type=renderer" in p.cmdline()
        ]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("chromium started no renderer")


def test_chromium_renderers_run_sandboxed_in_namespaces_of_their_own():
    chromium = browser.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium installed")
    # A profile where inspect_page makes one (pytest's own tmp_path is private to root).
    with tempfile.TemporaryDirectory(
        prefix="darooghe-chromium-", ignore_cleanup_errors=True
    ) as tmp:
        _check_sandboxed(chromium, Path(tmp))


def _check_sandboxed(chromium: str, profile: Path) -> None:
    proc, _ws = browser._start(chromium, profile, 800, 600)
    try:
        assert "--no-sandbox" not in psutil.Process(proc.pid).cmdline()
        for renderer in _renderers(proc):
            assert "--no-sandbox" not in renderer.cmdline()
            # The namespace sandbox: a renderer sees its own PID namespace, not the browser's.
            assert os.readlink(f"/proc/{renderer.pid}/ns/pid") != os.readlink(
                f"/proc/{proc.pid}/ns/pid"
            )
            assert renderer.uids().effective != 0  # never root, even when the caller is
    finally:
        browser._stop(proc)
