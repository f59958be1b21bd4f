"""Open a page in headless Chromium and report what a person would see: charts drawn, console
errors, network requests, and a full-page screenshot.

It speaks the DevTools protocol over a websocket (the `websockets` package), because the console
and the network are only visible there — `chromium --screenshot` alone would not tell an error
apart from a working page. Debian's `chromium` package provides the browser.

Chromium runs sandboxed: the pages it opens are our own, but a renderer that a page could take
over must not act with our rights. Chromium refuses its sandbox to root ("Running as root without
--no-sandbox is not supported"), so when we are root it runs as an unprivileged user instead
(CHROMIUM_USER, default `nobody`; its profile is made theirs). A page that user cannot read (a
directory private to root on the way) is opened from a copy in the profile, which suits our
self-contained pages. Only when no such user exists does it fall back to `--no-sandbox`.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

from darooghe.services.process import stop_group

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: network, GPU and background services off: the page must work from disk alone
CHROMIUM_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)
#: per chart section: is it there, and did plotly draw its SVG into it
_CHART_STATE_JS = """
JSON.stringify(Array.from(document.querySelectorAll('[data-chart]')).map(s => ({
  name: s.dataset.chart,
  plot: !!s.querySelector('.js-plotly-plot'),
  svgs: s.querySelectorAll('.main-svg').length,
  traces: s.querySelectorAll('.main-svg .trace').length,
})))
"""
#: who runs Chromium when we are root (Chromium's sandbox refuses root)
CHROMIUM_USER = os.environ.get("DAROOGHE_CHROMIUM_USER", "nobody")
_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "devtools:")


class BrowserError(RuntimeError):
    """Chromium could not be started or did not answer."""


@dataclass
class PageReport:
    url: str
    charts: list[dict] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    seconds: float = 0.0

    @property
    def drawn(self) -> list[str]:
        return [c["name"] for c in self.charts if c["plot"] and c["svgs"] > 0]

    @property
    def not_drawn(self) -> list[str]:
        return [c["name"] for c in self.charts if not (c["plot"] and c["svgs"] > 0)]


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _DevTools:
    """A minimal DevTools client: numbered commands, events kept for later inspection."""

    def __init__(self, ws):
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict] = []

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"DevTools {method}: no answer within {timeout:.0f} s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"DevTools {method} failed: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def drain(self, seconds: float) -> None:
        """Keep reading events for `seconds`."""
        self.wait_event("", seconds)

    def wait_event(self, method: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event["method"] == method:
                return event
        while time.monotonic() < deadline:
            try:
                message = json.loads(self._ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
            if "method" in message:
                self.events.append(message)
                if message["method"] == method:
                    return message
        return None


def _sandbox_user() -> pwd.struct_passwd | None:
    """The user Chromium runs as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(CHROMIUM_USER)
    except KeyError:
        return None


def _readable_by(path: Path, user: pwd.struct_passwd) -> bool:
    def allows(p: Path, bit: int) -> bool:  # bit: 4 read, 1 search
        st = p.stat()
        if st.st_uid == user.pw_uid:
            return bool(st.st_mode & (bit << 6))
        if st.st_gid == user.pw_gid:
            return bool(st.st_mode & (bit << 3))
        return bool(st.st_mode & bit)

    return allows(path, 4) and all(allows(d, 1) for d in path.parents)


def page_for_browser(page: Path, profile: Path) -> Path:
    """`page`, or a copy in `profile` when the user Chromium runs as cannot read it."""
    user = _sandbox_user()
    if user is None or not page.is_file() or _readable_by(page, user):
        return page
    copy = profile / "pages" / page.name
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(page, copy)
    for path in (copy.parent, copy):  # made after the profile was handed over to `user`
        os.chown(path, user.pw_uid, user.pw_gid)
    return copy


def sandboxed_launch(profile: Path) -> tuple[list[str], dict]:
    """Extra flags and Popen arguments that keep Chromium in its sandbox (see the module doc)."""
    if os.geteuid() != 0:
        return [], {}
    user = _sandbox_user()
    if user is None:
        return ["--no-sandbox"], {}  # root and nobody to run as: the only way it starts
    for path in (profile, *profile.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)
    env = {**os.environ, "HOME": str(profile), "XDG_CONFIG_HOME": str(profile / ".config")}
    env["XDG_CACHE_HOME"] = str(profile / ".cache")
    return [], {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "env": env}


