"""Interactive rendering of a `Chart` with plotly: one figure, one subplot per panel.

Only SVG trace types are used (no WebGL `scattergl`), so the pages draw in any browser, including
headless Chromium without a GPU.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from darooghe.charts.model import SINGLE_COLOR, Chart, Panel, empty_message, hue_levels, palette_for

ROW_HEIGHT = 380


def render_figure(chart: Chart) -> go.Figure:
    panels = [p.scaled() for p in chart.panels]
    n = len(panels)
    ncols = max(1, min(chart.columns, n))
    nrows = math.ceil(n / ncols)
    specs = [[{} if r * ncols + c < n else None for c in range(ncols)] for r in range(nrows)]
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        specs=specs,
        subplot_titles=[p.title for p in panels],
        horizontal_spacing=0.1 if ncols > 1 else 0.05,
        vertical_spacing=min(0.3 / nrows, 0.12) if nrows > 1 else 0.1,
    )
    in_legend: set[str] = set()
    for i, panel in enumerate(panels):
        row, col = i // ncols + 1, i % ncols + 1
        fig.update_xaxes(title_text=panel.xlabel, row=row, col=col)
        fig.update_yaxes(title_text=panel.ylabel, row=row, col=col)
        if panel.empty:
            fig.add_annotation(
                text=empty_message(panel).replace("\n", "<br>"),
                x=0.5,
                y=0.5,
                xref="x domain",
                yref="y domain",
                showarrow=False,
                font={"size": 15, "color": "#777777"},
                row=row,
                col=col,
            )
            fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=row, col=col)
            fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, row=row, col=col)
            continue
        levels = hue_levels(panel)
        for trace in TRACES[panel.kind](panel, levels, palette_for(levels)):
            name = trace.name
            if name:
                trace.legendgroup = name
                trace.showlegend = name not in in_legend
                in_legend.add(name)
            else:
                trace.showlegend = False
            fig.add_trace(trace, row=row, col=col)
        if panel.kind == "barh":
            fig.update_yaxes(autorange="reversed", row=row, col=col)
        if panel.kind == "heatmap":
            _place_colorbar(fig, row, col, ncols)
    fig.update_layout(
        title={"text": chart.title, "x": 0.01, "font": {"size": 20}},
        template="plotly_white",
        barmode="stack",
        height=ROW_HEIGHT * nrows + 110,
        margin={"t": 90, "l": 70, "r": 40, "b": 60},
        legend={"title": {"text": ""}, "orientation": "v"},
        hovermode="closest",
    )
    return fig


def _hover(panel: Panel, xfmt: str = "%{x}", yfmt: str = "%{y:,.4~g}") -> str:
    return f"{panel.xlabel}: {xfmt}<br>{panel.ylabel}: {yfmt}<extra>%{{fullData.name}}</extra>"


def _bar(panel, levels, palette):
    data = panel.data
    colors = [palette[v] for v in data[panel.hue]] if levels else SINGLE_COLOR
    return [
        go.Bar(
            x=data[panel.x].astype(str),
            y=data[panel.y],
            marker_color=colors,
            name="",
            text=data[panel.y].map(_number),
            textposition="outside",
            cliponaxis=False,
            hovertemplate=_hover(panel),
        )
    ]


def _barh(panel, levels, palette):
    data = panel.data
    return [
        go.Bar(
            x=data[panel.x],
            y=data[panel.y].astype(str),
            orientation="h",
            marker_color=SINGLE_COLOR,
            name="",
            text=data[panel.x].map(_number),
            textposition="outside",
            cliponaxis=False,
            hovertemplate=_hover(panel, "%{x:,.4~g}", "%{y}"),
        )
    ]


def _timebar(panel, levels, palette):
    data = panel.data
    width_ms = panel.bucket.total_seconds() * 1000 * 0.85
    if not levels:
        return [
            go.Bar(
                x=data[panel.x],
                y=data[panel.y],
                width=width_ms,
                offset=0,
                marker_color=SINGLE_COLOR,
                name="",
                hovertemplate=_hover(panel),
            )
        ]
    return [
        go.Bar(
            x=part[panel.x],
            y=part[panel.y],
            width=width_ms,
            offset=0,
            name=str(level),
            marker_color=palette[level],
            hovertemplate=_hover(panel),
        )
        for level in levels
        for part in [data[data[panel.hue] == level]]
    ]


def _line(panel, levels, palette):
    data = panel.data.sort_values(panel.x)
    if not levels:
        return [
            go.Scatter(
                x=data[panel.x],
                y=data[panel.y],
                mode="lines+markers",
                name="",
                line={"color": SINGLE_COLOR},
                hovertemplate=_hover(panel),
            )
        ]
    return [
        go.Scatter(
            x=part[panel.x],
            y=part[panel.y],
            mode="lines+markers",
            name=str(level),
            line={"color": palette[level]},
            marker={"size": 5},
            hovertemplate=_hover(panel),
        )
        for level in levels
        for part in [data[data[panel.hue] == level]]
    ]


def _hist(panel, levels, palette):
    data = panel.data
    groups = [(str(level), data[data[panel.hue] == level], palette[level]) for level in levels] or [
        ("", data, SINGLE_COLOR)
    ]
    return [
        go.Histogram(
            x=part[panel.x],
            nbinsx=panel.bins,
            name=name,
            marker_color=color,
            hovertemplate=f"{panel.xlabel}: %{{x}}<br>{panel.ylabel}: %{{y}}<extra></extra>",
        )
        for name, part, color in groups
    ]


def _heatmap(panel, levels, palette):
    data = panel.data
    return [
        go.Heatmap(
            z=data.to_numpy(),
            x=[str(c) for c in data.columns],
            y=[str(i) for i in data.index],
            colorscale="YlOrRd",
            colorbar={"title": {"text": panel.value_label}},
            name="",
            hovertemplate=f"{panel.ylabel}: %{{y}}<br>{panel.xlabel}: %{{x}}<br>"
            f"{panel.value_label}: %{{z:,.4~g}}<extra></extra>",
        )
    ]


def _scatter(panel, levels, palette):
    data = panel.data
    groups = [(str(level), data[data[panel.hue] == level], palette[level]) for level in levels] or [
        ("", data, SINGLE_COLOR)
    ]
    return [
        go.Scatter(
            x=part[panel.x],
            y=part[panel.y],
            mode="markers",
            name=name,
            marker={"color": color, "size": 6, "opacity": 0.7},
            hovertemplate=_hover(panel),
        )
        for name, part, color in groups
    ]


TRACES = {
    "bar": _bar,
    "barh": _barh,
    "timebar": _timebar,
    "line": _line,
    "hist": _hist,
    "heatmap": _heatmap,
    "scatter": _scatter,
}


def _number(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.3g}"


def _place_colorbar(fig: go.Figure, row: int, col: int, ncols: int) -> None:
    """Put a heatmap's colour bar beside its own subplot, not over the others."""
    subplot = fig.get_subplot(row, col)
    y0, y1 = subplot.yaxis.domain
    x1 = subplot.xaxis.domain[1]
    fig.data[-1].colorbar.update(
        y=(y0 + y1) / 2, len=(y1 - y0), yanchor="middle", x=x1 + 0.01, xanchor="left"
    )
