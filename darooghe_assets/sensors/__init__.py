"""Sensor modules; definitions.py loads every SensorDefinition found in this package."""
