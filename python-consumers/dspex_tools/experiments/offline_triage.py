"""How much the offline model learns from demos on the main job's triage task, run by DSPy directly.

    python -m dspex_tools.experiments.offline_triage [--gguf PATH --label NAME] [--raw] [--parts ...]

The data and the classify/draft signatures are read from the TypeScript demo (cli/demo/dataset.ts and
triage.ts, exported with `npx tsx`), so they are exactly what the main job runs. The LM and adapter are
the workers' (`lm_for({"model": "dspex/offline"})`); `--gguf` points it at another model file and
`--raw` turns off the calibration of label scores. Everything runs at temperature 0, one call at a time.

Parts (all by default):
- zero:      zero-shot accuracy on dev and test, and the latency of one classify call;
- random:    k random train demos (several draws per k): accuracy on the rest of train, dev and test;
             then whether the set that was best on train (or dev, or both pooled) is also good on test;
- bootstrap: DSPy's BootstrapFewShot (4 bootstrapped + 4 labeled demos, walking the trainset in order)
             and BootstrapFewShotWithRandomSearch (picking on dev): their test accuracy;
- draft:     the latency of the ungraded draft stage (a free-text reply of at most 48 tokens).
It prints tables and, with --json PATH, writes every figure.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import dspy

from dspex_consumers.executor.signature import build_signature
from dspex_consumers.lms import lm_for

REPO = Path(__file__).resolve().parents[3]

_EXPORT = """
const [d, t] = await Promise.all([import("./cli/demo/dataset.ts"), import("./cli/demo/triage.ts")]);
const { stages } = t.triageProgram("dspex/offline").build();
console.log(JSON.stringify({ trainset: d.trainset, devset: d.devset, testset: d.testset, stages }));
"""


def load_task() -> dict[str, Any]:
    """The demo's data and stages, as the TypeScript side declares them."""
    script = f"(async () => {{ {_EXPORT} }})()"
    out = subprocess.run(["npx", "tsx", "-e", script], cwd=REPO, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def stage(task: dict[str, Any], stage_id: str) -> dict[str, Any]:
    return next(s for s in task["stages"] if s["id"] == stage_id)


def examples(items: list[dict[str, Any]]) -> list[dspy.Example]:
    return [dspy.Example(**item["inputs"], **item["expected"]).with_inputs(*item["inputs"]) for item in items]


def exact(example: dspy.Example, prediction: Any, trace: Any = None) -> bool:
    return prediction.category == example.category


class Runner:
    """One LM and adapter; runs a program over examples and keeps every call's latency."""

    def __init__(self, max_tokens: int = 64):
        choice = lm_for({"model": "dspex/offline", "temperature": 0, "maxTokens": max_tokens})
        self.lm, self.adapter = choice.lm, choice.adapter
        self.seconds: list[float] = []

    def context(self):
        return dspy.context(lm=self.lm, adapter=self.adapter)

    def accuracy(self, program: dspy.Module, data: list[dspy.Example]) -> float:
        hits = 0
        with self.context():
            for example in data:
                started = time.perf_counter()
                prediction = program(**example.inputs())
                self.seconds.append(time.perf_counter() - started)
                hits += exact(example, prediction)
        return hits / len(data)


def classifier(task: dict[str, Any], demos: list[dspy.Example]) -> dspy.Predict:
    program = dspy.Predict(build_signature(stage(task, "classify")["signature"]))
    program.demos = list(demos)
    return program


def zero_shot(runner: Runner, task: dict[str, Any], sets: dict[str, list[dspy.Example]]) -> dict[str, Any]:
    program = classifier(task, [])
    runner.accuracy(program, sets["dev"][:2])  # loads the model
    runner.seconds.clear()
    figures = {split: runner.accuracy(program, sets[split]) for split in ("dev", "test")}
    return {**figures, "latency": latency(runner.seconds)}


def random_demos(runner: Runner, task: dict[str, Any], sets: dict[str, list[dspy.Example]], ks: list[int], draws: int) -> dict[str, Any]:
    rng = random.Random(7)
    rows = []
    for k in ks:
        for draw in range(draws):
            demos = rng.sample(sets["train"], k)
            rest = [e for e in sets["train"] if e not in demos]
            program = classifier(task, demos)
            runner.seconds.clear()
            row = {"k": k, "draw": draw, "demos": [d.category for d in demos]}
            row.update({split: runner.accuracy(program, data) for split, data in (("train", rest), ("dev", sets["dev"]), ("test", sets["test"]))})
            pooled = len(rest) + len(sets["dev"])
            row["dev_and_train"] = (row["train"] * len(rest) + row["dev"] * len(sets["dev"])) / pooled
            row["latency"] = latency(runner.seconds)
            rows.append(row)
            print(f"  k={k} draw={draw} train={row['train']:.3f} dev={row['dev']:.3f} test={row['test']:.3f} "
                  f"p50={row['latency']['p50']:.3f}s demos={row['demos']}", flush=True)
    return {"rows": rows, "summary": [summary(k, [r for r in rows if r["k"] == k]) for k in ks]}


def summary(k: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    best_train = max(rows, key=lambda r: r["train"])
    best_dev = max(rows, key=lambda r: r["dev"])
    best_pooled = max(rows, key=lambda r: r["dev_and_train"])
    return {
        "k": k,
        "dev": spread([r["dev"] for r in rows]),
        "test": spread([r["test"] for r in rows]),
        "best_on_train": {"train": best_train["train"], "dev": best_train["dev"], "test": best_train["test"]},
        "best_on_dev": {"dev": best_dev["dev"], "test": best_dev["test"]},
        "best_on_dev_and_rest_of_train": {"dev": best_pooled["dev"], "test": best_pooled["test"]},
    }


def bootstrap(runner: Runner, task: dict[str, Any], sets: dict[str, list[dspy.Example]]) -> dict[str, Any]:
    results = {}
    with runner.context():
        simple = dspy.BootstrapFewShot(metric=exact, max_bootstrapped_demos=4, max_labeled_demos=4)
        compiled = simple.compile(classifier(task, []), trainset=sets["train"])
        searched = dspy.BootstrapFewShotWithRandomSearch(
            metric=exact, max_bootstrapped_demos=4, max_labeled_demos=4, num_candidate_programs=6, num_threads=1
        ).compile(classifier(task, []), trainset=sets["train"], valset=sets["dev"])
    for name, program in (("BootstrapFewShot", compiled), ("BootstrapFewShotWithRandomSearch", searched)):
        demos = [d.category for p in program.predictors() for d in p.demos]
        results[name] = {"demos": demos, "dev": runner.accuracy(program, sets["dev"]), "test": runner.accuracy(program, sets["test"])}
        print(f"  {name}: dev={results[name]['dev']:.3f} test={results[name]['test']:.3f} demos={demos}", flush=True)
    return results


def draft_latency(task: dict[str, Any], sets: dict[str, list[dspy.Example]], calls: int = 6) -> dict[str, Any]:
    spec = stage(task, "draft")
    max_tokens = next(v["initial"] for v in spec["variables"] if v["name"] == "maxTokens")
    runner = Runner(max_tokens=max_tokens)
    program = dspy.Predict(build_signature(spec["signature"]))
    corpus = stage(task, "faq")["config"]["corpus"]
    replies = []
    with runner.context():
        for example in sets["dev"][:calls]:
            started = time.perf_counter()
            reply = program(message=example.message, category=example.category, passages=corpus[:2]).reply
            runner.seconds.append(time.perf_counter() - started)
            replies.append(reply)
    return {"max_tokens": max_tokens, "latency": latency(runner.seconds), "replies": replies[:3]}


def latency(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {"p50": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))], "mean": statistics.fmean(ordered)}


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "mean": statistics.fmean(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gguf", help="another GGUF model file (sets DSPEX_OFFLINE_MODEL)")
    parser.add_argument("--label", default="gemma-3-270m")
    parser.add_argument("--raw", action="store_true", help="score labels without the empty-input prior")
    parser.add_argument("--parts", default="zero,random,bootstrap,draft")
    parser.add_argument("--k", default="4,8")
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    if args.gguf:
        os.environ["DSPEX_OFFLINE_MODEL"] = args.gguf
    task = load_task()
    sets = {split: examples(task[f"{split}set"]) for split in ("train", "dev", "test")}
    runner = Runner()
    runner.lm.calibrate = not args.raw
    parts = args.parts.split(",")
    figures: dict[str, Any] = {"model": args.label, "calibrated": not args.raw, "sizes": {k: len(v) for k, v in sets.items()}}
    print(f"{args.label} ({'raw scores' if args.raw else 'calibrated'}): {figures['sizes']}", flush=True)
    if "zero" in parts:
        figures["zero"] = zero_shot(runner, task, sets)
        print(f"zero-shot: {figures['zero']}", flush=True)
    if "random" in parts:
        figures["random"] = random_demos(runner, task, sets, [int(k) for k in args.k.split(",")], args.draws)
        for row in figures["random"]["summary"]:
            print(f"random demos: {row}", flush=True)
    if "bootstrap" in parts:
        figures["bootstrap"] = bootstrap(runner, task, sets)
    if "draft" in parts:
        figures["draft"] = draft_latency(task, sets)
        print(f"draft: {figures['draft']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
