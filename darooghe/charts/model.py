"""What a chart is, independent of the library that draws it: a title and a list of panels.

Every chart is drawn twice — a static PNG (seaborn/matplotlib) and an interactive page (plotly) —
so the chart builders only prepare tidy data and describe panels; `static.py` and `interactive.py`
each draw every panel kind once. Both renderers take colours from `palette_for`, so a category,
a rule or an error code has the same colour in every picture and on the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from darooghe import schema

PANEL_KINDS = ("bar", "barh", "timebar", "line", "hist", "heatmap", "scatter")


@dataclass
class Panel:
    """One plot of a chart.

    kind: "bar" (categories on x), "barh" (categories on y, a ranking), "timebar" (stacked bars over
    time by `hue`), "line" (lines over time by `hue`), "hist" (distribution of `x`, stacked by
    `hue`), "heatmap" (`data` is the matrix: index = rows, columns = columns), "scatter".
    Labels may contain "{irr}", replaced by the unit the IRR values were scaled to.
    """

    title: str
    kind: str
    data: pd.DataFrame
    x: str = ""
    y: str = ""
    hue: str | None = None
    xlabel: str = ""
    ylabel: str = ""
    #: collection(s) the panel reads, named when there is nothing to draw yet
    source: str = ""
    #: the column holding IRR amounts (for a heatmap: any name, the matrix is scaled), divided to
    #: thousand/million/billion IRR for readable ticks
    irr_column: str | None = None
    #: bar width of a "timebar" panel
    bucket: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(hours=1))
    bins: int = 30
    #: label of the colour scale of a heatmap
    value_label: str = ""
    legend_title: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PANEL_KINDS:
            raise ValueError(
                f"panel {self.title!r}: kind {self.kind!r} is not one of {PANEL_KINDS}"
            )

    @property
    def empty(self) -> bool:
        return self.data is None or self.data.empty

    def scaled(self) -> Panel:
        """A copy with the IRR column divided to a readable unit and "{irr}" in labels filled in."""
        data = self.data
        unit = "IRR"
        if self.irr_column and not self.empty:
            # A heatmap's values are the whole matrix; other panels name their IRR column.
            values = data.stack() if self.kind == "heatmap" else data[self.irr_column]
            factor, unit = irr_scale(values)
            if factor != 1:
                data = data.copy()
                if self.kind == "heatmap":
                    data = data / factor
                else:
                    data[self.irr_column] = data[self.irr_column] / factor
        labels = {
            name: getattr(self, name).replace("{irr}", unit)
            for name in ("title", "xlabel", "ylabel", "value_label")
        }
        return Panel(**{**self.__dict__, "data": data, **labels})


@dataclass
class Chart:
    name: str
    title: str
    panels: list[Panel]
    #: collections read (for the metadata and the "no data yet" note)
    sources: tuple[str, ...]
    #: documents (or grouped rows) read from MongoDB
    rows_read: int = 0
    columns: int = 2
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return all(p.empty for p in self.panels)

    @property
    def empty_panels(self) -> list[str]:
        return [p.title for p in self.panels if p.empty]

    def note(self) -> str:
        if self.empty:
            return f"no data yet: {', '.join(self.sources)} empty"
        parts = list(self.notes)
        if self.empty_panels:
            parts.append("no data yet for: " + "; ".join(self.empty_panels))
        return " ".join(parts)


def irr_scale(values: pd.Series) -> tuple[float, str]:
    """(divisor, unit) that keeps tick labels short: IRR amounts run to billions."""
    peak = float(values.abs().max()) if len(values) else 0.0
    if peak >= 1e10:
        return 1e9, "billion IRR"
    if peak >= 1e7:
        return 1e6, "million IRR"
    if peak >= 1e4:
        return 1e3, "thousand IRR"
    return 1.0, "IRR"


def time_bucket(times: pd.Series, max_bars: int = 96) -> pd.Timedelta:
    """The finest of hour / 6 hours / day that keeps a time axis under `max_bars` bars."""
    if times.empty:
        return pd.Timedelta(hours=1)
    span = times.max() - times.min()
    for bucket in (pd.Timedelta(hours=1), pd.Timedelta(hours=6), pd.Timedelta(days=1)):
        if span / bucket < max_bars:
            return bucket
    return pd.Timedelta(days=7)


# --- colours --------------------------------------------------------------------------------------
# seaborn "colorblind" palette, spelled out so the renderers need no seaborn import to agree.
_PALETTE = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#fbafe4",
    "#949494",
    "#ece133",
    "#56b4e9",
)
_DOMAINS = (
    schema.MERCHANT_CATEGORIES,
    schema.FRAUD_RULES,
    schema.ERROR_CODES,
    schema.COMMISSION_TYPES,
)
_KNOWN_ORDER = tuple(v for group in (*_DOMAINS, schema.STATUSES) for v in group)
#: the i-th value of each domain takes the i-th colour; statuses read green / red / amber
_FIXED = {name: _PALETTE[i % len(_PALETTE)] for group in _DOMAINS for i, name in enumerate(group)}
_FIXED |= {"approved": "#029e73", "declined": "#d55e00", "pending": "#de8f05"}
SINGLE_COLOR = "#0173b2"


def palette_for(levels: list) -> dict:
    """Colour per hue value: domain values keep a fixed colour everywhere; others take the palette
    colours not used by the domain values present, in order."""
    colors = {v: _FIXED[str(v)] for v in levels if str(v) in _FIXED}
    free = [c for c in _PALETTE if c not in colors.values()] or list(_PALETTE)
    for i, v in enumerate(v for v in levels if v not in colors):
        colors[v] = free[i % len(free)]
    return colors


def hue_levels(panel: Panel) -> list:
    """Hue values in a stable order: domain order first, then sorted."""
    if not panel.hue or panel.empty:
        return []
    present = list(dict.fromkeys(panel.data[panel.hue].tolist()))
    known = [v for v in _KNOWN_ORDER if v in present]
    return known + sorted((v for v in present if v not in known), key=str)


def empty_message(panel: Panel) -> str:
    return f"No data yet\n({panel.source or 'source'} is empty)"
