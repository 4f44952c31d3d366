"""DSPy's BootstrapFewShot on a dspex task (dspex_tools.compare.bootstrap): scores and LM calls counted per phase."""

import json

import pytest

from dspex_tools.compare.bootstrap import main, run
from dspex_tools.compare.metrics import exact_match, normalize_text

LABELS = ["amber", "birch", "cedar"]


def code(label: str) -> str:
    return f"{label[:2].upper()}-{len(label) * 7 + ord(label[0])}"


def examples(prefix: str, count: int) -> list[dict]:
    return [
        {"id": f"{prefix}-{i}", "inputs": {"label": LABELS[i % 3], "question": f"What is the code of {LABELS[i % 3]} #{i}?"},
         "expected": {"answer": code(LABELS[i % 3])}}
        for i in range(count)
    ]


TASK = {
    "signature": {
        "instructions": "Answer with the code of the label.",
        "inputs": [{"name": "label", "type": "str"}, {"name": "question", "type": "str"}],
        "outputs": [{"name": "answer", "type": "str"}],
    },
    "module": "Predict",
    "lm": {"model": "dspex/test?mode=demo_gated", "temperature": 0, "maxTokens": 256},
    "testAnswers": [{"when": f"[[ ## label ## ]]\n{label}\n\n[[ ## question ## ]]", "then": {"answer": code(label)}} for label in LABELS],
    "trainset": examples("train", 9),
    "devset": examples("dev", 6),
    "metric": {"name": "exact_match", "field": "answer"},
    "params": {"maxBootstrappedDemos": 2, "maxLabeledDemos": 2, "maxRounds": 1},
}


def test_bootstrap_raises_the_dev_score_and_counts_every_call():
    result = run(TASK)
    assert result["baselineScore"] == 0.0
    assert result["devScore"] > 0.0
    calls = result["calls"]
    assert calls["baseline"] == calls["final"] == 6
    assert 2 <= calls["compile"] <= 9
    assert calls["total"] == calls["baseline"] + calls["compile"] + calls["final"]
    assert len(result["demos"]) == 2
    assert all(demo["answer"] == code(demo["label"]) for demo in result["demos"])


def test_later_rounds_run_on_a_copy_whose_calls_count_too():
    lone = {**TASK, "trainset": examples("train", 9)[:1], "params": {"maxBootstrappedDemos": 1, "maxLabeledDemos": 1, "maxRounds": 3}}
    result = run(lone)
    # One example, no other labeled demo: round 0 fails, rounds 1 and 2 sample at temperature 1.0 on a copy.
    assert result["calls"]["compile"] >= 2


def test_the_module_prints_json_and_refuses_an_unported_metric(tmp_path, capsys):
    task = tmp_path / "task.json"
    task.write_text(json.dumps({**TASK, "devset": TASK["devset"][:1]}))
    assert main(["--task", str(task)]) == 0
    assert json.loads(capsys.readouterr().out)["optimizer"] == "dspy.BootstrapFewShot"
    with pytest.raises(SystemExit, match="not ported"):
        run({**TASK, "metric": {"name": "f1"}})


def test_exact_match_normalizes_as_dspex_does():
    assert normalize_text("  The Code: AM-132! ") == "code am 132"
    assert exact_match({"answer": "am 132"}, {"answer": "AM-132"}) == 1.0
    assert exact_match({"answer": "not AM-132 (ab12)"}, {"answer": ["x", "AM-132"]}) == 0.0
