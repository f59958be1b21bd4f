"""One known generated stream through the whole real-time path, with every stage counted.

    samples (valid + invalid, known verdicts) --produce--> input topic
      -> validator (process, exactly-once transactions) -> valid / error topics
      -> fraud job (process, Spark on the standalone cluster) -> alerts / late topics
      -> alerts sink (in the test) -> MongoDB

A test starts the stages, injects its fault, and `finish` checks every count: produced = in the
input topic; valid + error = input exactly once (read_committed, test_validation_kafka's
check); alerts = the oracle's set (darooghe.fraud.reference) for the transactions judged in time
and the ones that came late; every alert_id once in MongoDB. `report` prints the figures and
appends them to `<home>/fault-figures.jsonl`.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pymongo import MongoClient

from darooghe.config import Settings
from darooghe.fraud.profiles import write_profiles_file
from darooghe.fraud.reference import reference_alert_ids
from darooghe.fraud.txn import Txn
from darooghe.kafka_io import consume_all, consumer_config
from darooghe.kafka_to_mongo.fraud_alerts import sink_fraud_alerts
from darooghe.services import cluster
from darooghe.services.process import ManagedProcess, reap, stop_group
from darooghe.validation.progress import consumer_group_lag, read_progress
from darooghe_tests.test_validation_kafka import (
    _count,
    _validator_cmd,
    check_exactly_once,
    make_samples,
)

REPO = Path(__file__).resolve().parents[2]
#: Seconds a chunk may take to be acknowledged: longer than a frozen broker stays frozen (60 s) plus
#: its fencing, so the generator side waits the fault out as a real producer does.
FLUSH_S = 240


def produce(settings: Settings, topic: str, batch: list) -> dict:
    """test_validation_kafka.produce, waiting up to FLUSH_S for deliveries (a broker fault)."""
    from darooghe_tests.test_validation_kafka import produce as produce_samples

    return produce_samples(settings, topic, batch, flush_s=FLUSH_S)


#: The customers with a profile (average amount): their large payments are amount anomalies.
AVERAGES = {f"cust_{i}": 400_000.0 for i in range(0, 1000, 7)}


def leader_of(settings: Settings, topic: str, partition: int = 0) -> int:
    md = Consumer(consumer_config(None, settings))
    try:
        return md.list_topics(topic, timeout=10).topics[topic].partitions[partition].leader
    finally:
        md.close()


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> list[int]:
    """Signal `pid` and every descendant (a machine losing a process and what it started)."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    for p in procs:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    if sig == signal.SIGKILL:
        time.sleep(0.5)
        for p in procs:
            reap(p.pid)
    return [p.pid for p in procs]


def broker_pid(settings: Settings, node: int) -> int:
    pid = ManagedProcess(cluster.kafka_name(node), settings).pid()
    assert pid is not None, f"kafka-{node} is not running"
    return pid


