"""One step command in, its result events out: what both transports do with a StepDispatched envelope."""

from typing import Any

from .executor.errors import StepError
from .executor.lm_calls import usage_only
from .executor.run import StepOutcome
from .wire.codec import wire_problem
from .wire.events import step_ref, step_result_event


def started_event(dispatched: dict[str, Any], worker: str) -> dict[str, Any]:
    return step_result_event(dispatched, "StepStarted", step_ref(dispatched["data"], worker))


def result_event(dispatched: dict[str, Any], outcome: StepOutcome, worker: str) -> dict[str, Any]:
    ref = step_ref(dispatched["data"], worker)
    if outcome.error is not None:
        return _failed(dispatched, ref, outcome.error, outcome, outcome.lm_calls)
    data = {**ref, "outputs": outcome.outputs, "usage": outcome.usage, "latencyMs": outcome.latency_ms, "trace": outcome.trace}
    calls = outcome.lm_calls
    completed = step_result_event(dispatched, "StepCompleted", {**data, "lmCalls": calls})
    problem = wire_problem(completed)
    if problem is not None and any("messages" in call for call in calls):
        # The answer itself may fit: the prompts and completions go first.
        calls = [usage_only(call) for call in calls]
        completed = step_result_event(dispatched, "StepCompleted", {**data, "lmCalls": calls})
        problem = wire_problem(completed)
    if problem is None:
        return completed
    # An answer too big (or too deep) for the log fails the step instead of the consumer.
    error = StepError("invalid_output", f"the step's result {problem}", retryable=False)
    return _failed(dispatched, ref, error, outcome, calls)


def _failed(dispatched: dict[str, Any], ref: dict[str, Any], error: StepError, outcome: StepOutcome, calls: list[dict[str, Any]]) -> dict[str, Any]:
    data = {**ref, "error": error.to_wire(), "latencyMs": outcome.latency_ms, "lmCalls": calls}
    return step_result_event(dispatched, "StepFailed", data)
