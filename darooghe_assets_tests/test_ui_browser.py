"""The views people look at, opened in headless Chromium (darooghe.charts.browser): the Dagster UI
started the way `make ui` starts it (its lineage from the generator to a chart, and a materialised
chart's PNG inline on its page) and the local Prometheus' query page on the consumer lag.

Both are React apps, so every check waits (bounded) for what the app draws, not for the load
event. Screenshots are kept under $DAROOGHE_HOME/artifacts for a person to look at.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Consumer, TopicPartition

from darooghe import dagster_home, kafka_io
from darooghe.charts.browser import find_chromium, open_browser
from darooghe.records import Record
from darooghe.services import prometheus
from darooghe_assets import constants as c
from darooghe_assets.assets.charts import chart_key
from darooghe_assets.definitions import defs
from darooghe_assets.resources import MongoResource, SettingsResource
from darooghe_tests.chart_seed import assert_real_picture, chart_documents, scratch_database

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="headless Chromium not installed (Debian: apt-get install chromium)",
    ),
]

CHART = chart_key("temporal_heatmap")  # reads one collection, so seeding it needs no Spark
#: the chart back to the generator, each asset an upstream dependency of the one before
LINEAGE = [
    CHART,
    c.TEMPORAL_PATTERNS,
    c.TRANSACTIONS_LAKE,
    c.VALID_TRANSACTIONS_TOPIC,
    c.VALIDATOR,
    c.TRANSACTIONS_TOPIC,
    c.HISTORICAL_BACKFILL,
]
UI_START_TIMEOUT = 240.0  # `dagster dev` loads the code location (pyspark, dagster) on 2 busy cores
PAGE_TIMEOUT = 90.0
LAG_TIMEOUT = 90.0  # the exporter is scraped every 5 s; its Kafka admin calls take a few seconds


def _artifact(settings, name: str) -> Path:
    path = settings.home / "artifacts" / name
    path.unlink(missing_ok=True)
    return path


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        body = json.load(resp)
    assert "errors" not in body, f"GraphQL {query[:60]!r} on port {port}: {body['errors']}"
    return body["data"]


_LOCATIONS = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


def _code_location_loaded(port: int) -> bool:
    """True once the webserver answers and every code location has loaded; a load error fails."""
    try:
        data = _graphql(port, _LOCATIONS)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    entries = data["workspaceOrError"].get("locationEntries") or []
    for entry in entries:
        location = entry["locationOrLoadError"] or {}
        assert location.get("__typename") != "PythonError", (
            f"code location {entry['name']} failed to load: {location.get('message')}"
        )
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _port_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@pytest.fixture(scope="module")
def dagster_ui(stack):
    """`darooghe ui` (what `make ui` runs) on the test home and DAROOGHE_DAGSTER_PORT; stopped with
    its whole process group (webserver, daemon, code servers) afterwards, whatever happened."""
    port = stack.dagster_port
    assert not _port_answers(port), (
        f"something already serves 127.0.0.1:{port} (DAROOGHE_DAGSTER_PORT): stop it first"
    )
    darooghe = shutil.which("darooghe", path=str(Path(sys.executable).parent))
    assert darooghe, f"no `darooghe` console script beside {sys.executable}"
    log_path = stack.logs_dir / "dagster-ui-test.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # Ctrl-C stops `dagster dev`, unless it inherits SIGINT ignored (as in a shell's `&` job):
    # Python then ignores SIGINT and, dagster mapping SIGTERM to it, SIGTERM too. A handler of
    # ours is reset to the default by exec, so hold one while starting it.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [darooghe, "ui"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one group: `dagster dev` and every process it starts
            )
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        deadline = time.monotonic() + UI_START_TIMEOUT
        while not _code_location_loaded(port):
            assert proc.poll() is None, (
                f"`darooghe ui` exited with {proc.returncode}; log {log_path}:\n"
                + log_path.read_text(errors="replace")[-3000:]
            )
            assert time.monotonic() < deadline, (
                f"the Dagster UI did not load its code location on 127.0.0.1:{port} within "
                f"{UI_START_TIMEOUT:.0f} s; log {log_path}"
            )
            time.sleep(1)
        # The community sign-up dialog (shown once per instance on 127.0.0.1) would cover the
        # pages: record it as seen, as its Skip button does.
        _graphql(port, "mutation { setNuxSeen }")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop_ui(proc)


def _stop_ui(proc: subprocess.Popen) -> None:
    """Ctrl-C, as at `make ui`: `dagster dev` stops its webserver and daemon; then anything of its
    group still there (or all of it, after a minute) is killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


