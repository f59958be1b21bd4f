"""Jobs (asset jobs and op jobs); definitions.py lists them. Schedules are in schedules.py."""
