"""Static PNG rendering of a `Chart` with seaborn on matplotlib.

Figures are built with `matplotlib.figure.Figure` rather than pyplot: no global figure registry,
no GUI backend, nothing to close, so concurrent Dagster runs cannot leak or share figures.
"""

from __future__ import annotations

import io
import math

import matplotlib.dates as mdates
import matplotlib.ticker as mticker
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from darooghe.charts.model import SINGLE_COLOR, Chart, Panel, empty_message, hue_levels, palette_for

DPI = 100
_STYLE = {
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.fontsize": 9,
}


def render_png(chart: Chart) -> bytes:
    """The chart as PNG bytes: one axes per panel, titled, labelled, with legends."""
    n = len(chart.panels)
    ncols = max(1, min(chart.columns, n))
    nrows = math.ceil(n / ncols)
    width = 14 if ncols > 1 else 12
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", rc=_STYLE):
        fig = Figure(figsize=(width, 4.4 * nrows + 0.8), dpi=DPI)
        axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
        for ax, panel in zip(axes, chart.panels):
            _draw(ax, panel.scaled())
        for ax in axes[n:]:
            ax.set_visible(False)
        fig.suptitle(chart.title, fontsize=15, fontweight="bold")
        if chart.empty:
            fig.text(
                0.5, 0.005, chart.note(), ha="center", va="bottom", fontsize=9, color="#666666"
            )
        fig.tight_layout(rect=(0, 0.02, 1, 0.97))
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _draw(ax, panel: Panel) -> None:
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    if panel.empty:
        ax.text(
            0.5,
            0.5,
            empty_message(panel),
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=13,
            color="#777777",
        )
        ax.set_xticks([])
        ax.set_yticks([])
        return
    levels = hue_levels(panel)
    palette = palette_for(levels)
    DRAW[panel.kind](ax, panel, levels, palette)
    if levels and panel.kind not in ("bar", "heatmap"):  # a bar's hue colours its own labelled bars
        ax.legend(title=panel.legend_title or panel.hue, loc="best", frameon=True)


def _bar(ax, panel, levels, palette):
    data = panel.data
    colors = [palette[v] for v in data[panel.hue]] if levels else SINGLE_COLOR
    ax.bar(data[panel.x].astype(str), data[panel.y], color=colors)
    ax.yaxis.set_major_formatter(_NUMBER)
    ax.tick_params(axis="x", labelrotation=20 if len(data) > 4 else 0)
    _label_bars(ax)
    ax.margins(y=0.12)  # room for the value labels above the bars


def _barh(ax, panel, levels, palette):
    data = panel.data.iloc[::-1]  # first row on top
    ax.barh(data[panel.y].astype(str), data[panel.x], color=SINGLE_COLOR)
    ax.xaxis.set_major_formatter(_NUMBER)
    _label_bars(ax)
    ax.margins(x=0.15)


def _timebar(ax, panel, levels, palette):
    data = panel.data
    width = panel.bucket / np.timedelta64(1, "D") * 0.85
    if not levels:
        ax.bar(data[panel.x], data[panel.y], width=width, color=SINGLE_COLOR, align="edge")
    else:
        table = data.pivot_table(
            index=panel.x, columns=panel.hue, values=panel.y, aggfunc="sum", fill_value=0
        )
        bottom = np.zeros(len(table))
        for level in levels:
            values = table[level].to_numpy() if level in table else np.zeros(len(table))
            ax.bar(
                table.index,
                values,
                width=width,
                bottom=bottom,
                label=str(level),
                color=palette[level],
                align="edge",
            )
            bottom += values
    _time_axis(ax)
    ax.yaxis.set_major_formatter(_NUMBER)


def _line(ax, panel, levels, palette):
    data = panel.data.sort_values(panel.x)
    if not levels:
        ax.plot(data[panel.x], data[panel.y], marker="o", markersize=3, color=SINGLE_COLOR)
    for level in levels:
        part = data[data[panel.hue] == level]
        ax.plot(
            part[panel.x],
            part[panel.y],
            marker="o",
            markersize=3,
            label=str(level),
            color=palette[level],
        )
    _time_axis(ax)
    ax.yaxis.set_major_formatter(_NUMBER)


def _hist(ax, panel, levels, palette):
    sns.histplot(
        data=panel.data,
        x=panel.x,
        hue=panel.hue,
        hue_order=levels or None,
        bins=panel.bins,
        multiple="stack",
        palette=palette or None,
        color=SINGLE_COLOR,
        ax=ax,
        legend=bool(levels),
    )
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.yaxis.set_major_formatter(_NUMBER)


def _heatmap(ax, panel, levels, palette):
    sns.heatmap(
        panel.data,
        ax=ax,
        cmap="YlOrRd",
        linewidths=0.3,
        linecolor="white",
        cbar_kws={"label": panel.value_label},
    )
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)
    ax.tick_params(axis="y", labelrotation=0)


def _scatter(ax, panel, levels, palette):
    sns.scatterplot(
        data=panel.data,
        x=panel.x,
        y=panel.y,
        hue=panel.hue,
        hue_order=levels or None,
        palette=palette or None,
        s=18,
        alpha=0.7,
        ax=ax,
        legend=bool(levels),
    )
    ax.set_xlabel(panel.xlabel)
    ax.set_ylabel(panel.ylabel)


DRAW = {
    "bar": _bar,
    "barh": _barh,
    "timebar": _timebar,
    "line": _line,
    "hist": _hist,
    "heatmap": _heatmap,
    "scatter": _scatter,
}


def _format_number(value: float, _pos=None) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.3g}"


_NUMBER = mticker.FuncFormatter(_format_number)


def _label_bars(ax) -> None:
    for container in ax.containers:
        ax.bar_label(
            container,
            labels=[_format_number(v) for v in container.datavalues],
            padding=3,
            fontsize=9,
        )


def _time_axis(ax) -> None:
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
