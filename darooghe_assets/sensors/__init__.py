"""Sensor modules; definitions.py lists the sensors it registers."""
