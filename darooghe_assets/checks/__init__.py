"""Asset check modules; definitions.py loads every check found in this package."""
