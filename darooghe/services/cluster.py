"""The cluster topology on one machine (`darooghe services up --cluster`, DAROOGHE_TOPOLOGY=cluster).

Three Kafka 4 nodes in KRaft combined mode (each a broker and one of three controller voters) and a
Spark standalone master with its workers, all on 127.0.0.1: the executable twin of
docker-compose.yml, so "what happens when a broker or a worker dies?" can be tried here
(darooghe_tests/faults). Topics are replicated 3 ways with min.insync.replicas=2
(darooghe.topics), internal topics too (kafka.CLUSTER_BROKER_SETTINGS); producers already use
acks=all with idempotence (darooghe.kafka_io.producer_config).

Process names: `kafka-1..3`, `spark-master`, `spark-worker-1..N`, each with its PID file and log
under the home like every other service.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from darooghe import kafka_io
from darooghe.config import Settings
from darooghe.services import kafka, spark_standalone
from darooghe.services.process import (
    ManagedProcess,
    ServiceError,
    port_open,
    port_owner,
)
from darooghe.topics import min_insync_replicas

KAFKA_NODES = (1, 2, 3)


def kafka_name(node: int) -> str:
    return f"kafka-{node}"


def names(s: Settings) -> list[str]:
    """Every process of the cluster topology, in start order."""
    return [
        *(kafka_name(n) for n in KAFKA_NODES),
        "spark-master",
        *spark_standalone.worker_names(s),
    ]


def _free(name: str, host: str, port: int, env_name: str) -> None:
    if port_open(host, port):
        raise ServiceError(
            f"{name}: port {port} ({env_name}) on {host} is already taken by {port_owner(port)}; "
            f"stop it or choose other ports with {env_name}=..."
        )


def start_kafka_node(s: Settings, node: int, log: Callable[[str], None] = print) -> int:
    """Start node `node` unless it runs (formatting its storage the first time); returns its pid."""
    proc = ManagedProcess(kafka_name(node), s)
    pid = proc.pid()
    if pid is not None:
        log(f"{proc.name}: already running (pid {pid})")
        return pid
    _free(proc.name, s.kafka_host, s.kafka_cluster_ports[node - 1], "DAROOGHE_KAFKA_CLUSTER_PORTS")
    _free(
        proc.name,
        s.kafka_host,
        s.kafka_cluster_controller_ports[node - 1],
        "DAROOGHE_KAFKA_CLUSTER_CONTROLLER_PORTS",
    )
    config = kafka.write_cluster_config(s, node)
    s.logs_dir.mkdir(parents=True, exist_ok=True)
    if kafka.format_cluster_node_if_needed(s, node, config, proc.log_file):
        log(f"{proc.name}: formatted KRaft storage in {kafka.node_dir(s, node) / 'data'}")
    pid = proc.start(kafka.java_command(s, kafka.MAIN_CLASS, str(config)))
    log(
        f"{proc.name}: started pid {pid} on {s.kafka_host}:{s.kafka_cluster_ports[node - 1]} "
        f"(controller {s.kafka_cluster_controller_ports[node - 1]}), log {proc.log_file}"
    )
    return pid


def wait_kafka(s: Settings, timeout: float = 120.0) -> float:
    """Wait for a produce/consume round trip through the three-broker bootstrap; its seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        for node in KAFKA_NODES:
            proc = ManagedProcess(kafka_name(node), s)
            if proc.pid() is None:
                raise ServiceError(
                    f"{proc.name} exited during start-up; last lines of {proc.log_file}:\n{proc.tail_log()}"
                )
        try:
            ports_open = all(port_open(s.kafka_host, p) for p in s.kafka_cluster_ports)
            md = kafka_io.admin_client(s).list_topics(timeout=5) if ports_open else None
            if md is not None and len(md.brokers) == len(KAFKA_NODES):
                return kafka_io.round_trip(s)
            last = ServiceError("not every broker is up yet")
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
        time.sleep(0.5)
    raise ServiceError(f"the Kafka cluster did not answer within {timeout:.0f} s ({last})")


def start_kafka(s: Settings, log: Callable[[str], None] = print) -> None:
    for node in KAFKA_NODES:
        start_kafka_node(s, node, log)
    took = wait_kafka(s)
    log(f"kafka cluster: 3 brokers, produce/consume round trip ok ({took * 1000:.0f} ms)")


def _start_daemon(s: Settings, name: str, argv: list[str], port: int, env_name: str, log) -> None:
    proc = ManagedProcess(name, s)
    pid = proc.pid()
    if pid is not None:
        log(f"{name}: already running (pid {pid})")
        return
    _free(name, s.kafka_host, port, env_name)
    spark_standalone.work_dir(s).mkdir(parents=True, exist_ok=True)
    s.spark_local_dir.mkdir(parents=True, exist_ok=True)
    pid = proc.start(argv, env=spark_standalone.environment(s))
    log(f"{name}: started pid {pid}, UI on {s.kafka_host}:{port}, log {proc.log_file}")


def start_spark_master(s: Settings, log: Callable[[str], None] = print) -> None:
    _start_daemon(
        s,
        "spark-master",
        spark_standalone.master_command(s),
        s.spark_master_webui_port,
        "DAROOGHE_SPARK_MASTER_WEBUI_PORT",
        log,
    )


def start_spark_worker(s: Settings, index: int, log: Callable[[str], None] = print) -> None:
    _start_daemon(
        s,
        f"spark-worker-{index}",
        spark_standalone.worker_command(s, index),
        s.spark_worker_webui_port + index - 1,
        "DAROOGHE_SPARK_WORKER_WEBUI_PORT",
        log,
    )


