"""Live commission metrics: valid transactions -> windowed aggregates -> darooghe.metrics.* topics.

    spark-submit spark_apps/live_metrics.py [--source file --input DIR --output metrics.jsonl]

The queries are darooghe.streaming.metrics_job (also `darooghe stream metrics`, same options).
"""

import argparse
import sys

from darooghe.config import load_settings
from darooghe.streaming.metrics_job import run_metrics_job
from darooghe.streaming.options import add_stream_arguments, metrics_config_from_args

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stream_arguments(parser, fraud=False)
    args = parser.parse_args()
    settings = load_settings()
    sys.exit(run_metrics_job(metrics_config_from_args(args, settings), settings, fresh=args.fresh))
