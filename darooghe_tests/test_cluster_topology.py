"""The cluster topology's configuration (`darooghe services up --cluster`), without starting it:
settings, the three nodes' server.properties, worker commands, topic replication. The cluster itself
runs in the fault suite (darooghe_tests/faults, `make test-faults`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from darooghe.config import ConfigError, load_settings
from darooghe.services import kafka, spark_standalone
from darooghe.topics import CLUSTER_REPLICATION, min_insync_replicas, replication_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cluster_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("DAROOGHE_HOME", str(tmp_path))
    monkeypatch.setenv("DAROOGHE_TOPOLOGY", "cluster")
    monkeypatch.setenv("DAROOGHE_KAFKA_CLUSTER_PORTS", "29001,29003,29005")
    monkeypatch.setenv("DAROOGHE_KAFKA_CLUSTER_CONTROLLER_PORTS", "29002,29004,29006")
    monkeypatch.setenv("DAROOGHE_SPARK_MASTER_PORT", "29010")
    for name in ("DAROOGHE_KAFKA_BOOTSTRAP", "DAROOGHE_KAFKA_REPLICATION", "DAROOGHE_SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)
    return load_settings()


def test_cluster_settings_point_every_client_at_three_brokers_and_the_standalone_master(
    cluster_settings,
):
    s = cluster_settings
    assert s.cluster
    assert s.kafka_bootstrap == "127.0.0.1:29001,127.0.0.1:29003,127.0.0.1:29005"
    assert s.kafka_replication == CLUSTER_REPLICATION == 3
    assert s.spark_master == s.spark_master_url == "spark://127.0.0.1:29010"
    assert s.kafka_port == 29001  # the node single-node code paths (round trip) talk to


def test_topology_and_port_lists_are_checked(monkeypatch):
    monkeypatch.setenv("DAROOGHE_TOPOLOGY", "swarm")
    with pytest.raises(ConfigError, match="DAROOGHE_TOPOLOGY='swarm'"):
        load_settings()
    monkeypatch.setenv("DAROOGHE_TOPOLOGY", "cluster")
    monkeypatch.setenv("DAROOGHE_KAFKA_CLUSTER_PORTS", "1,2")
    with pytest.raises(ConfigError, match="expected 3 ports"):
        load_settings()


def test_three_nodes_form_one_quorum_of_three_voters(cluster_settings):
    props = [
        dict(
            line.split("=", 1)
            for line in kafka.cluster_node_properties(cluster_settings, n).splitlines()
            if line and not line.startswith("#")
        )
        for n in (1, 2, 3)
    ]
    voters = {p["controller.quorum.voters"] for p in props}
    assert voters == {"1@127.0.0.1:29002,2@127.0.0.1:29004,3@127.0.0.1:29006"}
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert [p["advertised.listeners"] for p in props] == [
        f"PLAINTEXT://127.0.0.1:{port}" for port in (29001, 29003, 29005)
    ]
    assert len({p["log.dirs"] for p in props}) == 3
    for p in props:
        assert p["process.roles"] == "broker,controller"
        for key, value in kafka.CLUSTER_BROKER_SETTINGS.items():
            assert p[key] == value
        assert p["min.insync.replicas"] == "2"
        assert p["transaction.state.log.replication.factor"] == "3"


def test_topics_keep_acknowledged_writes_through_one_lost_replica():
    assert min_insync_replicas(3) == 2
    assert min_insync_replicas(1) == 1
    assert replication_config(3) == {"min.insync.replicas": "2"}


def test_workers_come_from_pyspark_and_bind_to_loopback(cluster_settings):
    argv = spark_standalone.worker_command(cluster_settings, 2)
    assert Path(argv[0]).name == "spark-class" and Path(argv[0]).exists()
    assert argv[1] == spark_standalone.WORKER_CLASS
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--webui-port") + 1] == str(cluster_settings.spark_worker_webui_port + 1)
    assert argv[-1] == "spark://127.0.0.1:29010"
    assert spark_standalone.environment(cluster_settings)["SPARK_LOCAL_IP"] == "127.0.0.1"


def test_standalone_sessions_size_executors_and_use_the_venv_python(cluster_settings):
    from darooghe.spark import spark_config

    conf = spark_config(cluster_settings, connector=False)
    assert conf["spark.master"] == "spark://127.0.0.1:29010"
    assert conf["spark.executor.memory"] == cluster_settings.spark_executor_memory
    assert conf["spark.pyspark.python"] == cluster_settings.python


def test_job_code_never_branches_on_the_topology():
    """The validator, the streaming jobs and the batch group read the same settings either way."""
    pattern = re.compile(r"\btopology\b|\.cluster\b|spark_master_url|kafka_cluster_ports")
    for folder in ("validation", "streaming", "batch", "fraud", "generator"):
        for path in (REPO / "darooghe" / folder).rglob("*.py"):
            assert not pattern.search(path.read_text()), f"{path} branches on the topology"
