"""The Darooghe Dagster code location: the lineage from the generator to the charts as assets."""
