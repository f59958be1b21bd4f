"""The Dagster Definitions of Darooghe, gathered from the packages of this code location.

Assets live in darooghe_assets/assets, sensors in sensors/, asset checks in checks/, jobs and
schedules in jobs/: adding a module there is enough for it to appear here.
"""

from __future__ import annotations

import warnings

import dagster as dg

from darooghe_assets import assets, checks, jobs, sensors
from darooghe_assets.resources import build_resources

with warnings.catch_warnings():
    # The package loaders are marked "preview"; their behaviour here is plain module scanning.
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = dg.Definitions.merge(
        *(dg.load_definitions_from_package_module(p) for p in (assets, checks, sensors, jobs)),
        dg.Definitions(resources=build_resources()),
    )
