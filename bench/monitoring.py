"""What monitoring costs: the exporter's scrape time and CPU, and the pipeline's throughput under it.

    .venv/bin/python -m bench.monitoring [--records 250000] [--rounds 5] [--scrapes 30]
                                         [--aggressive 1] [--no-fraud]

Runs against the stack of the settings with its exporter (`darooghe monitor`) and Prometheus up
(`darooghe services up`). The workload is the real pipeline on bench topics: the validator
(darooghe.validation.service.Validator, exactly once, in this process, as in bench.validator) on a
fixed backlog of --records events, and, unless --no-fraud, the fraud job (`darooghe stream fraud`,
a Spark app with its UI, so Prometheus also scrapes its driver and executors and the exporter reads
its REST API) consuming the validator's output.

1. scrape cost: with the stack's Prometheus told to scrape nothing, --scrapes GETs of the exporter's
   /metrics during a validator run: latency p50/p95/max, and the exporter's CPU per scrape (psutil,
   its CPU over the scrapes minus its idle CPU rate, measured just before, times their duration);
2. throughput: validator records/s on the backlog with Prometheus scraping at the production
   interval (darooghe.services.prometheus.SCRAPE_INTERVAL), at an aggressive one (--aggressive
   seconds) and not at all (the baseline), in alternating rounds of one run, and the medians'
   ratios. Modes are switched by rewriting the stack Prometheus's configuration and reloading it
   (SIGHUP, as `darooghe services up` does); its own configuration is restored at the end.
Target: scraping costs the pipeline <= 5% throughput (ratio >= 0.95).
Beside each throughput the CPU the exporter and Prometheus used during the run, as a share of it
and the pipeline's (validator, broker, fraud job): what scraping takes from a CPU-bound machine,
a figure far less noisy than throughput on a shared one (slightly low: the broker's work for the
exporter's admin requests and the fraud job's serving its metrics count as the pipeline's).
The bench topics are deleted at the end, each run's consumer group after it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psutil

from bench.validator import preload, require_broker, validator_run
from darooghe.config import Settings, load_settings
from darooghe.kafka_io import admin_client, ensure_topics
from darooghe.services import prometheus
from darooghe.services.process import ManagedProcess, stop_group
from darooghe.topics import Topic

TARGET_RATIO = 0.95
PRODUCTION_S = float(prometheus.SCRAPE_INTERVAL.rstrip("s"))


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def service_process(s: Settings, name: str) -> psutil.Process:
    pid = ManagedProcess(name, s).pid()
    if pid is None:
        raise SystemExit(f"{name} is not running for {s.home}: run `darooghe services up`")
    return psutil.Process(pid)


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def tree_cpu(proc: psutil.Process) -> float:
    """User + system CPU seconds of a process and of its children it has waited for."""
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system + t.children_user + t.children_system


def scrape(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        size = len(resp.read())
    return time.perf_counter() - t0, size


def configure_prometheus(s: Settings, proc: psutil.Process, interval_s: float | None) -> None:
    """Point the stack's Prometheus at the same targets every `interval_s`, or at none (None)."""
    config = prometheus.scrape_config(s)
    if interval_s is None:
        config["scrape_configs"] = []
    else:
        config["global"]["scrape_interval"] = f"{interval_s:g}s"
        config["global"]["evaluation_interval"] = f"{interval_s:g}s"
    path = prometheus.config_path(s)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(prometheus.render(config), encoding="utf-8")
    os.replace(tmp, path)
    proc.send_signal(signal.SIGHUP)

    def loaded(yaml: str) -> bool:  # the configuration Prometheus runs, as it prints it
        if interval_s is None:
            return "job_name:" not in yaml
        return yaml.startswith(f"global:\n  scrape_interval: {interval_s:g}s\n")

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(prometheus.api_url(s, "/api/v1/status/config"), timeout=5) as r:
            if loaded(json.load(r)["data"]["yaml"]):
                return
        time.sleep(0.2)
    raise SystemExit(f"Prometheus did not load the configuration (interval {interval_s}) in 30 s")


def restore_prometheus(s: Settings, proc: psutil.Process) -> None:
    prometheus.write_config(s)
    with contextlib.suppress(psutil.Error):
        proc.send_signal(signal.SIGHUP)


def fraud_registration(s: Settings) -> Path:
    return s.metrics_dir / "spark-apps" / "darooghe-fraud-detection.json"


