"""Sensors and schedules: the landing sensor, the daily run, run-failure visibility."""
