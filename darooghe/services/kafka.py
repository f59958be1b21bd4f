"""The local Apache Kafka 4 broker: one node in KRaft combined mode (broker + controller), no ZooKeeper.

Run straight from the jars Maven resolved (`make install`): `kafka.tools.StorageTool` formats the
log directory on first start, `kafka.Kafka` runs the node. Internal topics are sized for one node
(replication 1, min ISR 1) so transactions work, and the consumer-group rebalance delay is 0 so
tests and the demo do not wait three seconds per new group.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from darooghe.config import Settings
from darooghe.topics import CLUSTER_REPLICATION, min_insync_replicas

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

LOG4J2_PROPERTIES = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def server_properties(s: Settings) -> str:
    host = s.kafka_host
    return f"""\
# Written by darooghe from its settings at every start; edit the DAROOGHE_KAFKA_* variables instead.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{s.kafka_controller_port}
listeners=PLAINTEXT://{host}:{s.kafka_port},CONTROLLER://{host}:{s.kafka_controller_port}
advertised.listeners=PLAINTEXT://{host}:{s.kafka_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={s.kafka_data_dir}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=300000
"""


#: What a three-node cluster changes from the single node: internal topics replicated 3 ways and
#: writes acknowledged by 2 of them. docker-compose.yml sets the same (KAFKA_<NAME> variables;
#: darooghe_tests/test_compose.py keeps them equal).
CLUSTER_BROKER_SETTINGS = {
    "default.replication.factor": str(CLUSTER_REPLICATION),
    "min.insync.replicas": str(min_insync_replicas(CLUSTER_REPLICATION)),
    "offsets.topic.replication.factor": str(CLUSTER_REPLICATION),
    "transaction.state.log.replication.factor": str(CLUSTER_REPLICATION),
    "transaction.state.log.min.isr": str(min_insync_replicas(CLUSTER_REPLICATION)),
    "share.coordinator.state.topic.replication.factor": str(CLUSTER_REPLICATION),
    "share.coordinator.state.topic.min.isr": str(min_insync_replicas(CLUSTER_REPLICATION)),
}

#: Quorum timing of the loopback cluster, where three combined broker+controller nodes share a
#: 2-core machine with Spark and the tests. Measured in a failed fault run (the leader-kill test,
#: CI 2026-12-05 06:34): controller events took up to 9.3 s ("Exceptionally slow controller
#: event writeNoOpRecord"), fetches to the quorum leader timed out at the 2 s default so the
#: leadership changed three times in 10 s, and the restarted node, refused first with
#: DUPLICATE_BROKER_REGISTRATION (its killed self still registered), gave up registering after the
#: 60 s default and exited. Longer quorum timeouts ride out the stalls (a dead active controller is
#: replaced after ~6 s instead of ~2 s); the longer registration window lets a restarted node wait
#: for its old registration to expire. Separate machines need neither, so compose keeps defaults.
CLUSTER_TIMING_SETTINGS = {
    "controller.quorum.fetch.timeout.ms": "6000",
    "controller.quorum.request.timeout.ms": "6000",
    "controller.quorum.election.timeout.ms": "3000",
    "initial.broker.registration.timeout.ms": "180000",
}


def node_dir(s: Settings, node: int) -> Path:
    """Home of cluster node `node` (1..3): its `data/` and `config/`."""
    return s.home / "kafka" / f"node-{node}"


def cluster_node_properties(s: Settings, node: int) -> str:
    """server.properties of KRaft node `node` (1..3): broker and voter of a 3-controller quorum."""
    host = s.kafka_host
    port = s.kafka_cluster_ports[node - 1]
    cport = s.kafka_cluster_controller_ports[node - 1]
    voters = ",".join(
        f"{i}@{host}:{p}" for i, p in enumerate(s.kafka_cluster_controller_ports, start=1)
    )
    single = server_properties(s).splitlines()
    replaced = {
        "node.id": str(node),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "log.dirs": str(node_dir(s, node) / "data"),
        **CLUSTER_BROKER_SETTINGS,
        **CLUSTER_TIMING_SETTINGS,
    }
    lines = []
    for line in single:
        key = line.split("=", 1)[0]
        if "=" in line and key in replaced:
            lines.append(f"{key}={replaced.pop(key)}")
        else:
            lines.append(line)
    lines += [f"{k}={v}" for k, v in replaced.items()]
    return "\n".join(lines) + "\n"


def write_cluster_config(s: Settings, node: int) -> Path:
    config_dir = node_dir(s, node) / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    s.kafka_config_dir.mkdir(parents=True, exist_ok=True)
    (s.kafka_config_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    path = config_dir / "server.properties"
    path.write_text(cluster_node_properties(s, node))
    return path


def format_cluster_node_if_needed(s: Settings, node: int, config: Path, log_file: Path) -> bool:
    """Format node `node`'s log directory on first start (one cluster id for the three)."""
    return _format_if_needed(s, node_dir(s, node) / "data", config, log_file, f"kafka node {node}")


def java_command(s: Settings, main_class: str, *args: str) -> list[str]:
    libs = s.kafka_libs_dir
    if not libs.is_dir() or not any(libs.glob("kafka_2.13-*.jar")):
        raise FileNotFoundError(f"Kafka jars not found in {libs}: run `make install`")
    return [
        "java",
        f"-Xms{s.kafka_heap}",
        f"-Xmx{s.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={s.kafka_config_dir / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        main_class,
        *args,
    ]


def write_config(s: Settings) -> Path:
    s.kafka_config_dir.mkdir(parents=True, exist_ok=True)
    (s.kafka_config_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    path = s.kafka_config_dir / "server.properties"
    path.write_text(server_properties(s))
    return path


def cluster_id(s: Settings) -> str:
    """The cluster id of this home, made once (Kafka's form: 16 random bytes, URL-safe base64)."""
    path = s.home / "kafka" / "cluster.id"
    if path.exists():
        return path.read_text().strip()
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cid + "\n")
    return cid


def format_storage_if_needed(s: Settings, config: Path, log_file: Path) -> bool:
    """Format the KRaft log directory on first start. Returns True when it formatted."""
    return _format_if_needed(s, s.kafka_data_dir, config, log_file, "kafka")


def _format_if_needed(s: Settings, data: Path, config: Path, log_file: Path, what: str) -> bool:
    """Run Kafka's StorageTool on `data` unless it holds a formatted log directory already."""
    if (data / "meta.properties").exists():
        return False
    data.mkdir(parents=True, exist_ok=True)
    cmd = java_command(s, STORAGE_TOOL, "format", f"--cluster-id={cluster_id(s)}", f"--config={config}")
    with log_file.open("ab") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what}: storage format failed (exit {done.returncode}); see {log_file}")
    return True
