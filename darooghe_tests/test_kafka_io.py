"""Kafka plumbing that needs no broker: retries around a moving group coordinator."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from confluent_kafka import KafkaError, KafkaException

from darooghe.kafka_io import partition_offsets


class _CoordinatorMovingConsumer:
    """A consumer whose first `committed` answers NOT_COORDINATOR, as librdkafka did on the first
    lag query after a frozen broker resumed (fault suite); the fault cannot be caused on demand."""

    def __init__(self, failures: int):
        self.failures = failures

    def list_topics(self, topic, timeout):
        meta = SimpleNamespace(error=None, partitions={0: None})
        return SimpleNamespace(topics={topic: meta})

    def committed(self, tps, timeout):
        if self.failures:
            self.failures -= 1
            raise KafkaException(KafkaError(KafkaError.NOT_COORDINATOR))
        return [type(tp)(tp.topic, tp.partition, 7) for tp in tps]

    def get_watermark_offsets(self, tp, timeout):
        return 0, 9


def test_committed_offsets_are_retried_while_the_coordinator_moves():
    offsets = partition_offsets(_CoordinatorMovingConsumer(failures=2), "t", committed=True)
    assert offsets[0].committed == 7 and offsets[0].lag == 2


def test_committed_offsets_give_up_at_the_timeout():
    with pytest.raises(KafkaException, match="NOT_COORDINATOR"):
        partition_offsets(_CoordinatorMovingConsumer(failures=99), "t", committed=True, timeout=1)