def start_fraud_job(s: Settings, valid: str, workdir: Path) -> subprocess.Popen:
    """`darooghe stream fraud` on the bench's valid topic; alerts to a file (--output), so its
    progress file is not the live job's. Its Spark app registers under the live job's name, so a
    live fraud job on the same home is refused rather than shadowed."""
    with contextlib.suppress(OSError, ValueError):
        live = json.loads(fraud_registration(s).read_text()).get("pid")
        if live and psutil.pid_exists(live):
            raise SystemExit(
                f"a fraud job runs on {s.home} (pid {live}): stop it (`darooghe stream stop`) "
                "or pass --no-fraud"
            )
    profiles = workdir / "profiles.jsonl"
    profiles.write_text("")
    cmd = [
        sys.executable, "-m", "darooghe.cli", "stream", "fraud", "--topic", valid,
        "--output", str(workdir / "alerts.jsonl"), "--checkpoint", str(workdir / "job"),
        "--profiles", str(profiles),
    ]  # fmt: skip
    out = (workdir / "fraud.log").open("w")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_app(s: Settings, job: subprocess.Popen, workdir: Path, timeout: float = 180) -> None:
    """Until the fraud job's UI is registered (Prometheus and the exporter can reach it)."""
    path = fraud_registration(s)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.poll() is not None:
            tail = (workdir / "fraud.log").read_text()[-2000:]
            raise SystemExit(f"the fraud job exited with {job.returncode}:\n{tail}")
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == job.pid:
                return
        time.sleep(1)
    raise SystemExit(f"the fraud job registered no UI in {path} within {timeout:.0f} s")


def scrape_cost(
    s: Settings, exporter: psutil.Process, url: str, n: int, workload
) -> dict[str, float]:
    """n scrapes back to back while `workload()` runs; CPU net of the exporter's idle rate."""
    idle_s = 5.0
    c0 = cpu_seconds(exporter)
    time.sleep(idle_s)
    idle_rate = (cpu_seconds(exporter) - c0) / idle_s
    times: list[float] = []
    sizes: list[int] = []
    box: dict[str, float] = {}

    def run() -> None:
        c1, t1 = cpu_seconds(exporter), time.monotonic()
        for _ in range(n):
            t, size = scrape(url)
            times.append(t)
            sizes.append(size)
        box["cpu"] = cpu_seconds(exporter) - c1
        box["wall"] = time.monotonic() - t1

    scraper = threading.Thread(target=run, daemon=True)
    scraper.start()
    workload()
    scraper.join()
    net_cpu = max(0.0, box["cpu"] - idle_rate * box["wall"])
    return {
        "p50": pct(times, 0.5),
        "p95": pct(times, 0.95),
        "max": max(times),
        "bytes": statistics.median(sizes),
        "cpu_per_scrape": net_cpu / n,
        "cpu_per_scrape_gross": box["cpu"] / n,
        "idle_cpu_rate": idle_rate,
    }


