"""execute_step: one StepDispatched `data` → the outputs, usage, latency and trace, or a classified error."""

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dspy
from pydantic import PydanticUserError

from ..lms import lm_for
from ..lms.test_lm import Rule
from . import dspy_speedups
from .deadline import Overdue, StepThreads
from .errors import BadStep, InvalidOutput, StepError, StepTimeout, classify
from .jsonsafe import to_json
from .lm_calls import LmCallRecorder, recorded
from .outputs import problems_in
from .retrieve import Retrieve
from .signature import build_signature, check_names
from .tools import ToolContext, tools_for

dspy_speedups.install()

# The wire's defaults (streams/events/steps.ts), for steps that were not parsed by zod.
STEP_DEFAULTS: dict[str, Any] = {"demos": [], "tools": [], "maxIters": 5, "variableVersions": {}}


@dataclass(frozen=True)
class ExecutorSettings:
    """What the consumer (not the step) decides: test-LM rules, registered corpora, the user's tools."""

    test_answers: Sequence[Rule] = ()
    corpora: Mapping[str, Sequence[str]] = field(default_factory=dict)
    tools: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    lm_calls: str = "full"  # what each LM call records: "full" (prompt and completion) or "usage" (lm_calls.py)


@dataclass(frozen=True)
class StepOutcome:
    latency_ms: float
    outputs: dict[str, Any] | None = None
    usage: dict[str, int] = field(default_factory=lambda: {"calls": 0, "promptTokens": 0, "completionTokens": 0})
    trace: list[dict[str, Any]] = field(default_factory=list)
    error: StepError | None = None
    lm_calls: list[dict[str, Any]] = field(default_factory=list)  # the wire's LmCall, each as recorded

    @property
    def ok(self) -> bool:
        return self.error is None


def build_module(step: dict[str, Any], signature: type[dspy.Signature], settings: ExecutorSettings) -> dspy.Module:
    match step["module"]:
        case "Predict":
            return dspy.Predict(signature)
        case "ChainOfThought":
            return dspy.ChainOfThought(signature)
        case "ReAct":
            tools = tools_for(step["tools"], ToolContext(step["inputs"], settings.corpora), settings.tools)
            return dspy.ReAct(signature, tools=tools, max_iters=step["maxIters"])
        case "Retrieve":
            if "retrieve" not in step:
                raise BadStep("a Retrieve step needs its `retrieve` settings (passages or corpus, embedder, k)")
            return Retrieve(signature, step["retrieve"], settings.corpora)
    raise BadStep(f"unknown module {step['module']!r}")


def apply_demos(module: dspy.Module, demos: Sequence[Mapping[str, Any]], signature: type[dspy.Signature]) -> None:
    """Demos go to every predictor that answers the step's own output fields (ReAct: its extractor)."""
    if not demos:
        return
    examples = [dspy.Example(**demo).with_inputs(*[k for k in demo if k in signature.input_fields]) for demo in demos]
    wanted = set(signature.output_fields)
    for _, predictor in module.named_predictors():
        if wanted <= set(predictor.signature.output_fields):
            predictor.demos = list(examples)


def trace_of(raw: Sequence[tuple[Any, dict[str, Any], Any]], module: dspy.Module) -> list[dict[str, Any]]:
    names = {id(predictor): name for name, predictor in module.named_predictors()}
    return [
        {"predictor": names.get(id(predictor), type(predictor).__name__), "inputs": to_json(inputs), "outputs": to_json(outputs)}
        for predictor, inputs, outputs in raw
    ]


def usage_of(history: Sequence[dict[str, Any]]) -> dict[str, int]:
    def total(key: str) -> int:
        return sum(int((entry.get("usage") or {}).get(key) or 0) for entry in history)

    return {"calls": len(history), "promptTokens": total("prompt_tokens"), "completionTokens": total("completion_tokens")}


def _with_defaults(step: dict[str, Any]) -> dict[str, Any]:
    return {**STEP_DEFAULTS, **step}


def _inputs_for(step: dict[str, Any], signature: type[dspy.Signature]) -> dict[str, Any]:
    fields = {f["name"]: f for f in step["signature"]["inputs"]}
    inputs = {}
    for name in signature.input_fields:
        spec = fields[name]
        if name in step["inputs"] and step["inputs"][name] is not None:
            inputs[name] = step["inputs"][name]
        elif "default" in spec:
            inputs[name] = spec["default"]
        elif spec.get("optional", False):
            inputs[name] = None
        else:
            raise BadStep(f"input {name!r} is required")
    return inputs


