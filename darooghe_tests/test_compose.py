"""docker-compose.yml: no engine runs here, so check the topology, pinned images and wiring by reading it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_topology_has_every_component():
    brokers = [n for n in SERVICES if n.startswith("kafka-")]
    assert len(brokers) == 3
    assert {"kafdrop", "mongodb", "spark-master", "spark-worker-1", "spark-worker-2"} <= set(SERVICES)
    assert {"dagster-postgres", "dagster-webserver", "dagster-daemon", "dagster-code"} <= set(SERVICES)


def test_every_image_is_pinned():
    for name, svc in SERVICES.items():
        image = svc.get("image")
        assert image, f"{name} has no image"
        assert re.fullmatch(r"[\w./-]+:v?\d[\w.-]*", image), f"{name}: image {image!r} is not pinned to a version"
        assert not image.endswith(":latest")
    assert SERVICES["mongodb"]["image"].startswith("mongo:7.")


def test_kafka_is_kraft_without_zookeeper():
    assert not any("zookeeper" in n for n in SERVICES)
    voters = {SERVICES[f"kafka-{i}"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for i in (1, 2, 3)}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    ids = {SERVICES[f"kafka-{i}"]["environment"]["KAFKA_NODE_ID"] for i in (1, 2, 3)}
    assert ids == {1, 2, 3}


def test_project_services_share_the_local_configuration_variables():
    bootstrap = SERVICES["kafdrop"]["environment"]["KAFKA_BROKERCONNECT"]
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon", "spark-master", "darooghe-init"):
        env = SERVICES[name]["environment"]
        assert env["DAROOGHE_KAFKA_BOOTSTRAP"] == bootstrap
        assert env["DAROOGHE_SPARK_MASTER"] == "spark://spark-master:7077"
        assert "@mongodb:27017" in env["DAROOGHE_MONGO_URI"]
        assert "${MONGO_APP_PASSWORD" in env["DAROOGHE_MONGO_URI"]  # credentials from the environment
        assert "DAROOGHE_HOME" in env


def test_dependencies_name_existing_services():
    for name, svc in SERVICES.items():
        for dep in svc.get("depends_on", []):
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"


def test_spark_cluster_runs_the_project_image_so_versions_match():
    # pyspark ships Spark: master, workers and drivers from one image run one Spark version.
    images = {SERVICES[n]["image"] for n in ("spark-master", "spark-worker-1", "spark-worker-2", "dagster-code")}
    assert len(images) == 1
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"pyspark==4.2.0"' in pyproject
    assert (REPO / SERVICES["dagster-code"]["build"]["dockerfile"]).is_file()


_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def _with_defaults(text: str) -> str:
    """A compose string with every ${VAR:-default} replaced by its default (nothing set)."""
    return _VAR.sub(lambda m: m.group(2) or "", str(text))


def _host_ip(entry) -> str | None:
    """The host address a `ports` entry binds to (None: every interface)."""
    if isinstance(entry, dict):
        return entry.get("host_ip")
    parts = _with_defaults(entry).split(":")
    return parts[0] if len(parts) == 3 else None


def test_nothing_is_published_beyond_localhost_by_default():
    published = {name: svc.get("ports", []) for name, svc in SERVICES.items() if svc.get("ports")}
    assert published, "the UIs are published (on localhost)"
    for name, ports in published.items():
        for entry in ports:
            assert _host_ip(entry) == "127.0.0.1", f"{name} publishes {entry!r} beyond 127.0.0.1"
    for name, svc in SERVICES.items():
        assert svc.get("network_mode") != "host", f"{name} shares the host network"


def test_the_app_logs_in_as_a_read_write_user_of_its_database_not_root():
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon", "spark-master", "darooghe-init"):
        uri = SERVICES[name]["environment"]["DAROOGHE_MONGO_URI"]
        assert "MONGO_ROOT" not in uri and "authSource=admin" not in uri, f"{name} logs in as root"
        assert "${MONGO_APP_USER" in uri and "authSource=darooghe" in uri
    mongodb = SERVICES["mongodb"]
    mounts = [v for v in mongodb["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert mounts, "no init script creates the app user"
    scripts = sorted((REPO / mounts[0].split(":")[0]).glob("*.js"))
    assert scripts, f"no script in {mounts[0]}"
    text = "\n".join(p.read_text() for p in scripts)
    assert "createUser" in text and "readWrite" in text and "MONGO_APP_PASSWORD" in text
    assert "root" not in text.replace("MONGO_ROOT", "")  # the app user gets no admin role
    env = mongodb["environment"]
    assert "${MONGO_APP_PASSWORD:?" in env["MONGO_APP_PASSWORD"]


# --- the compose file and `services up --cluster` are one topology (darooghe.services.cluster) ---


def _cluster_settings(monkeypatch):
    from darooghe.config import load_settings

    for name in ("DAROOGHE_SPARK_WORKER_CORES", "DAROOGHE_SPARK_WORKER_MEMORY", "DAROOGHE_SPARK_EXECUTOR_MEMORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAROOGHE_TOPOLOGY", "cluster")
    return load_settings()


def test_brokers_database_and_spark_master_are_health_checked_and_init_waits_for_them():
    for name in ("kafka-1", "kafka-2", "kafka-3", "mongodb", "spark-master", "dagster-postgres"):
        check = SERVICES[name].get("healthcheck")
        assert check and check["test"], f"{name} has no healthcheck"
    waits = SERVICES["darooghe-init"]["depends_on"]
    assert {n: w["condition"] for n, w in waits.items()} == {
        "kafka-1": "service_healthy",
        "kafka-2": "service_healthy",
        "kafka-3": "service_healthy",
        "mongodb": "service_healthy",
    }


def test_broker_settings_are_the_local_clusters():
    from darooghe.services.kafka import CLUSTER_BROKER_SETTINGS

    for i in (1, 2, 3):
        env = SERVICES[f"kafka-{i}"]["environment"]
        for key, value in CLUSTER_BROKER_SETTINGS.items():
            var = "KAFKA_" + key.upper().replace(".", "_")
            assert str(env.get(var)) == value, f"kafka-{i}: {var}={env.get(var)!r}, local cluster {value}"


def test_topics_are_replicated_as_on_the_local_cluster(monkeypatch):
    from darooghe.topics import CLUSTER_REPLICATION, min_insync_replicas

    s = _cluster_settings(monkeypatch)
    assert s.kafka_replication == CLUSTER_REPLICATION
    env = SERVICES["darooghe-init"]["environment"]
    assert env["DAROOGHE_KAFKA_REPLICATION"] == str(CLUSTER_REPLICATION)
    assert SERVICES["kafka-1"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"] == min_insync_replicas(
        CLUSTER_REPLICATION
    )


def test_spark_workers_and_executors_are_sized_as_on_the_local_cluster(monkeypatch):
    from darooghe.services import spark_standalone

    s = _cluster_settings(monkeypatch)
    for name in ("spark-worker-1", "spark-worker-2"):
        command = SERVICES[name]["command"]
        assert command[:2] == ["spark-class", spark_standalone.WORKER_CLASS]
        assert command[2:-1] == spark_standalone.worker_args(s), name
        assert command[-1] == "spark://spark-master:7077"
    env = SERVICES["stream-fraud"]["environment"]
    assert env["DAROOGHE_SPARK_EXECUTOR_MEMORY"] == s.spark_executor_memory
    assert int(env["DAROOGHE_SPARK_SHUFFLE_PARTITIONS"]) == s.spark_shuffle_partitions


def test_jobs_are_services_with_one_shared_checkpoint_volume():
    jobs = {
        "darooghe-generator": "generate",
        "darooghe-validator": "validate",
        "stream-fraud": "stream",
        "stream-metrics": "stream",
    }
    assert "streaming-checkpoints" in COMPOSE["volumes"]
    for name, command in jobs.items():
        svc = SERVICES[name]
        assert svc["command"][:2] == ["darooghe", command], name
        assert svc["depends_on"]["darooghe-init"]["condition"] == "service_completed_successfully"
    for name in ("stream-fraud", "stream-metrics", "spark-worker-1", "spark-worker-2"):
        svc = SERVICES[name]
        root = svc["environment"]["DAROOGHE_CHECKPOINT_ROOT"]
        assert f"streaming-checkpoints:{root}" in svc["volumes"], f"{name} lacks the checkpoint volume"
