"""Spark faults on the standalone cluster, with the validator and the fraud job running.

2. SIGKILL a worker (its JVM, its executor and their Python workers: a lost machine) during the
   fraud job: the job goes on with the other worker's executor; every count checked.
3. SIGKILL the fraud job's driver, start it again: it resumes from its checkpoint; every count
   checked, and the recovery time measured (restart to its first new micro-batch).
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from darooghe.services import cluster, spark_standalone
from darooghe.services.process import ManagedProcess
from darooghe_tests.faults.harness import Run, kill_tree

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_sigkill_a_spark_worker_during_the_fraud_job(stack, pipeline, tmp_path):
    run = Run(stack, pipeline, tmp_path, "2-spark-worker-sigkill", seed=32)
    try:
        run.start_stream()
        worker = ManagedProcess("spark-worker-1", stack)
        executors = [
            e for e in spark_standalone.master_state(stack).get("workers", []) if e["coresused"]
        ]
        batches = run.fraud_batches()
        killed = time.monotonic()
        pids = kill_tree(worker.pid())
        next_batch_s = run.wait_fraud_batches(batches + 1) - killed
        alive = len(spark_standalone.alive_workers(spark_standalone.master_state(stack)))
        run.wait_produced()
        caught_up = run.wait_fraud_caught_up()
        run.wait_validated()
        run.finish()
        run.figures.update(
            killed=f"spark-worker-1 and its {len(pids) - 1} child processes",
            workers_busy_before=len(executors),
            fraud_next_batch_after_kill_s=round(next_batch_s, 1),
            fraud_caught_up_after_kill_s=round(caught_up - killed, 1),
            fraud_job_restarts=0,
            workers_alive_after=alive,
        )
    finally:
        run.stop()
        cluster.start_spark_worker(stack, 1, log=lambda _: None)
        cluster.wait_spark(stack, stack.spark_workers)
    run.report()


def test_sigkill_the_fraud_driver_then_resume_from_checkpoint(stack, pipeline, tmp_path):
    run = Run(stack, pipeline, tmp_path, "3-fraud-driver-sigkill", seed=33)
    try:
        run.start_stream()
        assert run.fraud is not None
        batches = run.fraud_batches()
        killed = time.monotonic()
        os.killpg(run.fraud.pid, signal.SIGKILL)  # the Python driver and its JVM
        run.fraud.wait(30)
        restarted = time.monotonic()
        run.start_fraud()
        resumed = run.wait_fraud_batches(run.fraud_batches() + 1)
        run.wait_produced()
        caught_up = run.wait_fraud_caught_up()
        run.wait_validated()
        run.finish()
        run.figures.update(
            batches_before_kill=batches,
            recovery_s=round(resumed - killed, 1),
            restart_to_first_batch_s=round(resumed - restarted, 1),
            fraud_caught_up_after_kill_s=round(caught_up - killed, 1),
        )
    finally:
        run.stop()
    run.report()
