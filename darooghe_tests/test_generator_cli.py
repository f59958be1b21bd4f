"""`darooghe generate` and `darooghe generator`: determinism, range errors, live pacing, stopping,
the background process, and the Kafka sink round trip on the test broker.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from darooghe import kafka_io
from darooghe.cli import main
from darooghe.generator import GeneratorParams, parse_end
from darooghe.generator.engine import Engine
from darooghe.generator.intensity import Intensity
from darooghe.records import read_records
from darooghe.topics import LABEL_HEADER, MAX_HISTORY_DAYS

REPO = Path(__file__).resolve().parents[1]
END = "2026-03-18T12:00:00Z"
SMALL = ["--mode", "history", "--days", "1", "--event-rate", "10", "--end", END, "-q"]


def generate(*args: str) -> int:
    return main(["generate", *args])


def ts_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp() * 1000)


# --- determinism --------------------------------------------------------------------------------
def test_same_seed_and_parameters_give_identical_bytes(tmp_path):
    week = ["--seed", "11", "--event-rate", "20", "--mode", "history", "--days", "7", "--end", END,
            "--sink", "file", "-q"]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert generate(*week, "--output", str(a)) == 0
    assert generate(*week, "--output", str(b)) == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 10_000_000


def test_seed_window_and_parameters_change_the_output(tmp_path):
    outputs = {}
    for name, extra in {
        "base": ["--seed", "3"],
        "seed": ["--seed", "4"],
        "fraud": ["--seed", "3", "--fraud-rate", "0.05"],
    }.items():
        path = tmp_path / f"{name}.jsonl"
        assert generate(*SMALL, *extra, "--sink", "file", "--output", str(path)) == 0
        outputs[name] = path.read_bytes()
    assert len(set(outputs.values())) == 3
    ids = [json.loads(json.loads(line)["value"])["transaction_id"]
           for line in outputs["base"].decode().splitlines()[:1000] if '"ERR_SCHEMA"' not in line]
    assert len(set(ids)) == len(ids)  # ids are drawn from the seeded stream, and unique


def test_default_end_is_the_hour_so_runs_in_one_hour_agree():
    now = ts_ms("2026-03-18T12:34:56.789Z")
    assert parse_end(None, now_ms=now) == ts_ms("2026-03-18T12:00:00.000Z")
    assert parse_end("2026-03-18T16:00:00+03:30") == ts_ms("2026-03-18T12:30:00.000Z")
    assert parse_end("2026-03-18T12:00:00") == ts_ms("2026-03-18T12:00:00.000Z")  # naive = UTC


def test_population_depends_on_seed_and_counts_only():
    a = Engine(GeneratorParams(seed=9, event_rate=10)).population
    b = Engine(GeneratorParams(seed=9, event_rate=900, fraud_rate=0.1)).population
    assert a.customers() == b.customers() and a.merchants() == b.merchants()


# --- range errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "flag,env,value,expected_range",
    [
        ("--event-rate", "EVENT_RATE", "5000", "10–1000"),
        ("--event-rate", "EVENT_RATE", "9.5", "10–1000"),
        ("--peak-factor", "PEAK_FACTOR", "0.5", "1–5"),
        ("--fraud-rate", "FRAUD_RATE", "0.2", "0–0.1"),
        ("--declined-rate", "DECLINED_RATE", "-0.1", "0–0.2"),
        ("--merchant-count", "MERCHANT_COUNT", "501", "10–500"),
        ("--customer-count", "CUSTOMER_COUNT", "99", "100–10000"),
        ("--err-time-rate", "ERR_TIME_RATE", "0.5", "0–0.1"),
        ("--days", "GENERATOR_DAYS", str(MAX_HISTORY_DAYS + 1), f"1–{MAX_HISTORY_DAYS}"),
    ],
)
def test_out_of_range_values_exit_2_naming_parameter_value_and_range(
    flag, env, value, expected_range, capsys, monkeypatch, tmp_path
):
    out = ["--sink", "file", "--output", str(tmp_path / "x.jsonl"), "--mode", "history"]
    assert generate(*out, f"{flag}={value}") == 2
    err = capsys.readouterr().err
    assert env in err and value in err and expected_range in err and flag in err
    monkeypatch.setenv(env, value)
    assert generate(*out) == 2
    err = capsys.readouterr().err
    assert env in err and value in err and expected_range in err
    assert not (tmp_path / "x.jsonl").exists()


def test_not_a_number_and_usage_errors_exit_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CUSTOMER_COUNT", "many")
    assert generate("--mode", "history", "--sink", "file", "-o", str(tmp_path / "x")) == 2
    assert "CUSTOMER_COUNT='many'" in capsys.readouterr().err
    monkeypatch.delenv("CUSTOMER_COUNT")
    assert generate("--mode", "history", "--sink", "file") == 2  # no --output
    assert generate("--mode", "live", "--end", END, "--sink", "file", "-o", str(tmp_path / "x")) == 2
    assert generate("--mode", "history", "--end", "yesterday", "--sink", "file", "-o", str(tmp_path / "x")) == 2
    assert "yesterday" in capsys.readouterr().err


def test_console_script_refuses_event_rate_5000():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "darooghe"), "generate", "--event-rate", "5000"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "EVENT_RATE=5000" in done.stderr and "10–1000" in done.stderr


# --- live mode ----------------------------------------------------------------------------------
def test_live_mode_paces_real_time_and_is_valid_at_ingestion(tmp_path):
    path = tmp_path / "live.jsonl"
    t0 = time.time() * 1000
    assert generate("--mode", "live", "--duration", "3", "--event-rate", "1000", "--peak-factor", "1",
                    "--sink", "file", "--output", str(path), "-q") == 0
    t1 = time.time() * 1000
    assert t1 - t0 >= 2900  # it took the real time
    records = list(read_records(path))
    assert 20 < len(records) < 120  # ~16.7 events/s at the quiet level for 3 s
    lags = []
    for r in records:
        assert t0 <= r.timestamp <= t1
        label = r.headers.get(LABEL_HEADER, "")
        if label.startswith("ERR_"):
            continue
        event = ts_ms(json.loads(r.value)["timestamp"])
        assert event <= r.timestamp  # never after its ingestion time
        lags.append(r.timestamp - event)
    assert np.median(lags) < 100  # written when due, not in fixed batches


def test_both_mode_continues_the_history_into_live(tmp_path, capsys):
    path = tmp_path / "both.jsonl"
    before = time.time() * 1000
    assert generate("--mode", "both", "--days", "1", "--event-rate", "10", "--duration", "1",
                    "--sink", "file", "--output", str(path), "-q") == 0
    out = capsys.readouterr().out
    history = re.search(r"history: ([\d,]+) events from (\S+) to (\S+) ", out)
    live = re.search(r"live: ([\d,]+) events from (\S+) to ", out)
    assert history and live
    assert live.group(2) == history.group(3)  # live starts where the history ends: no gap
    assert ts_ms(history.group(3)) >= before
    records = list(read_records(path))
    assert len(records) == int(history.group(1).replace(",", "")) + int(live.group(1).replace(",", ""))
    # A whole day was written: the count agrees with the intensity's integral over the window (the
    # day's weekday sets it, ~8.7k on a Friday, ~15k on a Saturday; injected events add a few %).
    expected = Intensity(10, 2.5).expected_events(ts_ms(history.group(2)) / 1000, ts_ms(history.group(3)) / 1000)
    assert 0.9 * expected < int(history.group(1).replace(",", "")) < 1.2 * expected


def test_sigterm_stops_live_mode_cleanly(tmp_path):
    path = tmp_path / "live.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "darooghe.cli", "generate", "--mode", "live", "--event-rate", "1000",
         "--sink", "file", "--output", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_size == 0):
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "live:" in out  # the closing summary
    records = list(read_records(path))  # every line complete
    assert records and f"live: {len(records):,} events" in out


def test_detach_status_and_stop(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAROOGHE_HOME", str(tmp_path / "home"))
    path = tmp_path / "bg.jsonl"
    assert generate("--mode", "live", "--event-rate", "1000", "--sink", "file", "--output", str(path),
                    "--detach") == 0
    try:
        assert "started in the background" in capsys.readouterr().out
        assert main(["generator", "status"]) == 0
        assert "running (pid" in capsys.readouterr().out
        # a second one is refused while the first runs
        assert generate("--mode", "live", "--sink", "file", "--output", str(path), "--detach") == 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_size == 0):
            time.sleep(0.2)
        assert path.stat().st_size > 0
    finally:
        assert main(["generator", "stop"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert main(["generator", "status"]) == 1
    log = (tmp_path / "home" / "logs" / "generator.log").read_text()
    assert "generate: live" in log and "live:" in log  # started, and closed with its summary
    assert list(read_records(path))


# --- Kafka sink ---------------------------------------------------------------------------------
@pytest.mark.integration
def test_kafka_sink_round_trip_with_headers_and_timestamps(stack, unique_topic, tmp_path):
    topic = unique_topic("generator", 3)
    assert generate(*SMALL, "--seed", "21", "--sink", "kafka", "--topic", topic) == 0
    path = tmp_path / "same.jsonl"
    assert generate(*SMALL, "--seed", "21", "--sink", "file", "--output", str(path)) == 0
    expected = list(read_records(path))
    got = list(kafka_io.consume_all(topic, stack))
    assert len(got) == len(expected) > 10_000

    def key(r):
        return (r.key, r.value, r.timestamp, tuple(sorted(r.headers.items())))

    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert sum(1 for r in got if r.headers.get(LABEL_HEADER)) > 100
    # one customer's records stay in order within their partition
    per_key = defaultdict(list)
    partitions = defaultdict(set)
    for r in sorted(got, key=lambda r: (r.partition, r.offset)):
        per_key[r.key].append(r.value)
        partitions[r.key].add(r.partition)
    file_order = defaultdict(list)
    for r in expected:
        file_order[r.key].append(r.value)
    assert per_key == file_order
    assert all(len(p) == 1 for p in partitions.values())


@pytest.mark.integration
def test_kafka_sink_refuses_an_unknown_topic(stack, capsys):
    assert generate(*SMALL, "--sink", "kafka", "--topic", "no.such.topic.here") == 1
    assert "no.such.topic.here" in capsys.readouterr().err



def test_a_stop_request_ends_the_history_after_the_current_chunk(tmp_path):
    import threading

    from darooghe.generator import Renderer, run_history
    from darooghe.generator.publishers import FilePublisher

    engine = Engine(GeneratorParams(event_rate=10, seed=2))
    sink = FilePublisher(tmp_path / "h.jsonl", Renderer(engine.population, LABEL_HEADER))
    stop = threading.Event()
    stop.set()
    end = ts_ms("2026-03-18T12:00:00.000Z")
    summary = run_history(engine, sink, end - 7 * 86_400_000, end, stop=stop)
    sink.close()
    assert summary.events == 0 and summary.mode == "history (stopped early)"
    assert (tmp_path / "h.jsonl").read_bytes() == b""
