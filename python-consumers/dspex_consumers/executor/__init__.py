"""Runs one StepDispatched command with DSPy and reports what happened."""

from .run import StepOutcome, execute_step

__all__ = ["StepOutcome", "execute_step"]