def wait_spark(s: Settings, workers: int, timeout: float = 90.0) -> dict:
    """Wait until the master is ALIVE with `workers` workers registered; its JSON state."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        master = ManagedProcess("spark-master", s)
        if master.pid() is None:
            raise ServiceError(
                f"spark-master exited; last lines of {master.log_file}:\n{master.tail_log()}"
            )
        try:
            state = spark_standalone.master_state(s)
            alive = spark_standalone.alive_workers(state)
            if state.get("status") == "ALIVE" and len(alive) >= workers:
                return state
            last = f"status {state.get('status')}, {len(alive)}/{workers} workers alive"
        except Exception as exc:  # noqa: BLE001
            last = exc
        time.sleep(0.5)
    raise ServiceError(
        f"the Spark master did not report {workers} workers within {timeout:.0f} s ({last})"
    )


def start_spark(s: Settings, log: Callable[[str], None] = print) -> None:
    start_spark_master(s, log)
    for i in range(1, s.spark_workers + 1):
        start_spark_worker(s, i, log)
    state = wait_spark(s, s.spark_workers)
    cores = sum(w["cores"] for w in spark_standalone.alive_workers(state))
    log(f"spark: master {s.spark_master_url} ALIVE, {s.spark_workers} workers, {cores} cores")


def stop(s: Settings, log: Callable[[str], None] = print) -> None:
    """Workers, master, then the brokers all at once (each SIGTERM, then SIGKILL after the
    timeout). One broker at a time, the last one's controlled shutdown waited for a controller
    quorum that had already stopped, until it was killed 60 s later (every fault-suite run)."""

    def stop_one(name: str) -> None:
        if ManagedProcess(name, s).stop(timeout=60):
            log(f"{name}: stopped")

    brokers = [kafka_name(n) for n in KAFKA_NODES]
    for name in reversed(names(s)):
        if name not in brokers:
            stop_one(name)
    threads = [threading.Thread(target=stop_one, args=(name,)) for name in brokers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- status -------------------------------------------------------------------------------------


def partition_rows(s: Settings, timeout: float = 5.0) -> list[tuple[str, bool, str]]:
    """(topic, healthy, "p0 leader 1 isr 1,2,3; ...") per topic: healthy when every partition has
    a leader and at least min.insync.replicas in sync."""
    md = kafka_io.admin_client(s).list_topics(timeout=timeout)
    need = min_insync_replicas(s.kafka_replication)
    rows = []
    for name in sorted(md.topics):
        t = md.topics[name]
        if t.error is not None or name.startswith("__"):
            continue
        parts, healthy = [], True
        for pid in sorted(t.partitions):
            p = t.partitions[pid]
            isr = sorted(p.isrs)
            healthy &= p.leader >= 0 and len(isr) >= need
            parts.append(f"p{pid} leader {p.leader} isr {','.join(map(str, isr))}")
        rows.append((name, healthy, "; ".join(parts)))
    return rows


def node_rows(s: Settings) -> list[tuple[str, str, bool, str]]:
    """(name, address, healthy, detail) of every broker, the master and each worker."""
    out = []
    try:
        brokers = kafka_io.admin_client(s).list_topics(timeout=5)
        registered, controller = set(brokers.brokers), brokers.controller_id
    except Exception:  # noqa: BLE001
        registered, controller = set(), -1
    for node in KAFKA_NODES:
        pid = ManagedProcess(kafka_name(node), s).pid()
        address = f"{s.kafka_host}:{s.kafka_cluster_ports[node - 1]}"
        up = node in registered
        detail = f"pid {pid}" if pid else "not running"
        detail += ", in the cluster metadata" if up else ", not in the cluster metadata"
        if node == controller:
            detail += ", active controller"
        out.append((kafka_name(node), address, up and pid is not None, detail))
    master_pid = ManagedProcess("spark-master", s).pid()
    master_address = f"{s.spark_master_url} (UI {s.kafka_host}:{s.spark_master_webui_port})"
    try:
        state = spark_standalone.master_state(s)
    except Exception as exc:  # noqa: BLE001
        out.append(("spark-master", master_address, False, f"pid {master_pid}: {exc}"))
        state = None
    if state is not None:
        apps = ", ".join(a.get("name", "?") for a in state.get("activeapps", [])) or "none"
        out.append(
            (
                "spark-master",
                master_address,
                state.get("status") == "ALIVE",
                f"pid {master_pid}, {state.get('status')}, apps: {apps}",
            )
        )
        by_port = {
            w.get("webuiaddress", "").rsplit(":", 1)[-1]: w for w in state.get("workers", [])
        }
    for i, name in enumerate(spark_standalone.worker_names(s), start=1):
        pid = ManagedProcess(name, s).pid()
        port = s.spark_worker_webui_port + i - 1
        w = by_port.get(str(port)) if state is not None else None
        if w is None or w.get("state") != "ALIVE" or pid is None:
            detail = f"pid {pid}, " if pid else "not running, "
            detail += f"master says {w.get('state')}" if w else "not registered with the master"
            out.append((name, f"{s.kafka_host}:{port}", False, detail))
        else:
            out.append(
                (
                    name,
                    f"{w.get('host')}:{w.get('port')}",
                    True,
                    (
                        f"pid {pid}, cores {w['coresused']}/{w['cores']}, "
                        f"memory {w['memoryused']}/{w['memory']} MB"
                    ),
                )
            )
    return out
