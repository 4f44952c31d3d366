"""The offline LM (`dspex/offline`): its completion prompt and decoding rules, then the real model (Gemma 3
270M via llama-cpp-python) answering through the executor. Tests of the real model skip when it is missing."""

import statistics
import time
from typing import Literal

import dspy
import pytest
from conftest import qa_step

from dspex_consumers.executor import execute_step
from dspex_consumers.lms.completion import content_free, label, prompt_text
from dspex_consumers.lms.offline import choices_of, grammar_text, parse_value, pick
from dspex_consumers.lms.prompt import RequestedField, read_prompt

try:
    import llama_cpp  # noqa: F401

    from dspex_consumers.lms.offline import model_path

    MODEL = str(model_path())
    MISSING = None
except Exception as error:
    MISSING = f"offline model not installed ({error}); run `bash infra/python/setup.sh --offline-model`"

pytestmark = pytest.mark.offline
needs_model = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

CATEGORIES = ["billing", "technical", "account", "shipping"]


class Triage(dspy.Signature):
    """Classify the customer's support message into one category."""

    message: str = dspy.InputField()
    category: Literal["billing", "technical", "account", "shipping"] = dspy.OutputField()


DEMOS = [
    dspy.Example(message="I was charged twice.", category="billing").with_inputs("message"),
    dspy.Example(message="The app crashes on start.", category="technical").with_inputs("message"),
]


def view_of(adapter: dspy.Adapter, signature: type[dspy.Signature], message: str = "Where is my\nparcel?"):
    return read_prompt(adapter.format(signature, DEMOS, {"message": message}))


def test_the_prompt_is_plain_text_instructions_then_demos_then_the_open_output_field():
    for adapter in (dspy.JSONAdapter(), dspy.ChatAdapter()):
        view = view_of(adapter, Triage)
        assert prompt_text(view, {}, "category") == (
            "Classify the customer's support message into one category.\n\n"
            "Message: I was charged twice.\nCategory: billing\n\n"
            "Message: The app crashes on start.\nCategory: technical\n\n"
            "Message: Where is my parcel?\nCategory:"
        )
        assert prompt_text(view, {}, "category", demos=1).count("Category:") == 2


def test_chain_of_thought_asks_for_reasoning_first_and_skips_what_a_demo_does_not_supply():
    view = view_of(dspy.JSONAdapter(), dspy.ChainOfThought(Triage).predict.signature)
    assert [field.name for field in view.requested] == ["reasoning", "category"]
    assert prompt_text(view, {}, "reasoning").endswith("Message: Where is my parcel?\nReasoning:")
    assert "Not supplied" not in prompt_text(view, {}, "reasoning")
    after = prompt_text(view, {"reasoning": "It is about a parcel."}, "category")
    assert after.endswith("Message: Where is my parcel?\nReasoning: It is about a parcel.\nCategory:")


def test_the_prior_prompt_keeps_instructions_and_demos_and_empties_the_inputs():
    view = view_of(dspy.JSONAdapter(), Triage)
    prior = prompt_text(content_free(view), {}, "category")
    assert prior.endswith("Category: technical\n\nMessage:\nCategory:")
    assert prior.startswith("Classify the customer's support message")


def test_each_field_type_decodes_its_own_way():
    literal = RequestedField("category", "Literal['billing', 'technical']")
    assert choices_of(literal) == ["billing", "technical"]
    assert choices_of(RequestedField("sure", "bool")) == [True, False]
    assert choices_of(RequestedField("answer", "str")) is None
    assert grammar_text(RequestedField("answer", "str")) is None
    assert "[0-9]" in grammar_text(RequestedField("count", "int"))
    assert parse_value(RequestedField("count", "int"), " 42") == 42
    assert parse_value(RequestedField("tags", "list[str]"), ' ["a", "b"]') == ["a", "b"]
    assert '"integer"' not in grammar_text(RequestedField("tags", "list[str]"))
    for kind in ("list[float]", "dict[str, Any]"):
        rules = [line.split("::=")[0].strip() for line in grammar_text(RequestedField("x", kind)).splitlines()]
        assert len(rules) == len(set(rules)), rules  # each rule defined once
    assert label("next_tool_name") == "Next Tool Name"


