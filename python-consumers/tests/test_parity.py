"""Parity: the same program (signature, demos, test-LM answers) run directly in DSPy and through dspex."""

from typing import Literal

import dspy
import pytest
from conftest import qa_step

from dspex_consumers.executor import execute_step
from dspex_consumers.executor.run import ExecutorSettings
from dspex_consumers.lms.test_lm import TestLM, rules_of

RULES = rules_of(
    [
        {"when": "Capital of France?", "then": {"answer": "Paris", "confidence": 0.9}},
        {"when": "Capital of Spain?", "then": {"answer": "Madrid", "confidence": 0.8}},
    ]
)
DEMOS = [{"question": "Capital of Italy?", "answer": "Rome", "confidence": 1.0}]
QUESTIONS = ["Capital of France?", "Capital of Spain?", "Capital of Peru?"]


class CapitalQA(dspy.Signature):
    """Answer the question in one word."""

    question: str = dspy.InputField()
    answer: str = dspy.OutputField(desc="a city")
    confidence: float = dspy.OutputField()


SPEC = {
    "instructions": "Answer the question in one word.",
    "inputs": [{"name": "question", "type": "str"}],
    "outputs": [{"name": "answer", "type": "str", "description": "a city"}, {"name": "confidence", "type": "float"}],
}


def direct(module_class: type[dspy.Module], question: str, mode: str) -> tuple[dict, list[dict]]:
    module = module_class(CapitalQA)
    for _, predictor in module.named_predictors():
        predictor.demos = [dspy.Example(**demo).with_inputs("question") for demo in DEMOS]
    lm = TestLM(answers=RULES, mode=mode)
    with dspy.context(lm=lm):
        prediction = module(question=question)
    return {"answer": prediction.answer, "confidence": prediction.confidence}, lm.history


@pytest.mark.parametrize("module", ["Predict", "ChainOfThought"])
@pytest.mark.parametrize("mode", ["lookup", "demo_gated"])
@pytest.mark.parametrize("question", QUESTIONS)
def test_dspy_and_dspex_give_the_same_outputs_and_prompts(module, mode, question):
    expected, history = direct(getattr(dspy, module), question, mode)
    step = qa_step(module=module, signature=SPEC, inputs={"question": question}, demos=DEMOS,
                   lm={"model": f"dspex/test?mode={mode}", "temperature": 0, "maxTokens": 256})
    outcome = execute_step(step, ExecutorSettings(test_answers=RULES))
    assert outcome.ok, outcome.error
    assert outcome.outputs == expected
    assert outcome.usage["promptTokens"] == history[0]["usage"]["prompt_tokens"]  # the very same prompt


def test_the_test_lm_type_literal_fields():
    lm = TestLM()
    with dspy.context(lm=lm):
        out = dspy.Predict(dspy.Signature({"q": (str, dspy.InputField()), "a": (Literal["x", "y"], dspy.OutputField())}))(q="1")
    assert out.a in ("x", "y")
