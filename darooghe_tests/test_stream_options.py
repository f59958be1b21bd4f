"""Options of `darooghe stream fraud|metrics`: the defaults a job runs with when given none."""

from __future__ import annotations

import time

import pytest

from darooghe.cli import build_parser
from darooghe.config import load_settings
from darooghe.streaming.options import (
    DEFAULT_MAX_OFFSETS_PER_TRIGGER,
    fraud_config_from_args,
    metrics_config_from_args,
)
from darooghe.topics import LIVE_METRICS_SPAN_MS


@pytest.mark.parametrize(
    ("job", "config_from_args"),
    [("fraud", fraud_config_from_args), ("metrics", metrics_config_from_args)],
)
def test_no_job_caps_its_kafka_micro_batches_by_default_but_a_cap_can_be_set(job, config_from_args):
    """A default cap made a replayed backlog's rows late (the watermark outran slower partitions)."""
    settings = load_settings()
    cfg = config_from_args(build_parser().parse_args(["stream", job]), settings)
    assert DEFAULT_MAX_OFFSETS_PER_TRIGGER[job] == 0 and cfg.source.max_offsets_per_trigger is None
    capped = build_parser().parse_args(["stream", job, "--max-offsets-per-trigger", "500"])
    assert config_from_args(capped, settings).source.max_offsets_per_trigger == 500
    uncapped = build_parser().parse_args(["stream", job, "--max-offsets-per-trigger", "0"])
    assert config_from_args(uncapped, settings).source.max_offsets_per_trigger is None


def test_a_negative_cap_is_refused_naming_the_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["stream", "fraud", "--max-offsets-per-trigger", "-5"])
    assert "--max-offsets-per-trigger" in capsys.readouterr().err


def test_live_metrics_cover_the_span_the_live_charts_draw():
    settings = load_settings()
    now = time.time() * 1000
    metrics = metrics_config_from_args(build_parser().parse_args(["stream", "metrics"]), settings)
    assert abs(metrics.since_ms - (now - LIVE_METRICS_SPAN_MS)) < 60_000
    two_hours = build_parser().parse_args(["stream", "metrics", "--since", "2h"])
    assert abs(metrics_config_from_args(two_hours, settings).since_ms - (now - 7_200_000)) < 60_000
    everything = build_parser().parse_args(["stream", "metrics", "--since", "0"])
    assert metrics_config_from_args(everything, settings).since_ms is None


def test_the_windows_cutoff_is_fixed_by_the_first_start_of_a_work_directory(tmp_path):
    from darooghe.streaming.metrics_job import LONGEST_WINDOW_MS, MetricsJobConfig, windows_cutoff
    from darooghe.streaming.sources import SourceConfig

    first = MetricsJobConfig(SourceConfig(), tmp_path / "w", since_ms=1_000_000_123)
    assert windows_cutoff(first) == 1_000_000_123 - 1_000_000_123 % LONGEST_WINDOW_MS
    later = MetricsJobConfig(SourceConfig(), tmp_path / "w", since_ms=2_000_000_000)
    assert windows_cutoff(later) == windows_cutoff(first)  # a restart skips the same windows
    (tmp_path / "old" / "checkpoint").mkdir(parents=True)
    assert windows_cutoff(MetricsJobConfig(SourceConfig(), tmp_path / "old", since_ms=5)) is None


@pytest.mark.parametrize("job", ["fraud", "metrics", "all"])
def test_stream_start_refuses_options_its_job_does_not_take(job, capsys):
    """Checked against the job's own parser before anything starts (no background log to read)."""
    from darooghe.cli import main

    assert main(["stream", "start", job, "--", "--bogus"]) == 2
    assert "invalid options ['--bogus']" in capsys.readouterr().err
    if job == "metrics":  # a fraud-only option is refused for the metrics job
        assert main(["stream", "start", "metrics", "--profiles", "p.jsonl"]) == 2
