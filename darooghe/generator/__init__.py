"""darooghe_pulse, the transaction generator.

A seeded non-homogeneous Poisson process of payments (intensity.py) drawn from a population of
customers and merchants in real Iranian cities (population.py), with injected fraud labelled by
the exact fraud rules (fraud.py) and injected invalid events (invalid.py), built in
bulk with numpy (engine.py) and written to Kafka or a record file (publishers.py), as a history window
or live (runner.py). `darooghe generate` is its command line; the Dagster asset
`historical_backfill` uses backfill.py.
"""

from darooghe.generator.engine import Batch, Engine, Renderer
from darooghe.generator.intensity import Intensity
from darooghe.generator.params import GeneratorParams, ParameterError
from darooghe.generator.runner import Summary, parse_end, run_history, run_live

__all__ = [
    "Batch",
    "Engine",
    "GeneratorParams",
    "Intensity",
    "ParameterError",
    "Renderer",
    "Summary",
    "parse_end",
    "run_history",
    "run_live",
]
