"""Our DevTools client (darooghe.charts.browser) against Playwright, on the dashboard check.

    .venv/bin/python -m bench.browser [--page .darooghe/charts/dashboard.html] [--rounds 5]

The dashboard test asks one question of a page: did every chart draw, with a clean console and no
request leaving the machine? Both drivers answer it here on the same page, with the system Chromium
(Playwright's `executable_path`; it downloads no browser), in alternating rounds, and print the
wall time per page, the answers (which must agree), and what each needs on a fresh machine.

Playwright is not a project dependency; install it to run this (`pip install playwright`, ~48 MB
wheel with its own Node driver). Playwright launches Chromium without its sandbox unless told
otherwise, and Chromium refuses the sandbox to root: as root it would run the page unsandboxed,
where our client runs Chromium as an unprivileged user with the sandbox on (see browser.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from darooghe.charts.browser import _CHART_STATE_JS, _LOCAL_SCHEMES, find_chromium, inspect_page


def ours(page: Path) -> dict:
    report = inspect_page(page)
    return {
        "drawn": sorted(report.drawn),
        "not_drawn": sorted(report.not_drawn),
        "console_errors": report.console_errors,
        "network": report.network_requests,
    }


def playwright(page: Path, chromium: str) -> dict:
    import json

    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    network: list[str] = []
    with sync_playwright() as p:
        # Root cannot have the sandbox (Chromium refuses it); anyone else keeps it.
        browser = p.chromium.launch(
            executable_path=chromium, chromium_sandbox=os.geteuid() != 0, headless=True
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.on(
            "request", lambda r: None if r.url.startswith(_LOCAL_SCHEMES) else network.append(r.url)
        )
        tab.goto(page.resolve().as_uri())
        deadline = time.monotonic() + 60
        while True:
            charts = json.loads(tab.evaluate(_CHART_STATE_JS))
            missing = [c["name"] for c in charts if not (c["plot"] and c["svgs"] > 0)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        tab.wait_for_timeout(500)
        browser.close()
    drawn = [c["name"] for c in charts if c["plot"] and c["svgs"] > 0]
    return {
        "drawn": sorted(drawn),
        "not_drawn": sorted(missing),
        "console_errors": errors,
        "network": network,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", type=Path, default=Path(".darooghe/charts/dashboard.html"))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    if not args.page.is_file():
        raise SystemExit(f"bench.browser: {args.page} does not exist; run `make demo` first")
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("bench.browser: no Chromium on PATH (Debian: apt-get install chromium)")
    times: dict[str, list[float]] = {"ours": [], "playwright": []}
    answers: dict[str, dict] = {}
    for i in range(args.rounds):
        for name, run in (
            ("ours", lambda: ours(args.page)),
            ("playwright", lambda: playwright(args.page, chromium)),
        ):
            t0 = time.perf_counter()
            answers[name] = run()
            times[name].append(time.perf_counter() - t0)
            print(f"round {i + 1}/{args.rounds} {name}: {times[name][-1]:.2f} s", flush=True)
    for name, ts in times.items():
        a = answers[name]
        print(
            f"{name:10s} median {statistics.median(ts):.2f} s  drawn {len(a['drawn'])} "
            f"not drawn {a['not_drawn']} console errors {len(a['console_errors'])} "
            f"network {len(a['network'])}"
        )
    ratio = statistics.median(times["playwright"]) / statistics.median(times["ours"])
    print(
        f"playwright / ours wall time: {ratio:.2f}; answers agree: {answers['ours'] == answers['playwright']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
