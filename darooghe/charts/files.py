"""The files of a rendered chart under the charts folder: `<name>.png`, `<name>.html`, `<name>.json`.

- `<name>.png`: the static picture (also shown inline in the Dagster UI).
- `<name>.html`: the interactive page; it loads `plotly.min.js` from the same folder (written once
  here), so it opens from disk with no network and without 4.8 MB of plotly.js per chart.
- `<name>.json`: the plotly figure and the chart's facts, from which `dashboard.html` is assembled.
Files are written to a temporary name and renamed, so a reader (the dashboard, a browser) never
sees half a file while charts are being redrawn in parallel runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import plotly.io as pio
from plotly.offline import get_plotlyjs

from darooghe.charts.interactive import render_figure
from darooghe.charts.model import Chart
from darooghe.charts.static import render_png

PLOTLY_JS = "plotly.min.js"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class ChartFiles:
    name: str
    png: Path
    html: Path
    figure_json: Path
    png_bytes: bytes


def write_atomic(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_plotly_js(out_dir: Path) -> Path:
    """plotly.js beside the chart pages (rewritten when the installed plotly's bundle differs)."""
    path = out_dir / PLOTLY_JS
    bundle = get_plotlyjs()
    if not path.is_file() or path.stat().st_size != len(bundle.encode("utf-8")):
        write_atomic(path, bundle)
    return path


def write_chart(chart: Chart, out_dir: Path) -> ChartFiles:
    """Render `chart` to its three files in `out_dir`."""
    out_dir = Path(out_dir)
    png_bytes = render_png(chart)
    figure = render_figure(chart)
    ensure_plotly_js(out_dir)
    png = out_dir / f"{chart.name}.png"
    html = out_dir / f"{chart.name}.html"
    figure_json = out_dir / f"{chart.name}.json"
    write_atomic(png, png_bytes)
    write_atomic(
        html, pio.to_html(figure, include_plotlyjs=PLOTLY_JS, full_html=True, config=PLOT_CONFIG)
    )
    facts = {
        "name": chart.name,
        "title": chart.title,
        "sources": list(chart.sources),
        "rows_read": chart.rows_read,
        "empty": chart.empty,
        "note": chart.note(),
        "rendered_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "png": png.name,
        "html": html.name,
        "figure": json.loads(pio.to_json(figure, validate=False)),
    }
    write_atomic(figure_json, json.dumps(facts))
    return ChartFiles(chart.name, png, html, figure_json, png_bytes)
