"""Measurement scripts run by hand: they print figures, they are not tests."""
