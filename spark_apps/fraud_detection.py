"""Fraud detection: valid transactions -> per-customer stateful rules -> darooghe.fraud_alerts
(and transactions behind the watermark -> darooghe.late_transactions).

    spark-submit spark_apps/fraud_detection.py [--source file --input DIR --output alerts.jsonl]
    python spark_apps/fraud_detection.py --profiles profiles.jsonl

The query is darooghe.streaming.fraud_job (also `darooghe stream fraud`, same options).
"""

import sys

from darooghe.streaming.options import main

if __name__ == "__main__":
    sys.exit(main("fraud", __doc__))
