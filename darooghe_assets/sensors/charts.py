"""Keeps the charts current in `dagster dev`: evaluates the charts' eager automation conditions.

Dagster's default automation sensor starts stopped; this one, limited to the charts group, starts
running, so a chart is redrawn once the collections it reads have been rewritten (by the batch
assets or the sink sensors' runs) and the dashboard follows its charts.
"""

import dagster as dg

from darooghe_assets import constants as c

charts_automation_sensor = dg.AutomationConditionSensorDefinition(
    "charts_automation_sensor",
    target=dg.AssetSelection.groups(c.GROUP_CHARTS),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Redraws the charts and the dashboard after the collections they read change.",
)
