"""The local stack answers for real: Kafka round trips and transactions, MongoDB, clear refusals."""

from __future__ import annotations

import dataclasses
import socket
import uuid

import psutil
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from darooghe import kafka_io
from darooghe.commission import commission
from darooghe.services import stack as services
from darooghe.services.process import ManagedProcess, ServiceError
from darooghe.topics import ALL_TOPICS

pytestmark = pytest.mark.integration


def test_status_reports_every_service_healthy(stack):
    rows = {r.name: r for r in services.status(stack)}
    assert rows["kafka"].healthy and rows["mongodb"].healthy and rows["postgres"].healthy
    assert rows["kafka"].address == stack.kafka_bootstrap
    assert "PostgreSQL 18" in rows["postgres"].detail


def test_up_twice_is_harmless(stack):
    lines: list[str] = []
    services.up(stack, log=lines.append)
    assert any("kafka: already running" in ln for ln in lines)
    assert any("ferretdb: already running" in ln for ln in lines)
    assert any("postgres: already running" in ln for ln in lines)
    assert any(f"topics: {len(ALL_TOPICS)} ready (all existed)" in ln for ln in lines)


def test_project_topics_exist_with_partitions_and_long_retention(stack):
    have = kafka_io.existing_topics(kafka_io.admin_client(stack))
    for t in ALL_TOPICS:
        assert have[t.name] == t.partitions
    from confluent_kafka.admin import ConfigResource

    admin = kafka_io.admin_client(stack)
    res = ConfigResource(ConfigResource.Type.TOPIC, "darooghe.transactions")
    cfg = admin.describe_configs([res])[res].result(10)
    assert int(cfg["retention.ms"].value) > 8 * 24 * 3600 * 1000


def test_kafka_round_trip_keeps_key_timestamp_and_headers(stack, unique_topic):
    topic = unique_topic("roundtrip")
    p = Producer(kafka_io.producer_config(stack))
    p.produce(topic, key=b"cust_7", value=b'{"x":1}', timestamp=1_600_000_000_123, headers=[("h", b"v")])
    assert p.flush(10) == 0
    [rec] = list(kafka_io.consume_all(topic, stack))
    assert (rec.key, rec.value, rec.timestamp, rec.headers) == ("cust_7", '{"x":1}', 1_600_000_000_123, {"h": "v"})


def test_committed_transaction_is_visible_aborted_is_not(stack, unique_topic):
    topic = unique_topic("txn")
    p = Producer(kafka_io.producer_config(stack, **{"transactional.id": f"t-{uuid.uuid4().hex}"}))
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, value=b"aborted")
    p.flush(10)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=b"committed")
    p.commit_transaction(30)
    values = [r.value for r in kafka_io.consume_all(topic, stack, idle_timeout=3)]
    assert values == ["committed"]
    # read_uncommitted sees both: the abort really reached the log.
    c = Consumer(kafka_io.consumer_config(None, stack, **{"isolation.level": "read_uncommitted"}))
    c.assign([TopicPartition(topic, 0, 0)])
    seen = [m.value() for m in c.consume(10, timeout=5) if not m.error()]
    c.close()
    assert b"aborted" in seen and b"committed" in seen


def test_mongodb_insert_query_and_index(mongo_db):
    docs = [{"_id": f"t{i}", "merchant_id": f"merch_{i % 3}", "amount": 1000 * i} for i in range(1, 10)]
    mongo_db.transactions.insert_many(docs)
    assert mongo_db.transactions.count_documents({"merchant_id": "merch_1"}) == 3
    name = mongo_db.transactions.create_index([("merchant_id", 1), ("amount", -1)])
    assert name in mongo_db.transactions.index_information()
    top = mongo_db.transactions.find({"merchant_id": "merch_2"}).sort("amount", -1).limit(1)
    assert next(top)["_id"] == "t8"
    total = list(mongo_db.transactions.aggregate([{"$group": {"_id": None, "s": {"$sum": "$amount"}}}]))
    assert total[0]["s"] == 45_000


@pytest.mark.parametrize(
    "field, variable, start",
    [("mongo_port", "DAROOGHE_MONGO_PORT", "_start_ferretdb"), ("postgres_port", "DAROOGHE_POSTGRES_PORT", "_start_postgres")],
)
def test_taken_port_is_refused_with_its_owner(stack, tmp_path, field, variable, start):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = dataclasses.replace(stack, home=tmp_path / "home", **{field: port})
        with pytest.raises(ServiceError, match=rf"port {port} \({variable}\).*already taken"):
            getattr(services, start)(other, log=lambda _: None)


def test_postgres_listens_on_loopback_only_with_a_password_kept_in_the_home(stack):
    from darooghe.services import postgres

    secret = stack.postgres_dir / "password"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().strip()) >= 24
    assert postgres.ready(stack).startswith("18.")
    owners = [
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == stack.postgres_port
    ]
    assert owners and set(owners) == {"127.0.0.1"}
    # FerretDB reaches it with the password from its environment, never from its command line
    pid = ManagedProcess("ferretdb", stack).pid()
    assert pid and postgres.password(stack) not in " ".join(psutil.Process(pid).cmdline())


def test_stale_pid_file_is_cleared(stack, tmp_path, capsys):
    other = dataclasses.replace(stack, home=tmp_path / "home")
    proc = ManagedProcess("ferretdb", other)
    proc.pid_file.parent.mkdir(parents=True)
    proc.pid_file.write_text("999999\n")
    assert proc.pid() is None
    assert "stale PID file" in capsys.readouterr().out
    assert not proc.pid_file.exists()


def test_commission_example_of_the_spec():
    # The schema's worked example: progressive on 850,000 IRR is 5,000 + 7,000.
    assert commission("progressive", 850_000) == 12_000
