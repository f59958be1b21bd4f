"""Fraud detection: valid transactions -> per-customer stateful rules -> darooghe.fraud_alerts
(and transactions behind the watermark -> darooghe.late_transactions).

    spark-submit spark_apps/fraud_detection.py [--source file --input DIR --output alerts.jsonl]
    python spark_apps/fraud_detection.py --profiles profiles.jsonl

The query is darooghe.streaming.fraud_job (also `darooghe stream fraud`, same options).
"""

import argparse
import sys

from darooghe.config import load_settings
from darooghe.streaming.fraud_job import run_fraud_job
from darooghe.streaming.options import add_stream_arguments, fraud_config_from_args

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stream_arguments(parser, fraud=True)
    args = parser.parse_args()
    settings = load_settings()
    sys.exit(run_fraud_job(fraud_config_from_args(args, settings), settings, fresh=args.fresh))
