"""Where things live and how to reach them: one place that reads the environment.

Every path, port and size the project uses comes from here, with working local defaults, so two
checkouts (or a test run beside a demo) can run side by side by changing `DAROOGHE_HOME` and the ports.

Two roots, on purpose:
- `DAROOGHE_HOME` (default `<repo>/.darooghe`): everything written at run time — logs, Kafka and
  FerretDB data, Spark checkpoints, the lake, charts, Dagster home. Two homes never share data.
- `DAROOGHE_BUILD` (default `<repo>/build`): what `make install` fetches or builds once — the Kafka
  jars, the FerretDB binary, Prometheus and the Spark Kafka connector's jars (`spark-jars/`, resolved
  through the Ivy cache `ivy/`). Sharing it between homes avoids re-resolving the same jars for
  every test run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from darooghe.validation.clock import DEFAULT_CLOCK_SKEW_MS, MAX_CLOCK_SKEW_MS
from darooghe.validation.limits import DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_LIMIT, MIN_RECORD_LIMIT

REPO_ROOT = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """A configuration value from the environment that cannot be used."""


def _env(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name)
    return default if value is None or value == "" else value


def _env_int(
    environ: Mapping[str, str], name: str, default: int, low: int = 1, high: int = 65535
) -> int:
    raw = _env(environ, name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value


@dataclass(frozen=True)
class Settings:
    home: Path
    build: Path
    kafka_host: str
    kafka_port: int
    kafka_controller_port: int
    kafka_heap: str
    kafka_bootstrap: str
    kafka_replication: int
    mongo_host: str
    mongo_port: int
    postgres_port: int
    mongo_uri: str
    mongo_db: str
    spark_master: str
    spark_driver_memory: str
    spark_shuffle_partitions: int
    dagster_port: int
    monitor_port: int
    python: str
    #: The largest input value the validator parses; a larger one is ERR_SCHEMA, unparsed.
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    #: How far an event time may be ahead of the validator's clock (and a run config clock ahead
    #: of the wall clock); also the topics' message.timestamp.after.max.ms.
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS
    #: The local Prometheus (darooghe.services.prometheus), on 127.0.0.1.
    prometheus_port: int = 9090
    # --- the local cluster (`services up --cluster`, darooghe.services.cluster) ----------------
    #: "local" (one broker, Spark local[2]) or "cluster" (three brokers, Spark standalone).
    topology: str = "local"
    #: Client and controller ports of the three KRaft nodes (node i uses the i-th of each).
    kafka_cluster_ports: tuple[int, ...] = (9092, 9094, 9096)
    kafka_cluster_controller_ports: tuple[int, ...] = (9093, 9095, 9097)
    spark_master_port: int = 7077
    spark_master_webui_port: int = 8080
    #: Worker i's web UI listens on this port + i - 1.
    spark_worker_webui_port: int = 8081
    spark_workers: int = 2
    #: Sized for 2 cores / 24 GB: one core each, room for one 2 GB executor plus its Python workers.
    spark_worker_cores: int = 1
    spark_worker_memory: str = "6g"
    spark_executor_memory: str = "2g"
    #: Where streaming checkpoints and profile snapshots live; every executor must read it. Empty:
    #: under home (one machine). A real cluster points it at shared storage (see README).
    checkpoint_root: str = ""

    # --- run-time state, all under home -------------------------------------------------------
    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        """PID files of the background processes."""
        return self.home / "run"

    @property
    def kafka_data_dir(self) -> Path:
        return self.home / "kafka" / "data"

    @property
    def kafka_config_dir(self) -> Path:
        return self.home / "kafka" / "config"

    @property
    def ferretdb_data_dir(self) -> Path:
        """FerretDB's SQLite files, used only by the storage benchmark's baseline."""
        return self.home / "ferretdb"

    @property
    def postgres_dir(self) -> Path:
        """PostgreSQL under FerretDB: `data/` (the cluster) and `password` (generated, mode 0600)."""
        return self.home / "postgres"

    @property
    def checkpoints_dir(self) -> Path:
        return Path(self.checkpoint_root) if self.checkpoint_root else self.home / "checkpoints"

    @property
    def cluster(self) -> bool:
        return self.topology == "cluster"

    @property
    def spark_master_url(self) -> str:
        """The standalone master of the local cluster (what DAROOGHE_SPARK_MASTER points at)."""
        return f"spark://{self.kafka_host}:{self.spark_master_port}"

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def charts_dir(self) -> Path:
        return self.home / "charts"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def spark_warehouse_dir(self) -> Path:
        return self.home / "spark" / "warehouse"

    @property
    def spark_local_dir(self) -> Path:
        return self.home / "spark" / "tmp"

    @property
    def metrics_dir(self) -> Path:
        """Progress files written by long-running jobs and read by Dagster sensors."""
        return self.home / "metrics"

    # --- install artifacts, under build -------------------------------------------------------
    @property
    def kafka_libs_dir(self) -> Path:
        return self.build / "kafka-libs"

    @property
    def ferretdb_binary(self) -> Path:
        return self.build / "bin" / "darooghe-ferretdb"

    @property
    def ivy_dir(self) -> Path:
        """Ivy's cache, used only by the install-time resolution (darooghe.spark_jars)."""
        return self.build / "ivy"

    @property
    def mongo_address(self) -> str:
        return f"{self.mongo_host}:{self.mongo_port}"

    @property
    def kafka_address(self) -> str:
        return f"{self.kafka_host}:{self.kafka_port}"