def test_temperature_zero_takes_the_best_option_and_sampling_is_seeded():
    import numpy as np

    scores = np.array([-3.0, -1.0, -2.0])
    assert pick(scores, 0.0, seed=1) == 1
    draws = [pick(scores, 1.0, seed=seed) for seed in range(200)]
    assert draws == [pick(scores, 1.0, seed=seed) for seed in range(200)]
    assert set(draws) == {0, 1, 2} and draws.count(1) > draws.count(0)


def classify_step(module: str = "Predict", demos: list[dict] | None = None, message: str = "My parcel never arrived."):
    signature = {
        "instructions": "Classify the customer's support message into one category.",
        "inputs": [{"name": "message", "type": "str"}],
        "outputs": [{"name": "category", "type": f"Literal[{', '.join(repr(c) for c in CATEGORIES)}]"}],
    }
    return qa_step(module=module, signature=signature, demos=demos or [], inputs={"message": message},
                   lm={"model": "dspex/offline", "temperature": 0, "maxTokens": 64}, timeoutMs=120_000)


@needs_model
def test_the_offline_model_answers_a_simple_signature(capsys):
    signature = {
        "instructions": "Answer the question.",
        "inputs": [{"name": "question", "type": "str"}],
        "outputs": [{"name": "answer", "type": "str"}, {"name": "sure", "type": "bool"},
                    {"name": "year", "type": "int"}, {"name": "tags", "type": "list[str]"},
                    {"name": "facts", "type": "dict"}],
    }
    step = qa_step(signature=signature, demos=[], lm={"model": "dspex/offline", "temperature": 0, "maxTokens": 48},
                   inputs={"question": "What is the capital of France?"}, timeoutMs=120_000)
    first = execute_step(step)
    assert first.ok, first.error
    assert isinstance(first.outputs["answer"], str) and first.outputs["answer"].strip()
    assert isinstance(first.outputs["sure"], bool)
    assert isinstance(first.outputs["year"], int)
    assert isinstance(first.outputs["tags"], list)
    assert isinstance(first.outputs["facts"], dict)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        again = execute_step(step)
        seconds.append(time.perf_counter() - started)
        assert again.outputs == first.outputs  # temperature 0: deterministic
    with capsys.disabled():
        print(f"\noffline model: first call {first.latency_ms / 1000:.2f} s (loads the model), "
              f"then {statistics.median(seconds):.2f} s per call (median of 3), answer={first.outputs}")


@needs_model
def test_predict_and_chain_of_thought_answer_with_one_of_the_options():
    for module in ("Predict", "ChainOfThought"):
        outcome = execute_step(classify_step(module))
        assert outcome.ok, outcome.error
        assert outcome.outputs["category"] in CATEGORIES
        assert outcome.usage["calls"] == 1
        [call] = outcome.lm_calls  # recorded as any LM's call: what the adapter sent, the JSON it got back
        assert call["model"] == "dspex/offline" and call["cost"] == 0.0
        assert call["messages"][-1]["role"] == "user" and f'"category": "{outcome.outputs["category"]}"' in call["completion"]
        assert call["promptTokens"] == outcome.usage["promptTokens"] > 0


@needs_model
def test_a_base_model_prompted_as_one_tells_the_categories_apart():
    """The old chat prompt made the model copy the first option listed: every answer was 'billing'."""
    messages = {
        "billing": "Why was my credit card charged twice for the invoice?",
        "technical": "The app crashes with an error every time I open it.",
        "account": "I forgot my password and cannot log in to my account.",
        "shipping": "My package has not been delivered yet, where is my parcel?",
    }
    answers = {want: execute_step(classify_step(message=text)).outputs["category"] for want, text in messages.items()}
    assert sum(answer == want for want, answer in answers.items()) >= 3, answers


@needs_model
def test_demos_are_in_the_prompt_and_temperature_above_zero_is_reproducible():
    demos = [{"message": "I was charged twice.", "category": "billing"},
             {"message": "The app crashes on start.", "category": "technical"}]
    bare = execute_step(classify_step())
    shown = execute_step(classify_step(demos=demos))
    assert shown.ok and shown.usage["promptTokens"] > bare.usage["promptTokens"] + 10
    warm = classify_step(demos=demos)
    warm["lm"] = {**warm["lm"], "temperature": 0.9}
    assert execute_step(warm).outputs == execute_step(warm).outputs
