"""The job the streaming watch sensors request (sensors/streaming.py): restart a dead or hung job."""

import dagster as dg

from darooghe.streaming.service import JOBS, restart_if_unhealthy
from darooghe_assets.resources import SettingsResource


@dg.op(config_schema={"job": dg.Field(str, description="fraud or metrics")})
def restart_stream_op(context: dg.OpExecutionContext, settings: SettingsResource) -> None:
    """Start a dead (or stop and start a hung) streaming job with the arguments it was started with."""
    job = context.op_config["job"]
    if job not in JOBS:
        raise dg.Failure(f"job {job!r} is not one of {', '.join(JOBS)}")
    pid = restart_if_unhealthy(job, settings.get())
    if pid is None:
        context.log.info(f"{JOBS[job]}: nothing to do (running, or not enabled)")
    else:
        context.log.info(f"{JOBS[job]}: restarted as pid {pid}; it resumes from its checkpoint")


@dg.job(description="Restart a dead or hung streaming job (requested by its watch sensor).")
def restart_stream_job():
    restart_stream_op()