def series_count(url: str) -> tuple[int, int]:
    """(samples in one scrape, consumer groups the exporter reports lag for)."""
    with urllib.request.urlopen(url, timeout=60) as resp:
        text = resp.read().decode()
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    groups = {
        line.split('group="', 1)[1].split('"', 1)[0]
        for line in samples
        if line.startswith("darooghe_kafka_consumer_lag_sum{")
    }
    return len(samples), len(groups)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--aggressive", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--no-fraud", action="store_true", help="the validator only")
    args = parser.parse_args()

    s = load_settings()
    require_broker(s)
    exporter = service_process(s, "monitor")
    prom = service_process(s, "prometheus")
    broker = service_process(s, "kafka")
    url = f"http://127.0.0.1:{s.monitor_port}/metrics"
    log(f"stack {s.home}: exporter pid {exporter.pid} ({url}), Prometheus pid {prom.pid}")

    tag = uuid.uuid4().hex[:8]
    names = {k: f"bench.monitoring.{k}.{tag}" for k in ("input", "valid", "errors")}
    ensure_topics(
        [
            Topic(names["input"], 4, "bench input"),
            Topic(names["valid"], 4, "bench valid"),
            Topic(names["errors"], 2, "bench errors"),
        ],
        s,
    )
    job = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    admin = admin_client(s)
    runs = 0

    def one_run() -> float:
        """A validator run with its own group, deleted after it: every run sees the same groups."""
        nonlocal runs
        runs += 1
        group = f"bench-monitoring-{tag}-{runs}"
        try:
            rate, _ = validator_run(
                s, names["input"], names["valid"], names["errors"], args.records,
                args.batch_size, group,
            )  # fmt: skip
        finally:
            for future in admin.delete_consumer_groups([group], request_timeout=30).values():
                with contextlib.suppress(Exception):
                    future.result()
        return rate

    def pipeline_cpu() -> float:
        """CPU seconds of the pipeline: this process (the validator), the broker, the fraud job."""
        procs = [psutil.Process(), broker]
        if job is not None:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(job.pid)
                procs += [root, *root.children(recursive=True)]
        return sum(tree_cpu(p) for p in procs)

    try:
        rate, invalid = preload(s, names["input"], args.records)
        log(f"pre-loaded {args.records:,} records ({invalid:,} invalid) at {rate:,.0f}/s")
        if not args.no_fraud:
            log("starting the fraud job on the validator's output (a Spark app with its UI)")
            job = start_fraud_job(s, names["valid"], workdir)
            wait_for_app(s, job, workdir)
            log(f"fraud job up (pid {job.pid})")
        configure_prometheus(s, prom, PRODUCTION_S)
        time.sleep(PRODUCTION_S * 2)
        samples, n_groups = series_count(url)
        log(f"one scrape: {samples:,} samples, lag of {n_groups} consumer groups")

        configure_prometheus(s, prom, None)
        idle = [scrape(url)[0] for _ in range(10)]
        log(
            f"1. scrape time with the validator idle (baseline): p50 {pct(idle, 0.5) * 1000:,.0f} ms,"
            f" p95 {pct(idle, 0.95) * 1000:,.0f} ms over 10 scrapes"
        )
        log(f"   {args.scrapes} scrapes back to back during a validator run (Prometheus off)")
        cost = scrape_cost(s, exporter, url, args.scrapes, one_run)
        log(
            f"   scrape time p50 {cost['p50'] * 1000:,.0f} ms, p95 {cost['p95'] * 1000:,.0f} ms, "
            f"max {cost['max'] * 1000:,.0f} ms; {cost['bytes']:,.0f} bytes; exporter CPU "
            f"{cost['cpu_per_scrape'] * 1000:,.1f} ms per scrape (gross "
            f"{cost['cpu_per_scrape_gross'] * 1000:,.1f} ms, idle rate "
            f"{cost['idle_cpu_rate'] * 1000:,.1f} ms/s)"
        )

        modes = {"none": None, "production": PRODUCTION_S, "aggressive": args.aggressive}
        label = {
            "none": "no scraping",
            "production": f"every {PRODUCTION_S:g} s",
            "aggressive": f"every {args.aggressive:g} s",
        }
        rates: dict[str, list[float]] = {m: [] for m in modes}
        share: dict[str, list[float]] = {m: [] for m in modes}
        log(f"2. validator throughput on {args.records:,} records, {args.rounds} rounds of 3 modes")
        for r in range(1, args.rounds + 1):
            order = list(modes) if r % 2 else list(reversed(modes))
            for mode in order:
                interval = modes[mode]
                configure_prometheus(s, prom, interval)
                time.sleep(interval or 1.0)  # the first scrapes of the new interval are running
                m0, p0 = cpu_seconds(exporter) + cpu_seconds(prom), pipeline_cpu()
                rate = one_run()
                mon = cpu_seconds(exporter) + cpu_seconds(prom) - m0
                pipe = pipeline_cpu() - p0
                rates[mode].append(rate)
                share[mode].append(mon / (mon + pipe))
                log(
                    f"   round {r} {label[mode]:>14}: validator {rate:,.0f} records/s; exporter + "
                    f"Prometheus {mon:.2f} CPU-s = {share[mode][-1]:.1%} of the CPU beside the "
                    f"pipeline's {pipe:.1f} CPU-s"
                )
        med = {m: statistics.median(v) for m, v in rates.items()}
        base = med["none"]
        what = "validator + fraud job" if job else "validator only"
        print()
        print(f"figures ({what}, load average {os.getloadavg()[0]:.1f}):")
        print(
            f"  exporter scrape time p50 {cost['p50'] * 1000:,.0f} ms / p95 "
            f"{cost['p95'] * 1000:,.0f} ms over {args.scrapes} scrapes during a validator run "
            f"(idle baseline p50 {pct(idle, 0.5) * 1000:,.0f} ms / p95 {pct(idle, 0.95) * 1000:,.0f} ms;"
            f" {samples:,} samples, {n_groups} consumer groups); exporter CPU "
            f"{cost['cpu_per_scrape'] * 1000:,.1f} ms per scrape"
        )
        for mode in modes:
            lo, hi = min(rates[mode]), max(rates[mode])
            print(
                f"  validator {label[mode]:>14}: median {med[mode]:,.0f} records/s "
                f"(range {lo:,.0f}-{hi:,.0f}), ratio to no scraping {med[mode] / base:.3f}; "
                f"monitoring CPU share {statistics.median(share[mode]):.2%}"
            )
        spread = (max(rates["none"]) - min(rates["none"])) / base
        cpu_cost = statistics.median(share["production"]) - statistics.median(share["none"])
        print(
            f"target: scraping costs <= {1 - TARGET_RATIO:.0%} throughput at the production "
            f"interval: by throughput {'met' if med['production'] / base >= TARGET_RATIO else 'NOT MET'}"
            f" ({1 - med['production'] / base:+.1%}; every {args.aggressive:g} s "
            f"{1 - med['aggressive'] / base:+.1%}), within the noise of this machine when that is "
            f"under the no-scraping rounds' own spread ({spread:.0%}); by CPU "
            f"{'met' if cpu_cost <= 1 - TARGET_RATIO else 'NOT MET'}: scraping every "
            f"{PRODUCTION_S:g} s takes {cpu_cost:.2%} more of the CPU than no scraping"
        )
        return 0
    finally:
        restore_prometheus(s, prom)
        if job is not None and job.poll() is None:
            stop_group(job)
            with contextlib.suppress(OSError, ValueError):  # SIGKILL leaves it behind
                if json.loads(fraud_registration(s).read_text()).get("pid") == job.pid:
                    fraud_registration(s).unlink()
        shutil.rmtree(workdir, ignore_errors=True)
        for future in admin.delete_topics(list(names.values()), operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result()


if __name__ == "__main__":
    raise SystemExit(main())
