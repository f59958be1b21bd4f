"""A backfill killed half-way and run again writes its window exactly once: it resumes after
the last chunk it committed instead of writing the same transaction_ids a second time (which the
lake would count twice)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from darooghe import kafka_io
from darooghe.generator import params as gp
from darooghe.generator.backfill import BackfillLedger, backfill, ledger_path
from darooghe.kafka_io import consumer_config, producer_config

pytestmark = pytest.mark.integration
END = "2026-03-10T00:00:00Z"
PARAMS = {"seed": 8, "days": 1, "event_rate": 100.0}

_CHILD = textwrap.dedent(
    """
    import sys
    from confluent_kafka import Consumer, Producer
    from darooghe.config import load_settings
    from darooghe.generator import params as gp
    from darooghe.generator.backfill import BackfillLedger, backfill, ledger_path
    from darooghe.kafka_io import consumer_config, producer_config
    s = load_settings()
    backfill(
        gp.GeneratorParams(seed=8, days=1, event_rate=100.0), sys.argv[1],
        lambda **o: Producer(producer_config(s, **o)),
        BackfillLedger(ledger_path(s)), sys.argv[2],
        make_consumer=lambda group_id: Consumer(consumer_config(group_id, s)),
    )
    """
)


def _run(settings, topic: str):
    from confluent_kafka import Consumer, Producer

    return backfill(
        gp.GeneratorParams(**PARAMS),
        topic,
        lambda **o: Producer(producer_config(settings, **o)),
        BackfillLedger(ledger_path(settings)),
        END,
        make_consumer=lambda group_id: Consumer(consumer_config(group_id, settings)),
    )


def _records(settings, topic: str) -> Counter:
    return Counter((r.key, r.value, r.timestamp) for r in kafka_io.consume_all(topic, settings))


def test_killed_backfill_resumes_and_writes_each_record_once(stack, unique_topic, tmp_path):
    import dataclasses

    home = dataclasses.replace(stack, home=tmp_path / "home")
    clean_topic, topic = unique_topic("test.backfill.clean", 2), unique_topic("test.backfill", 2)
    outcome = _run(dataclasses.replace(stack, home=tmp_path / "clean-home"), clean_topic)
    clean = _records(stack, clean_topic)
    assert outcome.written and sum(clean.values()) == outcome.summary.events > 50_000

    env = {**os.environ, "DAROOGHE_HOME": str(home.home)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, topic, END], env=env)
    try:
        deadline = time.monotonic() + 120
        while True:  # kill it once some, not all, of the window is committed
            low_high = kafka_io.partition_end_offsets(topic, stack).values()
            if sum(high - low for low, high, _ in low_high) > 20_000:
                break
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    partial = sum(_records(stack, topic).values())
    assert 0 < partial < sum(clean.values()), "the kill came too late to test a resume"
    entry = json.loads(ledger_path(home).read_text())[0]
    assert entry["state"] == "writing"  # recorded at the start, not only at the end

    resumed = _run(home, topic)
    assert resumed.written and resumed.resumed_after > 0
    assert _records(stack, topic) == clean  # every record once, the same bytes as a clean run
    assert json.loads(ledger_path(home).read_text())[0]["state"] == "done"
    assert not _run(home, topic).written  # finished: the window is now skipped
