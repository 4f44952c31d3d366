"""The label task's test LM (demo_gated with one rule per label) answers the shared vectors; TypeScript's port checks the same file."""

import json

import dspy
from conftest import REPO

from dspex_consumers.executor.signature import build_signature
from dspex_consumers.lms.test_lm import TestLM

VECTORS = json.loads((REPO / "tests" / "unit" / "optimizers" / "label-task.vectors.json").read_text())


def answer(case: dict) -> str:
    overrides = case["overrides"]
    spec = {
        "instructions": overrides["instructions"],
        "inputs": [{"name": "label", "type": "str"}, {"name": "question", "type": "str"}],
        "outputs": [{"name": "answer", "type": "str"}],
    }
    predict = dspy.Predict(build_signature(spec))
    predict.demos = [dspy.Example(**demo).with_inputs("label", "question") for demo in overrides["demos"]]
    with dspy.context(lm=TestLM(answers=VECTORS["rules"], mode="demo_gated", temperature=overrides["temperature"])):
        return predict(**case["inputs"]).answer


def test_the_python_test_lm_answers_every_vector():
    assert [answer(case) for case in VECTORS["cases"]] == [case["answer"] for case in VECTORS["cases"]]


def test_a_copy_at_a_higher_temperature_guesses_as_bootstrap_rounds_do():
    spec = {"instructions": "", "inputs": [{"name": "label", "type": "str"}], "outputs": [{"name": "answer", "type": "str"}]}
    rules = [{"when": "[[ ## label ## ]]\namber", "then": {"answer": "AM-132"}}, {"when": "[[ ## label ## ]]\nbirch", "then": {"answer": "BI-103"}}]
    lm = TestLM(answers=rules, mode="demo_gated")
    with dspy.context(lm=lm):
        cold = dspy.Predict(build_signature(spec))(label="amber").answer
    with dspy.context(lm=lm.copy(rollout_id=1, temperature=1.0)):
        hot = dspy.Predict(build_signature(spec))(label="amber").answer
    assert cold.startswith("not AM-132")
    assert hot in ("AM-132", "BI-103")


def test_a_reflection_prompt_gets_a_rule_per_module():
    spec = {
        "instructions": "Offer feedback.",
        "inputs": [{"name": n, "type": "str"} for n in ("program_inputs", "oracle_metadata", "better_program_outputs", "better_reward_value")]
        + [{"name": "module_names", "type": "list[str]"}],
        "outputs": [{"name": "discussion", "type": "str"}, {"name": "module_advice", "type": "dict[str, str]"}],
    }
    with dspy.context(lm=TestLM()):
        advice = dspy.Predict(build_signature(spec))(
            program_inputs=json.dumps({"label": "amber", "question": "q"}),
            oracle_metadata=json.dumps({"answer": "AM-132"}),
            better_program_outputs=json.dumps({"N/A": "Prediction not available"}),
            better_reward_value="N/A",
            module_names=["answer", "check"],
        ).module_advice
    assert advice == {"answer": "When label is amber, answer AM-132.", "check": "When label is amber, answer AM-132."}
