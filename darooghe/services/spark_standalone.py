"""The local Spark standalone cluster: a master and its workers, from pyspark's own distribution.

pyspark's wheel carries Spark itself (`pyspark/bin/spark-class`, the jars), so the master and the
workers run the very Spark version of the drivers: no download, no second installation. All bind
to 127.0.0.1; the sizes are settings (darooghe.config: one core and DAROOGHE_SPARK_WORKER_MEMORY per
worker, executors of DAROOGHE_SPARK_EXECUTOR_MEMORY), and docker-compose.yml starts its workers
with the same flags (`worker_args`, kept equal by darooghe_tests/test_compose.py).
Work directories (executor logs, the Python files of each app) live under
`$DAROOGHE_HOME/spark/work`, the daemons' logs under `logs/` like every other service.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pyspark

from darooghe.config import Settings

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
#: Heap of each daemon (the master and worker JVMs; executors are sized separately).
DAEMON_MEMORY = "512m"


def spark_class() -> Path:
    path = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not path.exists():
        raise FileNotFoundError(f"spark-class not found at {path}: reinstall pyspark")
    return path


def worker_names(s: Settings) -> list[str]:
    return [f"spark-worker-{i}" for i in range(1, s.spark_workers + 1)]


def work_dir(s: Settings) -> Path:
    return s.home / "spark" / "work"


def environment(s: Settings) -> dict[str, str]:
    return {
        "SPARK_LOCAL_IP": s.kafka_host,
        "SPARK_DAEMON_MEMORY": DAEMON_MEMORY,
        "SPARK_WORKER_DIR": str(work_dir(s)),
        "SPARK_LOCAL_DIRS": str(s.spark_local_dir),
        "PYSPARK_PYTHON": s.python,
        # Idle apps' work directories are removed after a day instead of piling up.
        "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400",
    }


def master_command(s: Settings) -> list[str]:
    return [
        str(spark_class()),
        MASTER_CLASS,
        "--host",
        s.kafka_host,
        "--port",
        str(s.spark_master_port),
        "--webui-port",
        str(s.spark_master_webui_port),
    ]


def worker_args(s: Settings) -> list[str]:
    """The sizing flags of every worker (here and in docker-compose.yml)."""
    return ["--cores", str(s.spark_worker_cores), "--memory", s.spark_worker_memory]


def worker_command(s: Settings, index: int) -> list[str]:
    """Worker `index` (1-based): its UI on spark_worker_webui_port + index - 1."""
    return [
        str(spark_class()),
        WORKER_CLASS,
        "--host",
        s.kafka_host,
        "--webui-port",
        str(s.spark_worker_webui_port + index - 1),
        "--work-dir",
        str(work_dir(s)),
        *worker_args(s),
        s.spark_master_url,
    ]


def master_state(s: Settings, timeout: float = 3.0) -> dict:
    """The master's JSON (status, workers with cores/memory used, active apps); raises when down."""
    url = f"http://{s.kafka_host}:{s.spark_master_webui_port}/json/"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def alive_workers(state: dict) -> list[dict]:
    return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
