"""Darooghe: a real-time payment data pipeline (Kafka, Spark, MongoDB, Dagster)."""
