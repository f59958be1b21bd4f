"""Jobs and schedules; definitions.py loads every job and schedule found in this package."""
