"""`darooghe services up | down | status`: the local stack of one home.

Kafka, PostgreSQL + FerretDB, then the monitoring: the project's exporter (`darooghe monitor`)
and a Prometheus scraping it and every long-running Spark app (darooghe.services.prometheus).

`up` is idempotent: a running service is left alone, a stale PID file is cleared, a port taken by
something that is not ours is refused with who holds it. It waits until each service really
answers (a Kafka produce/consume round trip, a MongoDB ping) and then creates the project's topics.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pymongo import MongoClient

from darooghe import kafka_io
from darooghe.config import Settings, load_settings
from darooghe.services import cluster, ferretdb, kafka, postgres, prometheus
from darooghe.services.process import (
    ManagedProcess,
    ServiceError,
    home_lock,
    port_open,
    port_owner,
    process_tree_listens,
)
from darooghe.topics import ALL_TOPICS

#: The services of a home, as opposed to the project's jobs that also keep PID files there
#: (with the cluster topology's brokers and Spark daemons, darooghe.services.cluster).
SERVICES = ("kafka", "postgres", "ferretdb", "monitor", "prometheus")


def _is_service(name: str) -> bool:
    return name in SERVICES or name.startswith(("kafka-", "spark-master", "spark-worker-"))


@dataclass(frozen=True)
class Health:
    name: str
    address: str
    healthy: bool
    detail: str


def mongo_ping(s: Settings, timeout_ms: int = 2000) -> float:
    """Seconds for a real `ping` round trip; raises when the server does not answer."""
    t0 = time.monotonic()
    # A hung server still accepts connections: bound the socket wait too, or `status` hangs with it.
    with MongoClient(
        s.mongo_uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=2 * timeout_ms,
    ) as client:
        client.admin.command("ping")
    return time.monotonic() - t0


def _wait(what: str, probe: Callable[[], object], proc: ManagedProcess, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.pid() is None:
            raise ServiceError(
                f"{what} exited during start-up; last lines of {proc.log_file}:\n{proc.tail_log()}"
            )
        try:
            return probe()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last = exc
            time.sleep(0.5)
    raise ServiceError(f"{what} did not answer within {timeout:.0f} s ({last}); see {proc.log_file}")


def _check_ports_free(name: str, ports: dict[str, tuple[str, int]]) -> None:
    for env_name, (host, port) in ports.items():
        if port_open(host, port):
            raise ServiceError(
                f"{name}: port {port} ({env_name}) on {host} is already taken by {port_owner(port)}; "
                f"stop it or choose another port with {env_name}=..."
            )


def _start_kafka(s: Settings, log: Callable[[str], None]) -> None:
    proc = ManagedProcess("kafka", s)
    pid = proc.pid()
    if pid is not None:
        if not process_tree_listens(pid, s.kafka_port) and not port_open(s.kafka_host, s.kafka_port):
            log(f"kafka: pid {pid} is running but not yet listening; waiting")
        else:
            log(f"kafka: already running (pid {pid}) on {s.kafka_address}")
    else:
        _check_ports_free(
            "kafka",
            {
                "DAROOGHE_KAFKA_PORT": (s.kafka_host, s.kafka_port),
                "DAROOGHE_KAFKA_CONTROLLER_PORT": (s.kafka_host, s.kafka_controller_port),
            },
        )
        config = kafka.write_config(s)
        s.logs_dir.mkdir(parents=True, exist_ok=True)
        if kafka.format_storage_if_needed(s, config, proc.log_file):
            log(f"kafka: formatted KRaft storage in {s.kafka_data_dir}")
        pid = proc.start(kafka.java_command(s, kafka.MAIN_CLASS, str(config)))
        log(f"kafka: started pid {pid} on {s.kafka_address} (heap {s.kafka_heap}), log {proc.log_file}")
    def probe() -> float:
        # Check the port first: a client pointed at a closed port floods the log with retries.
        if not port_open(s.kafka_host, s.kafka_port):
            raise ServiceError(f"port {s.kafka_port} not open yet")
        return kafka_io.round_trip(s)

    took = _wait("kafka", probe, proc, timeout=90)
    log(f"kafka: produce/consume round trip ok ({took * 1000:.0f} ms)")


def _start_postgres(s: Settings, log: Callable[[str], None]) -> None:
    proc = ManagedProcess("postgres", s)
    pid = proc.pid()
    if pid is not None:
        log(f"postgres: already running (pid {pid}) on 127.0.0.1:{s.postgres_port}")
    else:
        _check_ports_free("postgres", {"DAROOGHE_POSTGRES_PORT": ("127.0.0.1", s.postgres_port)})
        s.logs_dir.mkdir(parents=True, exist_ok=True)
        if postgres.init_if_needed(s, proc.log_file):
            log(f"postgres: initialised {postgres.data_dir(s)}")
        postgres.wait_for_dead_postmaster(s)
        pid = proc.start(postgres.command(s), **postgres.run_as(s).kwargs())
        log(f"postgres: started pid {pid} on 127.0.0.1:{s.postgres_port}, log {proc.log_file}")
    version = _wait("postgres", lambda: postgres.ready(s), proc, timeout=60)
    if postgres.ensure_database(s):
        log(f"postgres: created database {postgres.DATABASE}")
    log(f"postgres: {version} ready")


def _start_ferretdb(s: Settings, log: Callable[[str], None]) -> None:
    proc = ManagedProcess("ferretdb", s)
    pid = proc.pid()
    if pid is not None:
        log(f"ferretdb: already running (pid {pid}) on {s.mongo_address}")
    else:
        _check_ports_free("ferretdb", {"DAROOGHE_MONGO_PORT": (s.mongo_host, s.mongo_port)})
        argv, env = ferretdb.command(s)
        pid = proc.start(argv, env=env)
        log(f"ferretdb: started pid {pid} on {s.mongo_address} (PostgreSQL backend)")
    took = _wait("ferretdb", lambda: mongo_ping(s), proc, timeout=30)
    log(f"ferretdb: ping ok ({took * 1000:.0f} ms)")


def _http_ok(url: str, timeout: float = 2.0) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return f"HTTP {resp.status}"


def _start_monitoring(s: Settings, log: Callable[[str], None]) -> None:
    """The exporter, then Prometheus (which scrapes it): both on 127.0.0.1."""
    import sys

    exporter = ManagedProcess("monitor", s)
    metrics_url = f"http://127.0.0.1:{s.monitor_port}/metrics"
    if exporter.pid() is not None:
        log(f"monitor: already running (pid {exporter.pid()}) on 127.0.0.1:{s.monitor_port}")
    else:
        _check_ports_free("monitor", {"DAROOGHE_MONITOR_PORT": ("127.0.0.1", s.monitor_port)})
        pid = exporter.start([sys.executable, "-m", "darooghe.cli", "monitor"])
        log(f"monitor: started pid {pid} on 127.0.0.1:{s.monitor_port}, log {exporter.log_file}")
    _wait("monitor", lambda: _http_ok(metrics_url), exporter, timeout=60)

    proc = ManagedProcess("prometheus", s)
    if proc.pid() is not None:
        prometheus.write_config(s)  # settings may have changed: Prometheus re-reads on SIGHUP
        proc_pid = proc.pid()
        if proc_pid is not None:
            os.kill(proc_pid, signal.SIGHUP)
        log(f"prometheus: already running (pid {proc_pid}) on 127.0.0.1:{s.prometheus_port}")
    else:
        _check_ports_free("prometheus", {"DAROOGHE_PROMETHEUS_PORT": ("127.0.0.1", s.prometheus_port)})
        prometheus.data_dir(s).mkdir(parents=True, exist_ok=True)
        ui = prometheus.has_ui(s)  # served from its working directory, see prometheus.ui_dir
        pid = proc.start(prometheus.command(s), cwd=prometheus.ui_dir(s) if ui else None)
        log(f"prometheus: started pid {pid} on 127.0.0.1:{s.prometheus_port}, log {proc.log_file}")
        if not ui:
            log(f"prometheus: no web UI in {prometheus.ui_dir(s)} (`make install` builds it); "
                "the API answers without it")
    _wait("prometheus", lambda: prometheus.ready(s), proc, timeout=60)
    log(f"prometheus: ready, scraping the exporter and the Spark apps every {prometheus.SCRAPE_INTERVAL}")


def _monitoring_health(s: Settings) -> list[Health]:
    out = []
    for name, port, url in (
        ("monitor", s.monitor_port, f"http://127.0.0.1:{s.monitor_port}/metrics"),
        ("prometheus", s.prometheus_port, prometheus.api_url(s, "/-/ready")),
    ):
        pid = ManagedProcess(name, s).pid()
        address = f"127.0.0.1:{port}"
        if pid is None and not port_open("127.0.0.1", port):
            out.append(Health(name, address, False, "not running"))
            continue
        try:
            detail = _http_ok(url)
            if name == "prometheus":
                targets = prometheus.query(s, "up")
                healthy = sum(1 for t in targets if t["value"][1] == "1")
                detail += f", {healthy}/{len(targets)} targets up"
            who = f"pid {pid}" if pid else f"not ours: {port_owner(port)}"
            out.append(Health(name, address, True, f"{who}, {detail}"))
        except Exception as exc:  # noqa: BLE001
            out.append(Health(name, address, False, f"pid {pid}: {exc}"))
    return out


def _postgres_health(s: Settings) -> Health:
    pid = ManagedProcess("postgres", s).pid()
    address = f"127.0.0.1:{s.postgres_port}"
    if pid is None and not port_open("127.0.0.1", s.postgres_port):
        return Health("postgres", address, False, "not running")
    try:
        t0 = time.monotonic()
        version = postgres.ready(s)
        who = f"pid {pid}" if pid else f"not ours: {port_owner(s.postgres_port)}"
        took = (time.monotonic() - t0) * 1000
        return Health("postgres", address, True, f"{who}, PostgreSQL {version}, query {took:.0f} ms")
    except Exception as exc:  # noqa: BLE001
        return Health("postgres", address, False, f"pid {pid}: {exc}")


def up(settings: Settings | None = None, log: Callable[[str], None] = print) -> None:
    s = settings or load_settings()
    t0 = time.monotonic()
    with home_lock(s):
        if s.cluster:
            cluster.start_kafka(s, log)
        else:
            _start_kafka(s, log)
        _start_postgres(s, log)
        _start_ferretdb(s, log)
        created = kafka_io.ensure_topics(ALL_TOPICS, s)
        if s.cluster:
            cluster.start_spark(s, log)
        _start_monitoring(s, log)
    fresh = [n for n, r in created.items() if r == "created"]
    log(
        f"topics: {len(created)} ready"
        + (f" ({len(fresh)} created: {', '.join(fresh)})" if fresh else " (all existed)")
    )
    log(f"services up in {time.monotonic() - t0:.1f} s (DAROOGHE_HOME={s.home})")


def down(settings: Settings | None = None, log: Callable[[str], None] = print) -> None:
    s = settings or load_settings()
    with home_lock(s):
        # Stop the project's own jobs first so they do not spin on a vanished broker.
        for name in sorted(p.stem for p in s.run_dir.glob("*.pid")):
            if not _is_service(name) and ManagedProcess(name, s).stop():
                log(f"{name}: stopped")
        # Whatever the topology: a cluster's Spark daemons and brokers if it has them.
        cluster.stop(s, log)
        for name in ("prometheus", "monitor", "ferretdb", "postgres", "kafka"):
            # PostgreSQL: SIGINT is its "fast" shutdown; SIGTERM ("smart") waits for every client.
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
            if ManagedProcess(name, s).stop(timeout=60, sig=sig):
                log(f"{name}: stopped")
            else:
                log(f"{name}: not running")


@contextmanager
def running(settings: Settings, stop_after: bool = False) -> Iterator[Settings]:
    """The stack up for a block (a test session): started when it is not, stopped at the end only
    when `stop_after` (parallel runs on one home share the stack)."""
    up(settings)
    try:
        yield settings
    finally:
        if stop_after:
            down(settings)


def status(settings: Settings | None = None) -> list[Health]:
    s = settings or load_settings()
    if s.cluster:
        out = [Health(*row) for row in cluster.node_rows(s)]
        try:
            out += [Health(f"  {t}", "", ok, d) for t, ok, d in cluster.partition_rows(s)]
        except Exception as exc:  # noqa: BLE001
            out.append(Health("partitions", s.kafka_bootstrap, False, str(exc)))
        return out + _stores_and_jobs(s)
    out = []
    kproc = ManagedProcess("kafka", s)
    kpid = kproc.pid()
    try:
        took = kafka_io.round_trip(s) if kpid or port_open(s.kafka_host, s.kafka_port) else None
        if took is None:
            out.append(Health("kafka", s.kafka_bootstrap, False, "not running"))
        else:
            n = len(kafka_io.existing_topics(kafka_io.admin_client(s)))
            who = f"pid {kpid}" if kpid else f"not ours: {port_owner(s.kafka_port)}"
            out.append(
                Health("kafka", s.kafka_bootstrap, True, f"{who}, round trip {took * 1000:.0f} ms, {n} topics")
            )
    except Exception as exc:  # noqa: BLE001
        out.append(Health("kafka", s.kafka_bootstrap, False, f"pid {kpid}: {exc}"))
    return out + _stores_and_jobs(s)


def _stores_and_jobs(s: Settings) -> list[Health]:
    out = []
    fproc = ManagedProcess("ferretdb", s)
    fpid = fproc.pid()
    try:
        took = mongo_ping(s, 1500)
        who = f"pid {fpid}" if fpid else f"not ours: {port_owner(s.mongo_port)}"
        out.append(Health("mongodb", s.mongo_uri, True, f"{who}, ping {took * 1000:.0f} ms"))
    except Exception as exc:  # noqa: BLE001
        out.append(Health("mongodb", s.mongo_uri, False, "not running" if fpid is None else str(exc)))
    out.append(_postgres_health(s))
    out.extend(_monitoring_health(s))
    for pid_file in sorted(s.run_dir.glob("*.pid")) if s.run_dir.exists() else []:
        name = pid_file.stem
        if _is_service(name):
            continue
        proc = ManagedProcess(name, s)
        pid = proc.pid()
        out.append(
            Health(name, str(proc.log_file), pid is not None, f"pid {pid}" if pid else "not running")
        )
    return out