@dataclass
class Run:
    """The stages of one test's stream and its counts."""

    settings: Settings
    pipeline: dict
    workdir: Path
    name: str
    n: int = 4_000
    seed: int = 0
    figures: dict = field(default_factory=dict)
    placed: dict = field(default_factory=dict)
    validator: subprocess.Popen | None = None
    fraud: subprocess.Popen | None = None
    _producer: threading.Thread | None = None
    _errors: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        uid = uuid.uuid4().hex[:8]
        self.alerts_topic = f"test.faults.alerts.{uid}"
        self.late_topic = f"test.faults.late.{uid}"
        from darooghe.kafka_io import ensure_topics
        from darooghe.topics import Topic

        ensure_topics(
            [Topic(self.alerts_topic, 2, "fault test"), Topic(self.late_topic, 2, "fault test")],
            self.settings,
        )
        self.profiles = self.workdir / "profiles.jsonl"
        write_profiles_file(AVERAGES, self.profiles)
        self.samples = make_samples(self.n, seed=self.seed, invalid_share=0.1)

    # --- stages -------------------------------------------------------------------------------
    def produce_now(self, n: int) -> None:
        """Produce the first `n` samples at once (so the jobs have something to start on)."""
        self.placed.update(produce(self.settings, self.pipeline["input"], self.samples[:n]))

    def start_producing(self, chunk: int = 100, every_s: float = 1.0, skip: int = 0) -> None:
        """Produce the samples after the first `skip` in chunks, one every `every_s` (a stream,
        not one burst)."""

        def run() -> None:
            try:
                for i in range(skip, len(self.samples), chunk):
                    self.placed.update(
                        produce(self.settings, self.pipeline["input"], self.samples[i : i + chunk])
                    )
                    time.sleep(every_s)
            except BaseException as exc:  # noqa: BLE001 - reported by wait_produced
                self._errors.append(exc)

        self._producer = threading.Thread(target=run, daemon=True)
        self._producer.start()

    def wait_produced(self, timeout: float = 300) -> None:
        assert self._producer is not None
        self._producer.join(timeout)
        assert not self._producer.is_alive(), "the producer did not finish"
        assert not self._errors, self._errors
        assert len(self.placed) == len(self.samples)

    def start_validator(self) -> None:
        log = (self.workdir / "validator.log").open("a")
        self.validator = subprocess.Popen(
            _validator_cmd(self.pipeline, "0", "--batch-size", "500"),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def fraud_cmd(self) -> list[str]:
        return [
            sys.executable, "-m", "darooghe.cli", "stream", "fraud",
            "--source", "kafka",
            "--topic", self.pipeline["valid"],
            "--alerts-topic", self.alerts_topic,
            "--late-topic", self.late_topic,
            "--checkpoint", str(self.workdir / "fraud"),
            "--profiles", str(self.profiles),
            "--trigger-seconds", "1",
        ]  # fmt: skip

    def start_fraud(self) -> None:
        log = (self.workdir / "fraud.log").open("a")
        self.fraud = subprocess.Popen(
            self.fraud_cmd(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start_stream(self) -> None:
        """The validator and the fraud job running on a stream in progress: a first burst, the
        job's first micro-batch, then the rest produced as a stream and a second batch done."""
        self.start_validator()
        self.start_fraud()
        self.produce_now(200)
        self.wait_fraud_batches(1)
        self.start_producing(skip=200)
        self.wait_fraud_batches(2)

    def fraud_batches(self) -> int:
        commits = self.workdir / "fraud" / "checkpoint" / "commits"
        return len(list(commits.glob("[0-9]*"))) if commits.exists() else 0

    def wait_fraud_batches(self, n: int, timeout: float = 240) -> float:
        """Wait until the fraud job has committed `n` micro-batches in all; returns when (monotonic)."""
        deadline = time.monotonic() + timeout
        while self.fraud_batches() < n:
            assert self.fraud is not None and self.fraud.poll() is None, self.tail("fraud")
            assert time.monotonic() < deadline, f"fewer than {n} batches: " + self.stalled("fraud")
            time.sleep(0.2)
        return time.monotonic()

    def stalled(self, stage: str) -> str:
        """What a job that stopped making progress was doing: its Python threads (SIGUSR1 makes
        the CLI dump them into its log) and its JVM's threads that are in project, Spark or Kafka
        code (jstack), then the log's tail."""
        proc = self.validator if stage == "validator" else self.fraud
        jvm = ""
        jstack = shutil.which("jstack")
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            for child in psutil.Process(proc.pid).children(recursive=True):
                if child.name() == "java" and jstack:
                    dump = subprocess.run(
                        [jstack, str(child.pid)],
                        check=False,
                        capture_output=True,
                        text=True,
                        timeout=60,
                    ).stdout
                    threads = [t for t in dump.split("\n\n") if "kafka" in t or "spark.sql" in t]
                    jvm = (
                        "\n--- JVM threads (kafka, spark.sql) ---\n" + "\n\n".join(threads)[-12000:]
                    )
        return self.tail(stage, 12000) + jvm

    def tail(self, stage: str, chars: int = 3000) -> str:
        path = self.workdir / f"{stage}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    # --- completion and checks ----------------------------------------------------------------
    def validator_lag(self) -> int:
        c = Consumer(consumer_config(self.pipeline["group"], self.settings))
        try:
            lag = consumer_group_lag(c, self.pipeline["input"])
            return sum(int(v["lag"] or 0) for v in lag.values())
        finally:
            c.close()

    def wait_validated(self, timeout: float = 240) -> float:
        """Wait until the validator has committed past every input record; returns when."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.validator is not None and self.validator.poll() is None, self.tail(
                "validator"
            )
            try:
                if self.validator_lag() == 0:
                    return time.monotonic()
                unanswered = ""
            except KafkaException as exc:  # a coordinator still moving after a broker's return
                unanswered = f" (last lag query: {exc})"
            assert time.monotonic() < deadline, (
                f"validator lag stayed > 0{unanswered}: " + self.stalled("validator")
            )
            time.sleep(0.5)

    def _fraud_end_offsets(self) -> dict[str, int]:
        offsets = self.workdir / "fraud" / "checkpoint" / "offsets"
        commits = self.workdir / "fraud" / "checkpoint" / "commits"
        done = [int(p.name) for p in commits.glob("[0-9]*")] if commits.exists() else []
        if not done:
            return {}
        text = (offsets / str(max(done))).read_text().splitlines()
        return json.loads(text[-1]).get(self.pipeline["valid"], {})

    def fraud_caught_up(self) -> bool:
        """The fraud job's last committed batch ends at the valid topic's end offsets."""
        seen = self._fraud_end_offsets()
        c = Consumer(consumer_config(None, self.settings))
        try:
            topic = self.pipeline["valid"]
            for p in c.list_topics(topic, timeout=10).topics[topic].partitions:
                high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                if int(seen.get(str(p), -1)) < high:
                    return False
            return True
        finally:
            c.close()

    def wait_fraud_caught_up(self, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while not self.fraud_caught_up():
            assert self.fraud is not None and self.fraud.poll() is None, self.tail("fraud")
            assert time.monotonic() < deadline, "fraud job did not catch up: " + self.stalled(
                "fraud"
            )
            time.sleep(1)
        return time.monotonic()

    def stop(self) -> None:
        for proc in (self.validator, self.fraud):
            if proc is not None:
                stop_group(proc)

    def finish(self) -> dict:
        """Stop the jobs, check every stage's counts, sink the alerts, return the figures.
        Without a fraud job, the validator's stage only."""
        self.stop()
        if self.fraud is None:
            return self._check_validator()
        s, f = self.settings, self.figures
        self._check_validator()
        valid = [
            Txn.from_value(r.value) for r in consume_all(self.pipeline["valid"], s, idle_timeout=1)
        ]
        late = [Txn.from_value(r.value) for r in consume_all(self.late_topic, s, idle_timeout=1)]
        late_ids = {t.transaction_id for t in late}
        alerts = [json.loads(r.value) for r in consume_all(self.alerts_topic, s, idle_timeout=1)]
        expected = reference_alert_ids(
            [t for t in valid if t.transaction_id not in late_ids], AVERAGES, late
        )
        got = {a["alert_id"] for a in alerts}
        f.update(
            late=len(late),
            alert_records=len(alerts),
            alerts_distinct=len(got),
            alerts_redelivered=len(alerts) - len(got),
            oracle_alerts=len(expected),
        )
        assert got == expected, (len(got - expected), len(expected - got))
        with MongoClient(s.mongo_uri) as client:
            db = client[s.mongo_db]
            coll = f"fraud_alerts_{self.alerts_topic.rsplit('.', 1)[1]}"
            consumer = Consumer(consumer_config(None, s))
            try:
                sink_fraud_alerts(db, consumer, self.alerts_topic, coll, log=lambda _: None)
            finally:
                consumer.close()
            ids = [d["alert_id"] for d in db[coll].find({}, {"alert_id": 1})]
            db.drop_collection(coll)
        f.update(mongodb_alerts=len(ids), mongodb_duplicate_alert_ids=len(ids) - len(set(ids)))
        assert set(ids) == expected and len(ids) == len(expected)
        return f

    def _check_validator(self) -> dict:
        """produced = input records = valid + errors, each input once (read_committed), lag 0."""
        s, f = self.settings, self.figures
        outputs = [self.pipeline["valid"], self.pipeline["errors"]]
        check_exactly_once(s, self.pipeline, self.placed)
        f.update(
            produced=len(self.placed),
            input_records=_count(s, [self.pipeline["input"]], "read_committed"),
            valid=_count(s, [self.pipeline["valid"]], "read_committed"),
            errors=_count(s, [self.pipeline["errors"]], "read_committed"),
            in_aborted_transactions=_count(s, outputs, "read_uncommitted")
            - _count(s, outputs, "read_committed"),
            validator_lag=self.validator_lag(),
        )
        reports = read_progress(s, self.pipeline["group"])
        f["validator_transactions_committed"] = sum(
            r.get("transactions_committed", 0) for r in reports
        )
        f["validator_transactions_aborted"] = sum(r.get("transactions_aborted", 0) for r in reports)
        assert f["input_records"] == f["produced"] and f["validator_lag"] == 0
        assert f["valid"] + f["errors"] == f["produced"]
        return f

    def report(self) -> None:
        report(self.settings, self.name, self.figures)


def report(settings: Settings, test: str, figures: dict) -> None:
    """Print a test's figures and append them to <home>/fault-figures.jsonl."""
    line = {"test": test, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    print(f"\nFAULT FIGURES {json.dumps(line)}")
    with (settings.home / "fault-figures.jsonl").open("a") as fh:
        fh.write(json.dumps(line) + "\n")
