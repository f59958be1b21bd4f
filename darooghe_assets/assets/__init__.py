"""Asset modules, one per part of the pipeline; definitions.py lists the assets it registers."""
