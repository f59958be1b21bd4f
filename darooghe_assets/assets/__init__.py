"""Asset modules; definitions.py loads every module of this package."""
