"""dashboard.html: one self-contained page, checked in headless Chromium (Debian's `chromium`):
every chart drew, the console stayed clean, nothing was fetched from the network. One full-page
screenshot is kept as a test artefact under $DAROOGHE_HOME/artifacts."""

from __future__ import annotations

import re

import pytest
from plotly.offline import get_plotlyjs

from darooghe.charts import catalog
from darooghe.charts.browser import BrowserError, find_chromium, inspect_page
from darooghe.charts.dashboard import DASHBOARD, build_dashboard
from darooghe_tests.chart_seed import assert_real_picture, seed

CHART_NAMES = [spec.name for spec in catalog.CHARTS]
needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="headless Chromium not installed (Debian: apt-get install chromium)",
)


@pytest.fixture(scope="module")
def charts_dir(scratch_db, spark, tmp_path_factory):
    """Every chart rendered from the seeded database, and the dashboard built from them."""
    seed(scratch_db, spark)
    out = tmp_path_factory.mktemp("charts")
    catalog.render_all(scratch_db, out, log=lambda _: None)
    build_dashboard(out)
    return out


@pytest.mark.integration
def test_dashboard_embeds_plotly_once_and_every_chart(charts_dir):
    page = (charts_dir / DASHBOARD).read_text()
    assert page.count(get_plotlyjs()) == 1
    ours = page.replace(get_plotlyjs(), "")  # the page's own markup, without the library
    assert re.findall(r"<script[^>]*\bsrc=", ours) == []  # nothing loaded from outside the page
    assert re.findall(r'(?:src|href)="https?://', ours) == []
    for name in CHART_NAMES:
        assert f'data-chart="{name}"' in page and f'id="chart-{name}"' in page
        assert f'href="{name}.png"' in page


def test_dashboard_marks_charts_not_rendered_yet(tmp_path):
    report = build_dashboard(tmp_path)
    assert report.charts == [] and report.missing == CHART_NAMES
    page = report.path.read_text()
    assert page.count("data-chart-missing=") == len(CHART_NAMES)
    assert "Not rendered yet: materialise the asset <code>charts/volume_history</code>" in page


@pytest.mark.integration
@needs_chromium
def test_dashboard_draws_every_chart_in_headless_chromium_without_errors_or_network(
    charts_dir, settings
):
    artefact = settings.home / "artifacts" / "dashboard.png"
    artefact.unlink(missing_ok=True)
    report = inspect_page(charts_dir / DASHBOARD, screenshot=artefact)
    assert [c["name"] for c in report.charts] == CHART_NAMES
    assert report.not_drawn == [], report.charts
    assert all(c["svgs"] >= 1 for c in report.charts)
    assert report.console_errors == []
    assert report.network_requests == []
    image = assert_real_picture(artefact.read_bytes(), min_size=100_000)
    assert image.height > 5_000  # the whole page, not only the first screen
    print(
        f"dashboard screenshot: {artefact} ({image.width}x{image.height}), {report.seconds:.1f} s"
    )


@pytest.mark.integration
@needs_chromium
def test_dashboard_of_an_empty_database_draws_no_data_yet_figures(scratch_db, tmp_path):
    empty_db = scratch_db.client[scratch_db.name + "_empty"]
    try:
        catalog.render_all(empty_db, tmp_path, log=lambda _: None)
    finally:
        scratch_db.client.drop_database(empty_db.name)
    report = build_dashboard(tmp_path)
    assert report.empty == CHART_NAMES
    page = inspect_page(report.path)
    assert page.not_drawn == [] and page.console_errors == [] and page.network_requests == []


@needs_chromium
def test_browser_check_catches_errors_missing_plots_and_network(tmp_path):
    """The check above is only worth something if it fails on a broken page."""
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><body>"
        '<section data-chart="a"><div class="js-plotly-plot"></div></section>'
        "<script>console.error('boom'); undefinedFunction();</script>"
        '<img src="http://127.0.0.1:9/logo.png">'
        "</body></html>"
    )
    report = inspect_page(broken, timeout=3)
    assert report.not_drawn == ["a"]
    assert any("boom" in e for e in report.console_errors)
    assert any("undefinedFunction" in e for e in report.console_errors)
    assert report.network_requests == ["http://127.0.0.1:9/logo.png"]


def test_missing_chromium_is_reported_by_name(tmp_path):
    with pytest.raises(BrowserError, match="chromium exited|no Chromium|DevTools"):
        inspect_page(tmp_path / "x.html", chromium="/bin/false")
