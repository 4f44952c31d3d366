"""Faster copies of two DSPy helpers that every Predict step pays for, with the same results.

Profiled in a stdio worker (bench/peers.ts, DSPy 3.1) they were a third of its CPU per step:
- `dspy.Module.__getattribute__` warns when `forward` is called other than through `__call__`, and finds
  the caller with `inspect.stack()`, which reads the source of every frame on the stack (a `stat` each).
  The caller is one frame up: `sys._getframe(1)` answers the same question, with the same warning.
- `serialize_for_json`, which the adapters run on each field value they format, builds a pydantic
  TypeAdapter per value; for a plain string that adapter returns the string itself.
"""

import logging
import sys
from typing import Any

import dspy
import dspy.adapters.utils as adapter_utils

_dspy_log = logging.getLogger("dspy.primitives.module")
_serialize_for_json = adapter_utils.serialize_for_json


def _getattribute(self: dspy.Module, name: str) -> Any:
    attr = super(dspy.Module, self).__getattribute__(name)
    if name == "forward" and callable(attr) and sys._getframe(1).f_code.co_name != "__call__":
        _dspy_log.warning(
            f"Calling module.forward(...) on {self.__class__.__name__} directly is discouraged. "
            f"Please use module(...) instead."
        )
    return attr


def _serialize_string_fast(value: Any) -> Any:
    return value if type(value) is str else _serialize_for_json(value)


def install() -> None:
    """Swaps each helper for its copy where this DSPy has the slow one; else leaves DSPy alone."""
    current = dspy.Module.__dict__.get("__getattribute__")
    if current is not None and "inspect" in current.__code__.co_names:
        dspy.Module.__getattribute__ = _getattribute
    if adapter_utils.serialize_for_json is _serialize_for_json and "TypeAdapter" in _serialize_for_json.__code__.co_names:
        adapter_utils.serialize_for_json = _serialize_string_fast