@pytest.fixture(scope="module")
def materialised_chart(stack):
    """CHART materialised into the test home's Dagster instance (the one the UI shows), from a
    scratch database seeded with the collection it reads; returns its metadata."""
    dagster_home.prepare(stack)
    with scratch_database(stack) as db:
        db["temporal_patterns"].insert_many(chart_documents()["temporal_patterns"])
        with dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance:
            result = dg.materialize(
                [defs.get_assets_def(CHART)],
                instance=instance,
                resources={
                    "mongo": MongoResource(uri=stack.mongo_uri, database=db.name),
                    "settings": SettingsResource.of(stack),
                },
            )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    return event.materialization.metadata


def test_dagster_asset_graph_shows_the_lineage_from_the_generator_to_a_chart(dagster_ui, stack):
    port = stack.dagster_port
    nodes = _graphql(port, "{ assetNodes { assetKey { path } dependencyKeys { path } } }")
    parents = {
        tuple(n["assetKey"]["path"]): {tuple(d["path"]) for d in n["dependencyKeys"]}
        for n in nodes["assetNodes"]
    }
    for child, parent in itertools.pairwise(LINEAGE):
        assert tuple(parent.path) in parents[tuple(child.path)], (
            f"the UI's asset graph has no edge {parent.to_user_string()} -> "
            f"{child.to_user_string()}; {child.to_user_string()} depends on "
            f"{sorted('/'.join(p) for p in parents[tuple(child.path)])}"
        )

    url = (
        f"{dagster_ui}/assets/{CHART.to_user_string()}?view=lineage&lineageScope=upstream"
        f"&lineageDepth={len(LINEAGE)}"
    )
    expected = [key.path[-1] for key in LINEAGE]  # a node shows the last part of its key
    shot = _artifact(stack, "dagster-lineage.png")
    # Wide enough that the graph is drawn at a scale showing whole names, not "historic…_backfill".
    with open_browser(width=2400, height=1200) as tab:
        tab.goto(url, PAGE_TIMEOUT)
        shown = tab.wait_for(
            f"""(() => {{
              const names = Array.from(document.querySelectorAll(
                'svg foreignObject [class*="assetName"]')).map(e => e.innerText.trim());
              return {json.dumps(expected)}.every(n => names.includes(n)) && names;
            }})()""",
            f"asset graph nodes {expected}",
            PAGE_TIMEOUT,
        )
        edges = tab.evaluate("document.querySelectorAll('svg path').length")
        tab.wait_for(
            "!Array.from(document.querySelectorAll('[role=dialog]')).some(d => d.offsetParent)",
            "no dialog over the graph",
            10,
        )
        tab.screenshot(shot)
    assert set(expected) <= set(shown)
    assert edges >= len(LINEAGE) - 1, f"{edges} SVG paths drawn for {len(LINEAGE)} nodes"
    assert_real_picture(shot.read_bytes())
    print(f"lineage screenshot: {shot}; nodes shown: {shown}")


_PLOT_ROW_CLICK = """(() => {
  const row = Array.from(document.querySelectorAll('tr'))
    .find(r => r.cells.length && r.cells[0].innerText.trim() === 'plot');
  if (!row) return null;
  const link = Array.from(row.querySelectorAll('a, button'))
    .find(e => e.innerText.includes('Show Markdown'));
  if (!link) return null;
  link.click();
  return row.innerText;
})()"""
_INLINE_IMAGE = """(() => {
  const img = Array.from(document.images).find(i => i.src.startsWith('data:image/png;base64,')
    && i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0);
  return img ? {src: img.src, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
                shownWidth: img.getBoundingClientRect().width, alt: img.alt} : null;
})()"""


