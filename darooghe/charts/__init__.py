"""Charts from MongoDB: a static PNG (seaborn/matplotlib) and an interactive page (plotly) per chart,
and one dashboard page gathering the interactive ones.

Layout: `model` (what a chart is), `sources` (reading MongoDB within FerretDB's limits), one module
per subject (`volume`, `merchants`, `customers`, `alerts`, `revenue`, `temporal`) that turns
collections into panels, `static` and `interactive` (the two renderers), `files` (the files of a
chart), `catalog` (every chart and what it reads), `dashboard` and `browser` (headless Chromium
check and screenshot of the dashboard). A chart over an empty collection still renders, saying
"no data yet", so the dashboard works from the first minute of a demo.
"""
