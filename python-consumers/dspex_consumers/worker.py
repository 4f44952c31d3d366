"""One step command in, its result events out: what both transports do with a StepDispatched envelope."""

from typing import Any

from .executor.errors import StepError
from .executor.run import StepOutcome
from .wire.codec import wire_problem
from .wire.events import step_ref, step_result_event


def started_event(dispatched: dict[str, Any], worker: str) -> dict[str, Any]:
    return step_result_event(dispatched, "StepStarted", step_ref(dispatched["data"], worker))


def result_event(dispatched: dict[str, Any], outcome: StepOutcome, worker: str) -> dict[str, Any]:
    ref = step_ref(dispatched["data"], worker)
    if outcome.error is not None:
        data = {**ref, "error": outcome.error.to_wire(), "latencyMs": outcome.latency_ms}
        return step_result_event(dispatched, "StepFailed", data)
    data = {**ref, "outputs": outcome.outputs, "usage": outcome.usage, "latencyMs": outcome.latency_ms, "trace": outcome.trace}
    completed = step_result_event(dispatched, "StepCompleted", data)
    problem = wire_problem(completed)
    if problem is None:
        return completed
    # An answer too big (or too deep) for the log fails the step instead of the consumer.
    error = StepError("invalid_output", f"the step's result {problem}", retryable=False)
    return step_result_event(dispatched, "StepFailed", {**ref, "error": error.to_wire(), "latencyMs": outcome.latency_ms})
