"""`dashboard.html`: one self-contained page gathering every interactive chart.

It is assembled from the `<name>.json` figures the chart renderings left in the charts folder, so it
never queries MongoDB itself and always shows exactly what the charts show. plotly.js is embedded
once in the page: opened straight from disk, it needs no network and no other file.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from darooghe.charts.catalog import CHARTS, ChartSpec
from darooghe.charts.files import PLOT_CONFIG, write_atomic

DASHBOARD = "dashboard.html"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f4f5f7;
       color: #1d1d1f; }
header { background: #12355b; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 0; opacity: 0.85; font-size: 14px; }
nav { padding: 10px 32px; background: white; border-bottom: 1px solid #dde1e6; font-size: 14px; }
nav a { margin-right: 14px; color: #12355b; text-decoration: none; white-space: nowrap; }
main { padding: 16px 32px 40px 32px; }
section.chart { background: white; border: 1px solid #dde1e6; border-radius: 8px; margin: 0 0 20px 0;
                padding: 12px 16px; }
section.chart h2 { font-size: 18px; margin: 4px 0; }
p.description { margin: 2px 0 6px 0; color: #444; font-size: 14px; }
p.note { margin: 2px 0 6px 0; color: #8a5a00; font-size: 13px; }
p.files { margin: 6px 0 0 0; font-size: 13px; }
p.files a { color: #12355b; }
section.missing { color: #8a5a00; }
"""


@dataclass
class DashboardReport:
    path: Path
    charts: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    size_bytes: int = 0


def _section(spec: ChartSpec, facts: dict) -> str:
    figure = go.Figure(facts["figure"])
    figure.update_layout(title_text="", margin_t=50)  # the section heading carries the title
    div = pio.to_html(
        figure,
        full_html=False,
        include_plotlyjs=False,
        div_id=f"chart-{spec.name}",
        config=PLOT_CONFIG,
        default_width="100%",
    )
    note = f'<p class="note">{html.escape(facts["note"])}</p>' if facts.get("note") else ""
    return (
        f'<section class="chart" id="{spec.name}" data-chart="{spec.name}" '
        f'data-empty="{str(bool(facts.get("empty"))).lower()}">\n'
        f"<h2>{html.escape(facts['title'])}</h2>\n"
        f'<p class="description">{html.escape(spec.description)} '
        f"Reads: {html.escape(', '.join(facts.get('sources', spec.reads)))}; "
        f"rendered {html.escape(facts.get('rendered_at', '?'))}.</p>\n{note}\n{div}\n"
        f'<p class="files">Files: <a href="{facts["png"]}">{facts["png"]}</a> · '
        f'<a href="{facts["html"]}">{facts["html"]}</a></p>\n</section>'
    )


def _missing_section(spec: ChartSpec) -> str:
    return (
        f'<section class="chart missing" id="{spec.name}" data-chart-missing="{spec.name}">\n'
        f"<h2>{html.escape(spec.name)}</h2>\n<p>Not rendered yet: materialise the asset "
        f"<code>charts/{spec.name}</code> (or run every chart asset) and rebuild the dashboard.</p>\n</section>"
    )


def build_dashboard(out_dir: Path, charts: Iterable[ChartSpec] = CHARTS) -> DashboardReport:
    """Write `dashboard.html` in `out_dir` from the chart figures found there."""
    out_dir = Path(out_dir)
    report = DashboardReport(path=out_dir / DASHBOARD)
    sections, links = [], []
    for spec in charts:
        figure_file = out_dir / f"{spec.name}.json"
        if not figure_file.is_file():
            report.missing.append(spec.name)
            sections.append(_missing_section(spec))
            continue
        facts = json.loads(figure_file.read_text(encoding="utf-8"))
        report.charts.append(spec.name)
        if facts.get("empty"):
            report.empty.append(spec.name)
        sections.append(_section(spec, facts))
        links.append(f'<a href="#{spec.name}">{html.escape(facts["title"])}</a>')
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    summary = f"{len(report.charts)} charts"
    if report.empty:
        summary += f", {len(report.empty)} with no data yet"
    if report.missing:
        summary += f", {len(report.missing)} not rendered yet"
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Darooghe dashboard</title>\n<style>{_STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>\n<body>\n'
        "<header><h1>Darooghe: payment pipeline dashboard</h1>\n"
        f"<p>Generated {generated} from the charts in {html.escape(str(out_dir))}; {summary}. "
        "Amounts are in Iranian rials (IRR).</p></header>\n"
        f"<nav>{' '.join(links)}</nav>\n<main>\n"
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )
    write_atomic(report.path, page)
    report.size_bytes = report.path.stat().st_size
    return report