def _env_ports(
    environ: Mapping[str, str], name: str, default: tuple[int, ...], count: int
) -> tuple[int, ...]:
    raw = _env(environ, name, ",".join(map(str, default)))
    try:
        ports = tuple(int(p) for p in raw.split(","))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a comma-separated list of ports") from None
    if len(ports) != count or not all(1 <= p <= 65535 for p in ports):
        raise ConfigError(f"{name}={raw!r}: expected {count} ports in 1..65535")
    return ports


TOPOLOGIES = ("local", "cluster")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from the environment now (not at import, so tests can change it).

    `environ` (default: the process environment) lets a caller, such as the code location's
    settings resource, give its own values for some variables without writing os.environ.
    """
    environ = os.environ if environ is None else environ
    home = Path(_env(environ, "DAROOGHE_HOME", str(REPO_ROOT / ".darooghe"))).expanduser().resolve()
    build = Path(_env(environ, "DAROOGHE_BUILD", str(REPO_ROOT / "build"))).expanduser().resolve()
    kafka_host = _env(environ, "DAROOGHE_KAFKA_HOST", "127.0.0.1")
    kafka_port = _env_int(environ, "DAROOGHE_KAFKA_PORT", 9092)
    mongo_host = _env(environ, "DAROOGHE_MONGO_HOST", "127.0.0.1")
    mongo_port = _env_int(environ, "DAROOGHE_MONGO_PORT", 27017)
    topology = _env(environ, "DAROOGHE_TOPOLOGY", "local")
    if topology not in TOPOLOGIES:
        raise ConfigError(
            f"DAROOGHE_TOPOLOGY={topology!r}: expected one of {', '.join(TOPOLOGIES)}"
        )
    cluster = topology == "cluster"
    cluster_ports = _env_ports(environ, "DAROOGHE_KAFKA_CLUSTER_PORTS", (9092, 9094, 9096), 3)
    master_port = _env_int(environ, "DAROOGHE_SPARK_MASTER_PORT", 7077)
    if cluster:  # the first node is the one single-node code paths (round trip, status) talk to
        kafka_port = cluster_ports[0]
    bootstrap = ",".join(f"{kafka_host}:{p}" for p in (cluster_ports if cluster else (kafka_port,)))
    return Settings(
        home=home,
        build=build,
        kafka_host=kafka_host,
        kafka_port=kafka_port,
        kafka_controller_port=_env_int(environ, "DAROOGHE_KAFKA_CONTROLLER_PORT", 9093),
        kafka_heap=_env(environ, "DAROOGHE_KAFKA_HEAP", "512m"),
        # A cluster (docker-compose) sets the bootstrap list directly.
        kafka_bootstrap=_env(environ, "DAROOGHE_KAFKA_BOOTSTRAP", bootstrap),
        kafka_replication=_env_int(
            environ, "DAROOGHE_KAFKA_REPLICATION", 3 if cluster else 1, 1, 5
        ),
        mongo_host=mongo_host,
        mongo_port=mongo_port,
        postgres_port=_env_int(environ, "DAROOGHE_POSTGRES_PORT", 5432),
        mongo_uri=_env(environ, "DAROOGHE_MONGO_URI", f"mongodb://{mongo_host}:{mongo_port}/"),
        mongo_db=_env(environ, "DAROOGHE_MONGO_DB", "darooghe"),
        spark_master=_env(
            environ,
            "DAROOGHE_SPARK_MASTER",
            f"spark://{kafka_host}:{master_port}" if cluster else "local[2]",
        ),
        spark_driver_memory=_env(environ, "DAROOGHE_SPARK_DRIVER_MEMORY", "2g"),
        spark_shuffle_partitions=_env_int(
            environ, "DAROOGHE_SPARK_SHUFFLE_PARTITIONS", 2, 1, 10000
        ),
        dagster_port=_env_int(environ, "DAROOGHE_DAGSTER_PORT", 3000),
        monitor_port=_env_int(environ, "DAROOGHE_MONITOR_PORT", 9108),
        python=_env(environ, "PYSPARK_PYTHON", sys.executable),
        max_record_bytes=_env_int(
            environ,
            "DAROOGHE_MAX_RECORD_BYTES",
            DEFAULT_MAX_RECORD_BYTES,
            MIN_RECORD_LIMIT,
            MAX_RECORD_LIMIT,
        ),
        clock_skew_ms=_env_int(
            environ, "DAROOGHE_CLOCK_SKEW_MS", DEFAULT_CLOCK_SKEW_MS, 0, MAX_CLOCK_SKEW_MS
        ),
        prometheus_port=_env_int(environ, "DAROOGHE_PROMETHEUS_PORT", 9090),
        topology=topology,
        kafka_cluster_ports=cluster_ports,
        kafka_cluster_controller_ports=_env_ports(
            environ, "DAROOGHE_KAFKA_CLUSTER_CONTROLLER_PORTS", (9093, 9095, 9097), 3
        ),
        spark_master_port=master_port,
        spark_master_webui_port=_env_int(environ, "DAROOGHE_SPARK_MASTER_WEBUI_PORT", 8080),
        spark_worker_webui_port=_env_int(environ, "DAROOGHE_SPARK_WORKER_WEBUI_PORT", 8081),
        spark_workers=_env_int(environ, "DAROOGHE_SPARK_WORKERS", 2, 1, 16),
        spark_worker_cores=_env_int(environ, "DAROOGHE_SPARK_WORKER_CORES", 1, 1, 256),
        spark_worker_memory=_env(environ, "DAROOGHE_SPARK_WORKER_MEMORY", "6g"),
        spark_executor_memory=_env(environ, "DAROOGHE_SPARK_EXECUTOR_MEMORY", "2g"),
        checkpoint_root=_env(environ, "DAROOGHE_CHECKPOINT_ROOT", ""),
    )
