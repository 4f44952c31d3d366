"""The DSPy side of `npm run bench -- learning`: DSPy's own optimizers on the main job's triage task.

    python -m dspex_tools.bench.learning --task task.json [--only BootstrapFewShot,SIMBA]

`task.json` is written by bench/learning.ts: the model id, the classify stage's signature (the wire's
SignatureSpec, as the dspex workers get it), the train/dev/test splits (`{id, inputs, expected}`), the
number of threads, and per optimizer the keyword arguments it is built with. The program is one
`dspy.Predict` of that signature; the LM and adapter are the workers' own (`lm_for`, the same call a
worker makes for a step: `dspex/offline` with `dspy.JSONAdapter`, or the test LM), at temperature 0.
The metric is exact match on `category` after SQuAD normalization, like dspex's `exact_match`.

First the zero-shot program is scored on dev and test (it loads the model, and it should equal dspex's
baseline: the same prompt to the same LM); then each optimizer compiles a fresh program — BootstrapFewShot
on the trainset, BootstrapFewShotWithRandomSearch on the trainset picking on the devset, SIMBA on the
trainset — and the compiled program is scored on dev and test. LM calls are every call the optimizer
made while compiling (every copy of the LM counts: SIMBA samples at other temperatures through copies),
and nothing of the dev/test scoring; wall time is the compile alone.

Each result is one JSON line on stdout; what DSPy prints goes to stderr.
"""

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network look-up at import

import dspy
from dspy.evaluate.metrics import normalize_text

from dspex_consumers.executor.signature import build_signature
from dspex_consumers.lms import lm_for

OUT = sys.stdout


class Calls:
    """Counts LM calls across every copy of the LM and every thread."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.count += 1


def counted(lm: dspy.BaseLM, calls: Calls) -> dspy.BaseLM:
    """The same LM, its class extended to count each forward (copies are deep copies: they count too)."""
    base = type(lm)

    def forward(self, *args: Any, **kwargs: Any):
        calls.add()
        return base.forward(self, *args, **kwargs)

    lm.__class__ = type(f"Counted{base.__name__}", (base,), {"forward": forward})
    return lm


def examples(rows: list[dict[str, Any]]) -> list[dspy.Example]:
    return [dspy.Example(**row["inputs"], **row["expected"]).with_inputs(*row["inputs"]) for row in rows]


def exact_category(example: dspy.Example, prediction: Any, trace: Any = None) -> float:
    """1.0 when the predicted category equals the expected one after SQuAD normalization, like dspex's exact_match."""
    got = prediction.get("category") if prediction is not None else None
    return float(normalize_text(str(got if got is not None else "")) == normalize_text(str(example.category)))


def score(program: dspy.Module, data: list[dspy.Example], threads: int) -> float:
    evaluate = dspy.Evaluate(
        devset=data, metric=exact_category, num_threads=threads, display_progress=False, max_errors=len(data) + 1
    )
    result = evaluate(program)
    # Evaluate's `score` is a percentage rounded to 2 decimals: the mean of the per-example scores is exact.
    return sum(float(s) for _, _, s in result.results) / len(data)


def demos_of(program: dspy.Module) -> list[dict[str, Any]]:
    return [{"message": d.get("message"), "category": d.get("category")} for p in program.predictors() for d in p.demos]


def compile_with(name: str, kwargs: dict[str, Any], student: dspy.Module, sets: dict[str, list[dspy.Example]]) -> dspy.Module:
    match name:
        case "BootstrapFewShot":
            return dspy.BootstrapFewShot(metric=exact_category, **kwargs).compile(student, trainset=sets["train"])
        case "BootstrapFewShotWithRandomSearch":
            return dspy.BootstrapFewShotWithRandomSearch(metric=exact_category, **kwargs).compile(
                student, trainset=sets["train"], valset=sets["dev"]
            )
        case "SIMBA":
            options = dict(kwargs)
            seed = int(options.pop("seed", 0))
            return dspy.SIMBA(metric=exact_category, **options).compile(student, trainset=sets["train"], seed=seed)
    raise ValueError(f"unknown optimizer {name!r}")


def emit(record: dict[str, Any]) -> None:
    OUT.write(json.dumps(record) + "\n")
    OUT.flush()


def run(task: dict[str, Any], only: list[str] | None) -> None:
    sets = {split: examples(task[f"{split}set"]) for split in ("train", "dev", "test")}
    threads = int(task.get("threads", 4))
    calls = Calls()
    choice = lm_for({"model": task["model"], "temperature": 0, "maxTokens": int(task.get("maxTokens", 512))})
    lm = counted(choice.lm, calls)
    context: dict[str, Any] = {"lm": lm}
    if choice.adapter is not None:
        context["adapter"] = choice.adapter
    signature = build_signature(task["signature"])

    with dspy.context(**context):
        started = time.perf_counter()
        zero = dspy.Predict(signature)
        emit(
            {
                "name": "zero-shot",
                "dev": score(zero, sets["dev"], threads),
                "test": score(zero, sets["test"], threads),
                "seconds": time.perf_counter() - started,
            }
        )
        for name, kwargs in task["optimizers"].items():
            if only and name not in only:
                continue
            student = dspy.Predict(signature)
            calls.count = 0
            started = time.perf_counter()
            compiled = compile_with(name, kwargs, student, sets)
            wall = time.perf_counter() - started
            used = calls.count
            emit(
                {
                    "name": name,
                    "params": kwargs,
                    "lm_calls": used,
                    "wall_s": wall,
                    "dev": score(compiled, sets["dev"], threads),
                    "test": score(compiled, sets["test"], threads),
                    "demos": demos_of(compiled),
                    "instructions": compiled.predictors()[0].signature.instructions,
                }
            )


def main(argv: list[str] | None = None) -> int:
    global OUT
    parser = argparse.ArgumentParser(prog="python -m dspex_tools.bench.learning", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, help="the task JSON bench/learning.ts writes")
    parser.add_argument("--only", help="comma-separated optimizer names (default: every one in the task)")
    args = parser.parse_args(argv)
    for noisy in ("LiteLLM", "litellm", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    task = json.loads(Path(args.task).read_text())
    only = [name for name in args.only.split(",") if name] if args.only else None
    # DSPy prints its progress (BootstrapFewShotWithRandomSearch's scores) on stdout: results keep stdout.
    OUT = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        run(task, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
