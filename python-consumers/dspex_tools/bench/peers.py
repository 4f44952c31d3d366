"""The plain-DSPy side of `npm run bench -- peers`: the same program and examples, run by `dspy.Evaluate`.

    python -m dspex_tools.bench.peers --examples examples.jsonl --answers rules.json \\
        --threads 4 --latency-ms 200 [--outputs]
    python -m dspex_tools.bench.peers --examples ... --answers ... --serve

`examples.jsonl` is the dataset format of `dspex evaluate` (`{"id", "inputs": {...}, "expected": {...}}` a
line); `rules.json` are the test LM's rules (`dspex/test`, the same file the dspex workers get through
`--test-answers`). The program is one `dspy.Predict` of `question -> answer` with the same instructions as
the dspex program; the metric is DSPy's `answer_exact_match` (SQuAD normalization, like dspex's
`exact_match`). One untimed warm-up call first (the dspex workers are warm too), then the timed
`Evaluate(num_threads=N)`. Prints one JSON object on stdout: wall and CPU seconds of the evaluation, the
score (0..1), the LM calls, and with `--outputs` each example's answer. With `--serve` it stays up (DSPy
imports once) and runs one evaluation per JSON line on stdin (`{"threads": N, "latency_ms": L,
"outputs": bool}`), answering each with that object on a line of stdout. With `--dspy-speedups` DSPy runs
with the two faster helpers the dspex workers install (dspex_consumers/executor/dspy_speedups.py): DSPy as
cheap per step as in a dspex worker, so that dspex's wall against it is what orchestration costs.
"""

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network look-up at import

import dspy

from dspex_consumers.lms.test_lm import TestLM, load_answers

INSTRUCTIONS = "Answer the question."


def read_examples(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def devset_of(rows: list[dict[str, Any]]) -> list[dspy.Example]:
    return [
        dspy.Example(id=row["id"], **row["inputs"], **row["expected"]).with_inputs(*row["inputs"].keys())
        for row in rows
    ]


def program() -> dspy.Module:
    return dspy.Predict(dspy.Signature("question -> answer", INSTRUCTIONS))


def metric(example: dspy.Example, prediction: dspy.Prediction, trace: Any = None) -> float:
    return 1.0 if dspy.evaluate.answer_exact_match(example, prediction) else 0.0


def run(examples: str | Path, answers: str | Path, threads: int, latency_ms: float, outputs: bool = False) -> dict[str, Any]:
    devset = devset_of(read_examples(examples))
    lm = TestLM(answers=load_answers(answers), latency_ms=latency_ms, model=f"dspex/test?latency_ms={latency_ms:g}")
    dspy.configure(lm=lm)
    qa = program()
    qa(question="warm-up: not one of the examples")
    lm.history.clear()
    evaluate = dspy.Evaluate(devset=devset, metric=metric, num_threads=threads, display_progress=False, max_errors=len(devset))
    cpu, wall = time.process_time(), time.perf_counter()
    result = evaluate(qa)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    report: dict[str, Any] = {
        "examples": len(devset),
        "threads": threads,
        "latency_ms": latency_ms,
        "wall_s": wall,
        "cpu_s": cpu,
        "score": result.score / 100,
        "lm_calls": len(lm.history),
    }
    if outputs:
        report["outputs"] = {example.id: prediction.get("answer") for example, prediction, _ in result.results}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dspex_tools.bench.peers", description=__doc__)
    parser.add_argument("--examples", required=True, help="JSONL: {id, inputs, expected} a line")
    parser.add_argument("--answers", required=True, help="the test LM's rules (JSON)")
    parser.add_argument("--threads", type=int, default=4, help="Evaluate(num_threads=N)")
    parser.add_argument("--latency-ms", type=float, default=0, help="the test LM sleeps this long per call")
    parser.add_argument("--outputs", action="store_true", help="include each example's answer")
    parser.add_argument("--serve", action="store_true", help="one evaluation per JSON line on stdin")
    parser.add_argument(
        "--dspy-speedups", action="store_true", help="run DSPy with the dspex worker's faster helpers (dspy_speedups.py)"
    )
    args = parser.parse_args(argv)
    for noisy in ("LiteLLM", "litellm", "httpx", "dspy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.dspy_speedups:
        from dspex_consumers.executor import dspy_speedups

        dspy_speedups.install()
    if not args.serve:
        report = run(args.examples, args.answers, args.threads, args.latency_ms, args.outputs)
        sys.stdout.write(json.dumps(report) + "\n")
        return 0
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        threads = int(request.get("threads", args.threads))
        latency_ms = float(request.get("latency_ms", args.latency_ms))
        report = run(args.examples, args.answers, threads, latency_ms, bool(request.get("outputs", args.outputs)))
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
