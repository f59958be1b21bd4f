"""The job validator_watch requests (sensors/validation.py): restart a dead background validator."""

import dagster as dg

from darooghe.validation.supervision import enabled_instances, restart_if_dead
from darooghe_assets.resources import SettingsResource


@dg.op(config_schema={"instance": dg.Field(str, description="validator instance to restart")})
def restart_validator_op(context: dg.OpExecutionContext, settings: SettingsResource) -> None:
    """Start a dead background validator instance again with the command line it was started with."""
    s = settings.get()
    instance = context.op_config["instance"]
    enabled = enabled_instances(s)
    if instance not in enabled:  # an allow-list: only what `validate --detach` enabled
        raise dg.Failure(
            f"validator instance {instance!r} is not enabled; enabled: {', '.join(enabled) or 'none'}"
        )
    pid = restart_if_dead(s, instance)
    if pid is None:
        context.log.info(f"validator {instance}: nothing to do (running)")
    else:
        context.log.info(f"validator {instance}: restarted as pid {pid}; it resumes from the "
                         "group's committed offsets")


@dg.job(description="Restart a dead background validator (requested by validator_watch).")
def restart_validator_job():
    restart_validator_op()