def _start(chromium: str, profile: Path, width: int, height: int) -> tuple[subprocess.Popen, str]:
    log = open(profile / "chromium.log", "wb")  # noqa: SIM115 - closed with the process
    flags, identity = sandboxed_launch(profile)
    proc = subprocess.Popen(
        [
            chromium,
            *CHROMIUM_FLAGS,
            *flags,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its helper processes form one group we can end together
        **identity,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrowserError(
                f"chromium exited with {proc.returncode} at start; see {profile / 'chromium.log'}:\n"
                + (profile / "chromium.log").read_text(errors="replace")[-2000:]
            )
        if port_file.is_file() and len(port_file.read_text().split()) >= 1:
            port = port_file.read_text().split()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if pages:
                return proc, pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.2)
    _stop(proc)
    raise BrowserError(f"chromium did not open its DevTools port within 30 s (profile {profile})")


def _stop(proc: subprocess.Popen) -> None:
    stop_group(proc, 10)  # the group of the browser this module started


class Page:
    """One open Chromium tab: navigate, evaluate JavaScript, wait for what a page draws, screenshot.

    Used by `inspect_page` for our own pages and by the browser tests of served apps (the Dagster
    UI, Prometheus), which are React pages: their content exists only once a script has drawn it,
    so a test waits for a selector or an expression instead of the load event alone."""

    def __init__(self, tools: _DevTools, width: int, profile: Path):
        self.tools = tools
        self.width = width
        self.profile = profile  # the browser's profile directory, where `page_for_browser` copies

    def goto(self, url: str, timeout: float = 60.0) -> None:
        """Navigate to `url` and wait for its load event."""
        self.tools.events = [e for e in self.tools.events if e["method"] != "Page.loadEventFired"]
        self.tools.call("Page.navigate", url=url)
        if self.tools.wait_event("Page.loadEventFired", timeout) is None:
            raise BrowserError(f"{url} did not finish loading within {timeout:.0f} s")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (JSON-serialisable; promises are awaited)."""
        result = self.tools.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            raise BrowserError(f"JavaScript {expression[:80]!r} threw: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 60.0, poll: float = 0.25):
        """Poll `expression` until it is truthy and return its value; on timeout raise naming
        `what` was awaited, with the page's URL and the start of its visible text."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                url = self.evaluate("location.href")
                text = self.evaluate("document.body ? document.body.innerText : ''") or ""
                raise BrowserError(
                    f"{what}: not on {url} after {timeout:.0f} s; the page shows: {text[:600]!r}"
                )
            time.sleep(poll)

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (beyond the window when the page is longer)."""
        return _screenshot(self.tools, Path(path), self.width)


@contextmanager
def open_browser(
    width: int = 1400, height: int = 1000, chromium: str | None = None
) -> Iterator[Page]:
    """A headless Chromium with one tab, sandboxed as the module doc says; stopped on exit."""
    chromium = chromium or find_chromium()
    if not chromium:
        raise BrowserError(
            f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}); install Debian's 'chromium'"
        )
    # A fresh profile each time; Chromium's helpers may still be writing to it as they exit.
    with tempfile.TemporaryDirectory(
        prefix="darooghe-chromium-", ignore_cleanup_errors=True
    ) as tmp:
        proc, ws_url = _start(chromium, Path(tmp), width, height)
        try:
            with connect(ws_url, max_size=None, open_timeout=20) as ws:
                tools = _DevTools(ws)
                for domain in ("Page", "Runtime", "Log", "Network"):
                    tools.call(f"{domain}.enable")
                yield Page(tools, width, Path(tmp))
        finally:
            _stop(proc)


def inspect_page(
    page: Path,
    screenshot: Path | None = None,
    timeout: float = 60.0,
    width: int = 1400,
    height: int = 1000,
    chromium: str | None = None,
) -> PageReport:
    """Load `page` from disk, wait until every `[data-chart]` section has a drawn plot (or timeout),
    and report charts, console errors, non-local requests; optionally save a full-page screenshot."""
    url = Path(page).resolve().as_uri()
    report = PageReport(url=url)
    t0 = time.monotonic()
    with open_browser(width, height, chromium) as tab:
        tab.goto(page_for_browser(Path(page).resolve(), tab.profile).as_uri(), timeout)
        deadline = time.monotonic() + timeout
        while True:
            report.charts = json.loads(tab.evaluate(_CHART_STATE_JS))
            if not report.not_drawn or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        tab.tools.drain(0.5)  # console messages logged while the last plots were drawn
        if screenshot is not None:
            report.screenshot = tab.screenshot(Path(screenshot))
        _collect(tab.tools.events, report)
    report.seconds = time.monotonic() - t0
    return report


def _screenshot(tools: _DevTools, path: Path, width: int) -> Path:
    metrics = tools.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    clip = {
        "x": 0,
        "y": 0,
        "width": max(width, size["width"]),
        "height": size["height"],
        "scale": 1,
    }
    shot = tools.call(
        "Page.captureScreenshot", timeout=60, format="png", captureBeyondViewport=True, clip=clip
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def _collect(events: list[dict], report: PageReport) -> None:
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            report.console_errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            report.console_errors.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            report.console_errors.append(
                f"{entry.get('source', 'log')}: {entry.get('text')} {entry.get('url', '')}"
            )
        elif method == "Network.requestWillBeSent":
            request_url = params.get("request", {}).get("url", "")
            if not request_url.startswith(_LOCAL_SCHEMES):
                report.network_requests.append(request_url)