def test_chart_asset_page_shows_its_png_inline(dagster_ui, materialised_chart, stack):
    png = Path(materialised_chart["png"].value).read_bytes()
    shot = _artifact(stack, "dagster-chart.png")
    with open_browser(width=1600, height=1200) as tab:
        tab.goto(f"{dagster_ui}/assets/{CHART.to_user_string()}?view=overview", PAGE_TIMEOUT)
        # The metadata table shows a Markdown value behind a link; the dialog renders it.
        tab.wait_for(_PLOT_ROW_CLICK, "the `plot` metadata row with [Show Markdown]", PAGE_TIMEOUT)
        image = tab.wait_for(_INLINE_IMAGE, "an inline data:image/png <img> drawn", PAGE_TIMEOUT)
        tab.screenshot(shot)
    assert image["naturalWidth"] > 0 and image["shownWidth"] > 0, image
    shown = base64.b64decode(image["src"].split(",", 1)[1])
    assert shown == png, "the page shows another picture than the materialised chart's PNG"
    assert image["alt"] == "Transactions by weekday and hour (Asia/Tehran)"
    assert_real_picture(shot.read_bytes())
    print(f"chart screenshot: {shot}; image {image['naturalWidth']}x{image['naturalHeight']}")


def _wait_for_value(stack, promql: str, wanted: str, ok) -> float:
    """Poll Prometheus until the first series of `promql` has a value `ok` accepts."""
    deadline = time.monotonic() + LAG_TIMEOUT
    while True:
        result = prometheus.query(stack, promql)
        if result and ok(float(result[0]["value"][1])):
            return float(result[0]["value"][1])
        assert time.monotonic() < deadline, (
            f"Prometheus on 127.0.0.1:{stack.prometheus_port}: no {promql} {wanted} after "
            f"{LAG_TIMEOUT:.0f} s (last result: {result})"
        )
        time.sleep(2)


def test_prometheus_query_page_shows_the_consumer_lag(stack, unique_topic):
    topic = unique_topic("browser-lag")
    group = f"browser-lag-{topic}"
    kafka_io.produce_records(
        topic, [Record(None, str(i), 1_700_000_000_000 + i) for i in range(10)], stack
    )
    consumer = Consumer(kafka_io.consumer_config(group, stack))
    consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    consumer.close()
    promql = f'darooghe_kafka_consumer_lag{{group="{group}"}}'
    # The API first: the page can only show what was scraped. Three samples (10 s at the 5 s
    # scrape interval) make a line in the graph's last minute, not a dot.
    _wait_for_value(stack, promql, "= 6", lambda v: v == 6)
    _wait_for_value(stack, f"count_over_time({promql}[1m])", ">= 3", lambda v: v >= 3)

    panels = {"g0.expr": promql, "g0.tab": "table", "g1.expr": promql, "g1.tab": "graph",
              "g1.range_input": "1m"}
    url = prometheus.api_url(stack, "/query?" + urllib.parse.urlencode(panels))
    shot = _artifact(stack, "prometheus-lag.png")
    with open_browser(width=1400, height=1200) as tab:
        tab.goto(url, PAGE_TIMEOUT)
        not_built = tab.evaluate("document.body.innerText.includes('Error opening React')")
        assert not not_built, (
            f"Prometheus on 127.0.0.1:{stack.prometheus_port} serves no web UI: "
            f"{prometheus.ui_dir(stack)} lacks static/mantine-ui (`make install` builds it)"
        )
        row = tab.wait_for(
            f"""(() => {{
              const row = Array.from(document.querySelectorAll('table tr'))
                .find(r => r.innerText.includes({json.dumps(group)}));
              return row ? row.innerText : null;
            }})()""",
            f"a result-table row of {promql}",
            PAGE_TIMEOUT,
        )
        plotted = tab.wait_for(
            f"""(() => {{
              const labels = Array.from(document.querySelectorAll('.uplot .u-legend .u-label'));
              return labels.filter(l => l.innerText.includes({json.dumps(group)})).length;
            }})()""",
            f"a plotted series of {promql} in the graph panel's legend",
            PAGE_TIMEOUT,
        )
        tab.screenshot(shot)
    assert re.search(rf"\btopic=\"?{re.escape(topic)}", row) and re.search(r"\b6\s*$", row), row
    assert plotted == 1, f"{plotted} plotted series of {group}, expected one (partition 0)"
    assert_real_picture(shot.read_bytes())
    print(f"prometheus screenshot: {shot}; row: {row!r}")
