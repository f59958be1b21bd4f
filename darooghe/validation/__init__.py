"""Ingestion validation: every record of darooghe.transactions routed exactly once.

- `rules`: the three business rules (ERR_AMOUNT, ERR_TIME, ERR_DEVICE); ERR_SCHEMA is the typed
  structure of `darooghe.schema` failing to read the value.
- `decision.decide`: THE function that gives one record its verdict and its one output record;
  the Kafka service, the file mode and `--show-one` all call it.
- `service`: the exactly-once Kafka read-process-write loop (transactions, consumer group).
- `files`: the same verdicts on record files.
- `progress`: counts, and the progress file that Dagster sensors read.
- `error_rates`: how far the error rate per code is from what the generator injects.
"""

from darooghe.validation.decision import ErrorLog, Source, Verdict, decide, decide_record

__all__ = ["ErrorLog", "Source", "Verdict", "decide", "decide_record"]
