"""Live commission metrics: valid transactions -> windowed aggregates -> darooghe.metrics.* topics.

    spark-submit spark_apps/live_metrics.py [--source file --input DIR --output metrics.jsonl]

The queries are darooghe.streaming.metrics_job (also `darooghe stream metrics`, same options).
"""

import sys

from darooghe.streaming.options import main

if __name__ == "__main__":
    sys.exit(main("metrics", __doc__))
