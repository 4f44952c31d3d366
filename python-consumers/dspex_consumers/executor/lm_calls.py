"""A step's LM calls as the wire's LmCall (streams/events/steps.ts): what the model saw and said, its tokens,
latency and cost. DSPy keeps a history entry per call on the LM (messages, outputs, usage, cost, model); a
DSPy callback times each call and takes the entry it added.

What is recorded is bounded: each message or completion keeps its first and last TEXT_LIMIT / 2 characters
around a marker saying how many were cut; if a step's calls still take more than STEP_BUDGET characters of
JSON, the limit shrinks (down to a sixteenth), and the calls past the budget keep only their usage. Key-shaped
strings and the values of secret-looking environment variables are masked (as in error messages).
"""

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from ..lms.prompt import text_of
from .errors import redact, secret_values

RECORD_MODES = ("full", "usage")  # usage: no messages or completion, only the model, tokens, latency, cost
TEXT_LIMIT = 4_000
STEP_BUDGET = 200_000
TEXT_FIELDS = ("messages", "completion")


class LmCallRecorder(BaseCallback):
    """Collects the calls of the LMs it is a callback of (`lm.callbacks`), in order. DSPy reports a
    dspy.LM's calls as LM calls and those of other BaseLMs (ours) as module calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self._started: dict[str, tuple[float, Any, Any]] = {}

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        history = getattr(instance, "history", None) or [None]
        self._started[call_id] = (time.perf_counter(), instance, history[-1])

    def on_lm_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        if call_id not in self._started:
            return
        started, lm, last_before = self._started.pop(call_id)
        history = getattr(lm, "history", None) or [None]
        if exception is None and history[-1] is not None and history[-1] is not last_before:
            self.calls.append(lm_call_of(history[-1], round((time.perf_counter() - started) * 1000, 3)))

    def on_module_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        if isinstance(instance, dspy.BaseLM):
            self.on_lm_start(call_id, instance, inputs)

    def on_module_end(self, call_id: str, outputs: Any, exception: Exception | None = None) -> None:
        self.on_lm_end(call_id, outputs, exception)


def lm_call_of(entry: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    """One dspy.BaseLM history entry → an LmCall, in full."""
    usage = entry.get("usage") or {}
    call = {
        "model": str(entry.get("model") or ""),
        "messages": messages_of(entry),
        "completion": completion_of(entry.get("outputs") or []),
        "promptTokens": int(usage.get("prompt_tokens") or 0),
        "completionTokens": int(usage.get("completion_tokens") or 0),
        "latencyMs": latency_ms,
    }
    cost = entry.get("cost")
    if isinstance(cost, (int, float)) and cost >= 0:
        call["cost"] = float(cost)
    return call


def messages_of(entry: dict[str, Any]) -> list[dict[str, str]]:
    messages = entry.get("messages") or [{"role": "user", "content": entry.get("prompt") or ""}]
    return [{"role": str(message.get("role", "")), "content": text_of(message)} for message in messages]


def completion_of(outputs: Sequence[Any]) -> str:
    """The first choice's text; a tool-calling answer without text: its tool calls as JSON."""
    if not outputs:
        return ""
    first = outputs[0]
    if not isinstance(first, dict):
        return str(first)
    if first.get("text"):
        return str(first["text"])
    return json.dumps(first["tool_calls"], default=str) if first.get("tool_calls") else ""


def recorded(calls: Sequence[dict[str, Any]], mode: str = "full", budget: int = STEP_BUDGET) -> list[dict[str, Any]]:
    """The calls as the step's result carries them: masked, cut to size, or usage only."""
    if mode == "usage":
        return [usage_only(call) for call in calls]
    secrets = secret_values()
    masked = [with_texts(call, lambda text: redact(text, secrets)) for call in calls]
    for limit in (TEXT_LIMIT, TEXT_LIMIT // 4, TEXT_LIMIT // 16):
        cut = [with_texts(call, lambda text, limit=limit: truncated(text, limit)) for call in masked]
        if json_size(cut) <= budget:
            return cut
    return within_budget(cut, budget)


def usage_only(call: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in call.items() if key not in TEXT_FIELDS}


def with_texts(call: dict[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    if "messages" not in call:
        return call
    messages = [{**message, "content": change(message["content"])} for message in call["messages"]]
    return {**call, "messages": messages, "completion": change(call["completion"])}


def truncated(text: str, limit: int = TEXT_LIMIT) -> str:
    """The first and last limit/2 characters around a marker saying how many were cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… dspex cut {len(text) - 2 * half} of {len(text)} characters …]\n{text[-half:]}"


def within_budget(calls: Sequence[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The leading calls whole while they fit, the rest with usage only."""
    bare = [usage_only(call) for call in calls]
    room = budget - json_size(bare)
    for index, call in enumerate(calls):
        room -= json_size(call) - json_size(bare[index])
        if room < 0:
            return [*calls[:index], *bare[index:]]
    return list(calls)


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
