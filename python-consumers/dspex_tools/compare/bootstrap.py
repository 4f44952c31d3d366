"""DSPy's own BootstrapFewShot on a dspex task, with its LM calls counted: the reference dspex's bootstrap is compared with.

    python -m dspex_tools.compare.bootstrap --task task.json     (or the task on stdin)

The task is what dspex optimizes, as JSON (bench/optimizers.ts and the comparison test write it from the
label task):

    {"signature": <SignatureSpec>, "module": "Predict", "lm": {"model": ..., "temperature": 0, "maxTokens": 512},
     "testAnswers": [<test-LM rules>], "trainset": [<Example>], "devset": [<Example>],
     "metric": {"name": "exact_match", "field": "answer"},
     "params": {"maxBootstrappedDemos": 4, "maxLabeledDemos": 16, "maxRounds": 1, "metricThreshold": 1}}

The program is one DSPy predictor with that signature, built by the same code as the workers' (so the
prompts are the same), and the LM is the workers' LM for that model (`dspex/test?mode=demo_gated` with the
rules: the very same test LM). It prints one JSON object on stdout, counted the way dspex counts an
optimization: the baseline on the devset, the compile, and the compiled program on the devset.
"""

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import dspy

from dspex_consumers.executor.signature import build_signature
from dspex_consumers.lms import lm_for
from dspex_consumers.lms.test_lm import rules_of

from .metrics import METRICS


class CallCounter:
    """Counts the LM's calls, its copies' included (BootstrapFewShot's later rounds run on a copy)."""

    def __init__(self, lm: dspy.BaseLM) -> None:
        self.calls = 0
        counter = self
        base = type(lm)

        class Counted(base):  # type: ignore[misc, valid-type]
            def forward(self, *args: Any, **kwargs: Any) -> Any:
                counter.calls += 1
                return super().forward(*args, **kwargs)

            async def aforward(self, *args: Any, **kwargs: Any) -> Any:
                counter.calls += 1
                return await super().aforward(*args, **kwargs)

        Counted.__name__ = base.__name__
        lm.__class__ = Counted


def examples_of(items: list[dict[str, Any]]) -> list[dspy.Example]:
    return [dspy.Example(**item["inputs"], **item.get("expected", {})).with_inputs(*item["inputs"]) for item in items]


def metric_of(task: dict[str, Any], outputs: list[str]):
    ref = task.get("metric", {"name": "exact_match"})
    score = METRICS.get(ref["name"])
    if score is None:
        raise SystemExit(f"metric {ref['name']!r} is not ported to Python (known: {', '.join(METRICS)})")
    field = ref.get("field")

    def metric(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
        predicted = {name: prediction.get(name) for name in outputs} if prediction is not None else {}
        return score(predicted, example.labels().toDict(), field)

    return metric


def evaluate(program: dspy.Module, devset: list[dspy.Example], metric, failure_score: float) -> float:
    """The mean over every example, a failed one at the failure score (as dspex's evaluation does)."""
    total = 0.0
    for example in devset:
        try:
            total += metric(example, program(**example.inputs()))
        except Exception:
            total += failure_score
    return total / len(devset) if devset else 0.0


def run(task: dict[str, Any]) -> dict[str, Any]:
    params = task.get("params", {})
    signature = build_signature(task["signature"])
    if task.get("module", "Predict") != "Predict":
        raise SystemExit("the comparison runs a single dspy.Predict")
    outputs = list(signature.output_fields)
    choice = lm_for(task["lm"], rules_of(task.get("testAnswers")))
    trainset, devset = examples_of(task["trainset"]), examples_of(task["devset"])
    metric = metric_of(task, outputs)
    failure_score = float(task.get("failureScore", 0))
    counter = CallCounter(choice.lm)
    settings: dict[str, Any] = {"lm": choice.lm}
    if choice.adapter is not None:
        settings["adapter"] = choice.adapter
    threshold = params.get("metricThreshold")
    optimizer = dspy.BootstrapFewShot(
        metric=metric,
        metric_threshold=threshold,
        max_bootstrapped_demos=int(params.get("maxBootstrappedDemos", 4)),
        max_labeled_demos=int(params.get("maxLabeledDemos", 16)),
        max_rounds=int(params.get("maxRounds", 1)),
    )
    started = time.perf_counter()
    with dspy.context(**settings):
        student = dspy.Predict(signature)
        baseline = evaluate(student, devset, metric, failure_score)
        baseline_calls = counter.calls
        with contextlib.redirect_stdout(sys.stderr):  # BootstrapFewShot prints; stdout is the result
            compiled = optimizer.compile(student, trainset=trainset)
        compile_calls = counter.calls - baseline_calls
        score = evaluate(compiled, devset, metric, failure_score)
    final_calls = counter.calls - baseline_calls - compile_calls
    demos = [
        {name: demo.get(name) for name in [*signature.input_fields, *signature.output_fields] if name in demo}
        for demo in compiled.demos
    ]
    return {
        "optimizer": "dspy.BootstrapFewShot",
        "dspyVersion": dspy.__version__,
        "baselineScore": baseline,
        "devScore": score,
        "calls": {"baseline": baseline_calls, "compile": compile_calls, "final": final_calls, "total": counter.calls},
        "bootstrapped": len(optimizer.name2traces.get("self", [])) if hasattr(optimizer, "name2traces") else None,
        "demos": demos,
        "wallMs": round((time.perf_counter() - started) * 1000, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dspex_tools.compare.bootstrap", description=__doc__.split("\n")[0])
    parser.add_argument("--task", help="the task as JSON (default: read from stdin)")
    args = parser.parse_args(argv)
    text = Path(args.task).read_text(encoding="utf-8") if args.task else sys.stdin.read()
    print(json.dumps(run(json.loads(text))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