class StepRun:
    """One step's execution: run where the caller says, its outcome never raising; what a timeout reports."""

    def __init__(self, step: dict[str, Any], settings: ExecutorSettings):
        self.started = time.perf_counter()
        self.step = _with_defaults(step)
        self.settings = settings
        self.timeout_s = self.step["timeoutMs"] / 1000
        self.deadline = time.monotonic() + self.timeout_s
        self.history: list[dict[str, Any]] = []
        self.recorder = LmCallRecorder()

    def here(self) -> StepOutcome:
        """Runs the step on the calling thread, whatever its deadline (the caller watches it)."""
        try:
            outputs, trace = _run(self.step, self.settings, self.history, self.recorder, self.timeout_s)
            return self._outcome(outputs=outputs, trace=trace)
        except Exception as error:
            return self.failed(error)

    def timed_out(self, why: str = "") -> StepOutcome:
        """The answer for a step past its deadline: the LM calls made until now count."""
        detail = f" ({why})" if why else ""
        return self.failed(StepTimeout(f"step {self.step['stepId']} ran past its {self.step['timeoutMs']} ms{detail}"))

    def failed(self, error: Exception) -> StepOutcome:
        deterministic = float(self.step.get("lm", {}).get("temperature", 0)) == 0
        return self._outcome(error=classify(error, deterministic))

    def _outcome(self, **result: Any) -> StepOutcome:
        calls = recorded(list(self.recorder.calls), self.settings.lm_calls)
        return StepOutcome(_ms_since(self.started), usage=usage_of(self.history), lm_calls=calls, **result)


# Steps run on reused threads: starting a thread per step cost tens of ms on a loaded machine
# (bench/peers.ts). A step past its deadline keeps its thread; the next steps run on others.
_STEP_THREADS = StepThreads()


def execute_step(step: dict[str, Any], settings: ExecutorSettings = ExecutorSettings()) -> StepOutcome:
    """Runs the step on a step thread, never raising: every failure (a timeout too) becomes a classified StepError."""
    run = StepRun(step, settings)
    try:
        return _STEP_THREADS.run(run.here, run.timeout_s)
    except Overdue as error:
        return run.timed_out(str(error))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


_SIGNATURE_LOCK = threading.Lock()  # pydantic model creation in dspy.Signature is not reentrant-safe
_SIGNATURES: dict[str, type[dspy.Signature]] = {}  # by spec: building one costs ~1 ms of CPU per step


def _signature_of(spec: dict[str, Any]) -> type[dspy.Signature]:
    key = json.dumps(spec, sort_keys=True)
    with _SIGNATURE_LOCK:
        if key not in _SIGNATURES:
            if len(_SIGNATURES) >= 1024:
                _SIGNATURES.clear()
            _SIGNATURES[key] = build_signature(spec)
        return _SIGNATURES[key]


def _run(step: dict[str, Any], settings: ExecutorSettings, history: list[dict[str, Any]], recorder: LmCallRecorder, timeout_s: float):
    check_names(step)
    try:
        signature = _signature_of(step["signature"])
    except (ValueError, TypeError, KeyError, PydanticUserError) as error:
        raise BadStep(f"bad signature: {error}") from error
    module = build_module(step, signature, settings)
    apply_demos(module, step["demos"], signature)
    inputs = _inputs_for(step, signature)
    choice = lm_for(step["lm"], settings.test_answers, timeout_s)
    choice.lm.callbacks = [*getattr(choice.lm, "callbacks", []), recorder]  # the LM's own: its calls alone
    context: dict[str, Any] = {"lm": choice.lm, "trace": []}
    if choice.adapter is not None:
        context["adapter"] = choice.adapter
    try:
        with dspy.context(**context):
            prediction = module(**inputs)
            raw_trace = list(dspy.settings.trace)
    finally:
        history.extend(choice.lm.history)
    outputs = {name: to_json(prediction.get(name)) for name in signature.output_fields}
    problems = problems_in(outputs, step["signature"]["outputs"])
    if problems:
        raise InvalidOutput("; ".join(problems))
    return outputs, trace_of(raw_trace, module)
