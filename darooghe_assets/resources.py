"""Resources of the code location: the settings, Kafka (confluent-kafka), MongoDB (pymongo), PySpark.

Each is configured from the same settings the CLI reads (darooghe.config), so the UI, the CLI and
the Spark apps always talk to the same services: through EnvVar where the variable is set (the UI
then shows the variable's name, never a URI with credentials), else with the local default. Assets,
checks, sensors and ops reach the paths and settings only through these resources, never by
reading the environment themselves.

Loading the definitions writes nothing into the process environment: a process that loads them and
then starts another stack (the demo test does) must not hand that stack its own endpoints or paths.
Only a run that starts Spark sets the variables the JVM launcher reads (SparkResource).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import dagster as dg
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from dagster_pyspark import PySparkResource
from pymongo import MongoClient
from pymongo.database import Database

from darooghe import kafka_io
from darooghe.config import Settings, load_settings
from darooghe.mongo_client import connect
from darooghe.services import postgres
from darooghe.spark import prepare_environment, spark_config


def _from_env(variable: str, default: str) -> str | dg.EnvVar:
    return dg.EnvVar(variable) if variable in os.environ else default


class SettingsResource(dg.ConfigurableResource):
    """The project's settings (darooghe.config): paths under the home, ports, sizes, allowances.

    `home` and `build` are the two roots every path derives from; the other values are read from
    the environment like the CLI reads them, with these two roots in place of the environment's.
    """

    home: str
    build: str

    @classmethod
    def of(cls, settings: Settings) -> SettingsResource:
        """The resource whose roots are those of `settings` (for tests and scripts)."""
        return cls(home=str(settings.home), build=str(settings.build))

    def get(self) -> Settings:
        return load_settings({**os.environ, "DAROOGHE_HOME": self.home, "DAROOGHE_BUILD": self.build})


class KafkaResource(dg.ConfigurableResource):
    """Kafka clients for assets and sensors."""

    bootstrap_servers: str

    def producer(self, **overrides) -> Producer:
        return Producer(
            {**kafka_io.producer_config(), "bootstrap.servers": self.bootstrap_servers, **overrides}
        )

    def consumer(self, group_id: str | None = None, **overrides) -> Consumer:
        conf = kafka_io.consumer_config(group_id)
        return Consumer({**conf, "bootstrap.servers": self.bootstrap_servers, **overrides})

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap_servers})

    def end_offsets(
        self, topic: str, group_id: str | None = None
    ) -> dict[int, tuple[int, int, int | None]]:
        """partition -> (low, high, committed offset of group_id or None)."""
        return kafka_io.partition_end_offsets(topic, group_id=group_id)


class MongoResource(dg.ConfigurableResource):
    """The project's MongoDB database (FerretDB locally, MongoDB in docker-compose)."""

    uri: str
    database: str

    @contextmanager
    def get_db(self):
        client = connect(self.uri)
        try:
            yield client[self.database]
        finally:
            client.close()

    def db(self, client: MongoClient) -> Database:
        return client[self.database]

    def postgres_url(self, settings: Settings) -> str | None:
        """FerretDB's PostgreSQL on the local stack, where the storage layer makes the indexes of its
        access paths (darooghe.mongo_indexes); None where there is none (MongoDB in compose)."""
        return postgres.url(settings) if (settings.postgres_dir / "password").exists() else None


class SparkResource(PySparkResource):
    """PySparkResource that sets the JVM launcher's environment (darooghe.spark) when a run starts
    Spark, in that run's process, instead of when the definitions are loaded."""

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        prepare_environment(load_settings())
        super().setup_for_execution(context)


def build_resources() -> dict[str, object]:
    s = load_settings()
    return {
        "settings": SettingsResource(
            home=_from_env("DAROOGHE_HOME", str(s.home)),
            build=_from_env("DAROOGHE_BUILD", str(s.build)),
        ),
        "kafka": KafkaResource(
            bootstrap_servers=_from_env("DAROOGHE_KAFKA_BOOTSTRAP", s.kafka_bootstrap)
        ),
        "mongo": MongoResource(
            uri=_from_env("DAROOGHE_MONGO_URI", s.mongo_uri),
            database=_from_env("DAROOGHE_MONGO_DB", s.mongo_db),
        ),
        "pyspark": SparkResource(spark_config=spark_config(s)),
    }
