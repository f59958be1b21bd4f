"""The fraud job's checkpoint keeps the customer bucket count it started with."""

from __future__ import annotations

import json

import pytest

from darooghe.streaming.fraud_job import FraudJobConfig, checkpoint_buckets
from darooghe.streaming.fraud_processor import BUCKETS, LEGACY_BUCKETS
from darooghe.streaming.sources import SourceConfig


def _cfg(tmp_path) -> FraudJobConfig:
    return FraudJobConfig(source=SourceConfig("kafka", topic="t"), workdir=tmp_path / "fraud")


def _start_checkpoint(cfg: FraudJobConfig) -> None:
    """What Spark leaves after a first batch: an entry in the offset log."""
    (cfg.checkpoint_dir / "offsets").mkdir(parents=True)
    (cfg.checkpoint_dir / "offsets" / "0").write_text("v1\n")


def test_a_new_checkpoint_takes_the_current_count_and_records_it(tmp_path):
    cfg = _cfg(tmp_path)
    assert checkpoint_buckets(cfg) == BUCKETS
    assert json.loads(cfg.layout_file.read_text()) == {"customer_buckets": BUCKETS}
    _start_checkpoint(cfg)
    assert checkpoint_buckets(cfg) == BUCKETS


def test_a_started_checkpoint_keeps_its_recorded_count(tmp_path):
    cfg = _cfg(tmp_path)
    _start_checkpoint(cfg)
    cfg.layout_file.write_text(json.dumps({"customer_buckets": 12}))
    assert checkpoint_buckets(cfg) == 12


def test_a_checkpoint_from_before_the_layout_file_keeps_the_old_count(tmp_path):
    cfg = _cfg(tmp_path)
    _start_checkpoint(cfg)
    assert checkpoint_buckets(cfg) == LEGACY_BUCKETS == 32
    assert not cfg.layout_file.exists()


@pytest.mark.parametrize(
    "text, problem",
    [("{", "unreadable checkpoint layout"), ('{"customer_buckets": 0}', "positive integer")],
)
def test_a_broken_layout_file_is_named_in_the_error(tmp_path, text, problem):
    cfg = _cfg(tmp_path)
    _start_checkpoint(cfg)
    cfg.layout_file.write_text(text)
    with pytest.raises(ValueError, match=problem) as error:
        checkpoint_buckets(cfg)
    assert str(cfg.layout_file) in str(error.value)
