"""`fraud_decisions_sink_sensor`: materialises the MongoDB `fraud_decisions` sink when the end
offsets of darooghe.fraud_decisions move (the shared Kafka-offsets sensor of sensors/sinks.py)."""

from darooghe import topics
from darooghe_assets import constants as c
from darooghe_assets.sensors.sinks import kafka_sink_sensor

fraud_decisions_sink_sensor = kafka_sink_sensor(
    "fraud_decisions_sink_sensor", {topics.FRAUD_DECISIONS.name: c.FRAUD_DECISIONS_COLLECTION}
)
