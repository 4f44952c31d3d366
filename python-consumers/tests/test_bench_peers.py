"""The plain-DSPy side of the peer benchmark runs as a script and scores what the test LM's rules say."""

import json
import subprocess
import sys

from dspex_tools.bench.peers import run

QUESTIONS = {f"ex-{i}": f"Which code word belongs to item {i:04d}?" for i in range(5)}
ANSWERS = {f"ex-{i}": f"code {i * 11:05d}" for i in range(5)}


def write_dataset(folder, answered: int):
    """Five examples; the test LM has rules for the first `answered`, the others get hash-derived answers."""
    examples = folder / "examples.jsonl"
    examples.write_text(
        "".join(
            json.dumps({"id": key, "inputs": {"question": QUESTIONS[key]}, "expected": {"answer": ANSWERS[key]}}) + "\n"
            for key in QUESTIONS
        )
    )
    rules = folder / "rules.json"
    rules.write_text(json.dumps({f"item {i:04d}?": {"answer": ANSWERS[f"ex-{i}"]} for i in range(answered)}))
    return examples, rules


def test_scores_the_examples_the_rules_answer(tmp_path):
    examples, rules = write_dataset(tmp_path, answered=4)
    report = run(examples, rules, threads=2, latency_ms=0, outputs=True)
    assert report["examples"] == 5
    assert report["score"] == 0.8
    assert report["lm_calls"] == 5
    assert {key: report["outputs"][key] for key in list(QUESTIONS)[:4]} == {key: ANSWERS[key] for key in list(QUESTIONS)[:4]}
    assert report["outputs"]["ex-4"] != ANSWERS["ex-4"]


def test_serve_mode_answers_one_evaluation_per_line(tmp_path):
    examples, rules = write_dataset(tmp_path, answered=5)
    requests = "".join(json.dumps(r) + "\n" for r in [{"threads": 1, "latency_ms": 0}, {"threads": 3, "latency_ms": 20}])
    done = subprocess.run(
        [sys.executable, "-m", "dspex_tools.bench.peers", "--examples", str(examples), "--answers", str(rules), "--serve"],
        input=requests, capture_output=True, text=True, timeout=300, check=True,
    )
    ready, first, second = [json.loads(line) for line in done.stdout.splitlines()]
    assert ready == {"ready": True}
    assert (first["threads"], first["score"], second["threads"], second["score"]) == (1, 1.0, 3, 1.0)
    assert second["wall_s"] >= 0.02 * 2  # 5 calls of 20 ms on 3 threads: at least two rounds of calls
    assert "outputs" not in first
