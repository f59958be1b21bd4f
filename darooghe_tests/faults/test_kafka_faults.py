"""Broker faults on the three-node cluster, with the validator and the fraud job running.

1. SIGKILL the leader of a valid-topic partition mid-stream, restart it: nothing lost or doubled
   at any stage, the alerts are the oracle's.
5. Freeze one broker (SIGSTOP) for 60 s with the validator under load: no loss, its transactions
   abort and retry, its lag comes back to 0; the recovery time is recorded.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from darooghe.services import cluster
from darooghe_tests.faults.harness import Run, broker_pid, kill_tree, leader_of

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_sigkill_the_partition_leader_mid_stream_then_restart(stack, pipeline, tmp_path):
    run = Run(stack, pipeline, tmp_path, "1-leader-broker-sigkill", seed=31)
    try:
        run.start_stream()
        node = leader_of(stack, pipeline["valid"], 0)
        batches = run.fraud_batches()
        killed = time.monotonic()
        kill_tree(broker_pid(stack, node))
        time.sleep(10)  # the stages run on two brokers meanwhile
        cluster.start_kafka_node(stack, node, log=lambda _: None)
        cluster.wait_kafka(stack)
        back = time.monotonic()
        next_batch_s = run.wait_fraud_batches(batches + 1) - killed
        run.wait_produced()
        validated = run.wait_validated()
        caught_up = run.wait_fraud_caught_up()
        run.finish()
        run.figures.update(
            killed=f"kafka-{node} (leader of {pipeline['valid']} p0)",
            fraud_next_batch_after_kill_s=round(next_batch_s, 1),
            broker_down_s=round(back - killed, 1),
            validator_caught_up_after_kill_s=round(validated - killed, 1),
            fraud_caught_up_after_kill_s=round(caught_up - killed, 1),
        )
    finally:
        run.stop()
        cluster.start_kafka(stack, log=lambda _: None)  # whatever happened, the next test has 3
    run.report()


def test_broker_frozen_60s_under_validator_load(stack, pipeline, tmp_path):
    run = Run(stack, pipeline, tmp_path, "5-broker-sigstop-60s", n=24_000, seed=35)
    node = None
    try:
        run.start_validator()
        run.start_producing(chunk=400, every_s=1.0)  # ~60 s of input
        time.sleep(8)
        node = leader_of(stack, pipeline["input"], 0)
        pid = broker_pid(stack, node)
        stopped = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        max_lag, samples, unanswered = 0, 0, 0
        while time.monotonic() - stopped < 60:
            samples += 1
            try:
                max_lag = max(max_lag, run.validator_lag())
            except Exception:  # noqa: BLE001 - the frozen broker may time a lag query out
                unanswered += 1
            time.sleep(3)
        os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        run.wait_produced()
        validated = run.wait_validated()
        run.finish()
        log = run.tail("validator", 10**7)
        lost = log.count("lost partitions")
        run.figures.update(
            frozen=f"kafka-{node} (leader of {pipeline['input']} p0)",
            frozen_s=round(resumed - stopped, 1),
            max_validator_lag_while_frozen=max_lag,
            lag_samples_while_frozen=samples,
            lag_samples_unanswered=unanswered,
            validator_lag_zero_after_resume_s=round(validated - resumed, 1),
            validator_partitions_lost=lost,
        )
    finally:
        if node is not None:
            os.kill(broker_pid(stack, node), signal.SIGCONT)
        run.stop()
    run.report()
