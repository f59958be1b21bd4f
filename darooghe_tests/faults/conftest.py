"""The fault suite runs on its own cluster-topology stack: three brokers, a Spark standalone master
with two workers, PostgreSQL + FerretDB, under `<test home>-cluster` and its own ports (base
DAROOGHE_TEST_CLUSTER_BASE_PORT, default 19200), so it never touches the single-node test stack.

`settings` and `stack` are redefined here, so the shared fixtures (`unique_topic`, `mongo_db`,
the validator tests' `pipeline`) give this directory's tests the cluster.
"""

from __future__ import annotations

import os

import pytest

from darooghe_tests.test_validation_kafka import pipeline  # noqa: F401 - the shared fixture

BASE = int(os.environ.get("DAROOGHE_TEST_CLUSTER_BASE_PORT", "19200"))


def cluster_env() -> dict[str, str]:
    """The environment of the fault suite's stack (ports from BASE)."""
    p = BASE
    return {
        "DAROOGHE_HOME": os.environ["DAROOGHE_HOME"].rstrip("/") + "-cluster",
        "DAROOGHE_TOPOLOGY": "cluster",
        "DAROOGHE_KAFKA_CLUSTER_PORTS": f"{p},{p + 2},{p + 4}",
        "DAROOGHE_KAFKA_CLUSTER_CONTROLLER_PORTS": f"{p + 1},{p + 3},{p + 5}",
        "DAROOGHE_SPARK_MASTER_PORT": str(p + 10),
        "DAROOGHE_SPARK_MASTER_WEBUI_PORT": str(p + 11),
        "DAROOGHE_SPARK_WORKER_WEBUI_PORT": str(p + 12),
        "DAROOGHE_MONGO_PORT": str(p + 20),
        "DAROOGHE_POSTGRES_PORT": str(p + 21),
        "DAROOGHE_MONITOR_PORT": str(p + 22),
        "DAROOGHE_PROMETHEUS_PORT": str(p + 23),
    }


@pytest.fixture(scope="session")
def settings():
    """The cluster's settings; the environment is set for the session, so the jobs the tests start
    as processes (validator, fraud job) see the same cluster."""
    from darooghe.config import load_settings

    saved = {k: os.environ.get(k) for k in cluster_env()}
    os.environ.update(cluster_env())
    yield load_settings()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def stack(settings):
    """The cluster stack, a fixture of its own so its session cache holds these settings."""
    from darooghe.services.stack import running

    with running(settings, stop_after=os.environ.get("DAROOGHE_TEST_STOP_SERVICES") == "1"):
        yield settings
