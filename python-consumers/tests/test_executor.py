"""The executor with the deterministic test LM: modules, demos, tools, outputs, errors."""

import time

import dspy
import pytest
from conftest import qa_step

from dspex_consumers.executor import execute_step
from dspex_consumers.executor.errors import StepTimeout, classify
from dspex_consumers.executor.run import ExecutorSettings
from dspex_consumers.executor.tools import ToolModuleError, load_tool_modules
from dspex_consumers.lms.test_lm import rules_of
from dspex_consumers.wire.schemas import validate_event
from dspex_consumers.worker import result_event

PARIS = ExecutorSettings(test_answers=rules_of({"Capital of France?": {"answer": "Paris"}}))

CALCULATION = rules_of(
    [
        {"when": "observation_0", "then": {"next_thought": "done", "next_tool_name": "finish", "next_tool_args": {}}},
        {"when": "observation_0", "then": {"answer": "14"}},
        {
            "when": "What is 2+3*4?",
            "then": {"next_thought": "compute", "next_tool_name": "calculator", "next_tool_args": {"expression": "2+3*4"}},
        },
    ]
)


def test_predict_answers_from_the_rules_with_usage_and_trace():
    outcome = execute_step(qa_step(), PARIS)
    assert outcome.ok, outcome.error
    assert outcome.outputs == {"answer": "Paris"}
    assert outcome.usage["calls"] == 1 and outcome.usage["promptTokens"] > 0
    assert outcome.trace == [{"predictor": "self", "inputs": {"question": "Capital of France?"}, "outputs": {"answer": "Paris"}}]
    assert outcome.latency_ms > 0


def test_without_a_rule_the_answer_is_a_deterministic_function_of_the_inputs():
    first, second = execute_step(qa_step()), execute_step(qa_step())
    other = execute_step(qa_step(inputs={"question": "Capital of Spain?"}))
    assert first.outputs == second.outputs != other.outputs


def test_chain_of_thought_reasons_and_only_signature_outputs_are_returned():
    outcome = execute_step(qa_step(module="ChainOfThought"), PARIS)
    assert outcome.outputs == {"answer": "Paris"}
    assert outcome.trace[0]["predictor"] == "predict"
    assert "reasoning" in outcome.trace[0]["outputs"]


def test_react_calls_the_real_calculator():
    step = qa_step(module="ReAct", tools=["calculator"], inputs={"question": "What is 2+3*4?"}, demos=[])
    outcome = execute_step(step, ExecutorSettings(test_answers=CALCULATION))
    assert outcome.ok, outcome.error
    assert outcome.outputs == {"answer": "14"}
    assert [entry["predictor"] for entry in outcome.trace] == ["react", "react", "extract.predict"]
    assert "[[ ## observation_0 ## ]]\n14" in outcome.trace[1]["inputs"]["trajectory"]
    assert outcome.usage["calls"] == 3


def test_react_searches_the_corpus_given_in_the_step():
    rules = rules_of(
        [
            {"when": "observation_0", "then": {"next_thought": "found", "next_tool_name": "finish", "next_tool_args": {}}},
            {"when": ["observation_0", "Marie Curie"], "then": {"answer": "1867"}},
            {"when": "When was", "then": {"next_thought": "look up", "next_tool_name": "search", "next_tool_args": {"query": "Curie born"}}},
        ]
    )
    corpus = ["Marie Curie was born in 1867 in Warsaw.", "Paris is the capital of France."]
    signature = {
        "instructions": "",
        "inputs": [{"name": "question", "type": "str"}, {"name": "corpus", "type": "list[str]"}],
        "outputs": [{"name": "answer", "type": "str"}],
    }
    step = qa_step(module="ReAct", tools=["search"], signature=signature, demos=[],
                   inputs={"question": "When was Marie Curie born?", "corpus": corpus})
    outcome = execute_step(step, ExecutorSettings(test_answers=rules))
    assert outcome.ok, outcome.error
    assert outcome.outputs == {"answer": "1867"}
    assert "[1] Marie Curie was born in 1867" in outcome.trace[1]["inputs"]["trajectory"]


WORD_COUNT_TOOLS = """
def word_count(text: str) -> str:
    \"\"\"Counts the words of a text.\"\"\"
    return f"{len(text.split())} words"

TOOLS = {"word_count": word_count}
"""


def test_react_calls_a_tool_from_the_users_module(tmp_path, monkeypatch):
    (tmp_path / "my_tools.py").write_text(WORD_COUNT_TOOLS)
    monkeypatch.syspath_prepend(str(tmp_path))
    tools = load_tool_modules(["my_tools"])
    rules = rules_of(
        [
            {"when": "observation_0", "then": {"next_thought": "counted", "next_tool_name": "finish", "next_tool_args": {}}},
            {"when": ["observation_0", "5 words"], "then": {"answer": "five"}},
            {"when": "How many", "then": {"next_thought": "count", "next_tool_name": "word_count",
                                          "next_tool_args": {"text": "one two three four five"}}},
        ]
    )
    step = qa_step(module="ReAct", tools=["word_count"], inputs={"question": "How many words?"}, demos=[])
    outcome = execute_step(step, ExecutorSettings(test_answers=rules, tools=tools))
    assert outcome.ok, outcome.error
    assert outcome.outputs == {"answer": "five"}
    assert "5 words" in outcome.trace[1]["inputs"]["trajectory"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (None, "cannot be imported"),
        ("TOOLS = 3", "must define TOOLS"),
        ("def calculator(x: str) -> str:\n    return x\nTOOLS = {'calculator': calculator}", "already defined"),
    ],
)
def test_a_tools_module_that_cannot_be_used_is_refused_with_the_reason(tmp_path, monkeypatch, source, reason):
    name = f"bad_tools_{abs(hash(reason))}"
    if source is not None:
        (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ToolModuleError, match=reason):
        load_tool_modules([name])


def test_react_stops_after_max_iters():
    loop = rules_of([{"when": "What", "then": {"next_thought": "again", "next_tool_name": "calculator",
                                                "next_tool_args": {"expression": "1+1"}}}])
    step = qa_step(module="ReAct", tools=["calculator"], maxIters=2, inputs={"question": "What?"}, demos=[])
    outcome = execute_step(step, ExecutorSettings(test_answers=loop))
    assert outcome.ok, outcome.error
    assert [entry["predictor"] for entry in outcome.trace] == ["react", "react", "extract.predict"]


def test_demos_reach_the_prompt_and_gate_the_demo_gated_mode():
    gated = qa_step(lm={"model": "dspex/test?mode=demo_gated", "temperature": 0, "maxTokens": 256})
    with_label = gated | {"demos": [{"question": "Capital of Germany?", "answer": "Paris"}]}
    without_label = gated | {"demos": [{"question": "Capital of Italy?", "answer": "Rome"}]}
    assert execute_step(with_label, PARIS).outputs == {"answer": "Paris"}
    assert execute_step(without_label, PARIS).outputs["answer"] != "Paris"


def test_the_nearest_demo_mode_answers_a_literal_with_the_nearest_demos_label():
    signature = {
        "instructions": "Classify it.",
        "inputs": [{"name": "message", "type": "str"}],
        "outputs": [{"name": "category", "type": "Literal['billing', 'technical']"}],
    }
    step = qa_step(signature=signature, lm={"model": "dspex/test?mode=nearest_demo", "temperature": 0, "maxTokens": 64})
    demos = [
        {"message": "I was charged twice for my plan", "category": "billing"},
        {"message": "the app crashes on start", "category": "technical"},
    ]
    def ask(message, demos):
        return execute_step(step | {"inputs": {"message": message}, "demos": demos}, ExecutorSettings())

    assert ask("why was my card charged twice", demos).outputs == {"category": "billing"}
    assert ask("it crashes when I open the app", demos).outputs == {"category": "technical"}
    # Demos that point the other way mislead it, as they would a small model.
    swapped = [{**demos[0], "category": "technical"}, {**demos[1], "category": "billing"}]
    assert ask("why was my card charged twice", swapped).outputs == {"category": "technical"}


def test_typed_outputs_are_parsed_and_checked():
    signature = {
        "instructions": "Rate it.",
        "inputs": [{"name": "text", "type": "str"}],
        "outputs": [
            {"name": "label", "type": 'Literal["good", "bad"]'},
            {"name": "score", "type": "probability"},
            {"name": "stars", "type": "int", "constraints": {"min": 1, "max": 5}},
            {"name": "tags", "type": "list[str]"},
        ],
    }
    rules = rules_of({"lovely": {"label": "good", "score": 0.9, "stars": 5, "tags": ["warm"]}})
    outcome = execute_step(qa_step(signature=signature, inputs={"text": "lovely"}, demos=[]), ExecutorSettings(test_answers=rules))
    assert outcome.outputs == {"label": "good", "score": 0.9, "stars": 5, "tags": ["warm"]}

    bad = rules_of({"lovely": {"label": "good", "score": 0.9, "stars": 9, "tags": []}})
    failed = execute_step(qa_step(signature=signature, inputs={"text": "lovely"}, demos=[]), ExecutorSettings(test_answers=bad))
    assert failed.error.kind == "invalid_output" and "stars must be between 1 and 5" in failed.error.message
    assert failed.error.retryable is False  # temperature 0: the same prompt, the same answer


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"tools": ["rm -rf"], "module": "ReAct"}, "bad_request"),
        ({"inputs": {}}, "bad_request"),
        ({"signature": {"inputs": [{"name": "q", "type": "strr"}], "outputs": [{"name": "a", "type": "str"}]}}, "bad_request"),
        ({"lm": {"model": "dspex/nope"}}, "bad_request"),
    ],
)
def test_bad_steps_fail_without_raising(change, kind):
    outcome = execute_step(qa_step(**change))
    assert outcome.error is not None and outcome.error.kind == kind
    assert outcome.error.retryable is False


def with_field(name: str, role: str) -> dict:
    """The QA step with one more input or output field called `name` (and a value for an input)."""
    signature = qa_step()["signature"]
    fields = {**signature, role: [*signature[role], {"name": name, "type": "str"}]}
    inputs = {**qa_step()["inputs"], name: "x"} if role == "inputs" else qa_step()["inputs"]
    return qa_step(signature=fields, inputs=inputs)


INTERNAL_NAMES = [
    *[(with_field(name, "inputs"), f"input field {name!r}") for name in ("__class__", "__init__", "__dict__", "_private")],
    *[(with_field(name, "outputs"), f"output field {name!r}") for name in ("__class__", "__init__")],
    *[(with_field(name, "inputs"), f"input field {name!r}") for name in ("lm", "demos", "config", "signature")],
    (qa_step(inputs={"question": "Capital of France?", "__class__": "x"}), "input '__class__'"),
]


@pytest.mark.parametrize(("step", "named"), INTERNAL_NAMES, ids=[named for _, named in INTERNAL_NAMES])
def test_a_field_named_like_a_python_or_dspy_internal_is_a_bad_request(step, named):
    outcome = execute_step(step, PARIS)
    assert outcome.error is not None and (outcome.error.kind, outcome.error.retryable) == ("bad_request", False)
    assert named in outcome.error.message and "rename it" in outcome.error.message
    assert outcome.usage["calls"] == 0


def test_a_step_past_its_timeout_fails_as_a_retryable_timeout():
    started = time.perf_counter()
    outcome = execute_step(qa_step(lm={"model": "dspex/test?latency_ms=2000"}, timeoutMs=200))
    assert outcome.error.kind == "timeout" and outcome.error.retryable
    assert time.perf_counter() - started < 1.5


def test_an_unavailable_test_lm_fails_like_a_provider_that_is_down():
    outcome = execute_step(qa_step(lm={"model": "dspex/test?unavailable=1"}))
    assert not outcome.ok
    assert outcome.error.kind == "lm_error" and outcome.error.retryable
    assert "unavailable" in outcome.error.message


def test_an_lm_that_writes_garbage_is_a_parse_error():
    class Garbage(dspy.BaseLM):
        def forward(self, prompt=None, messages=None, **kwargs):
            from dspex_consumers.lms.response import chat_completion

            return chat_completion("garbage", "no fields here", 1, 1)

    with dspy.context(lm=Garbage("garbage")), pytest.raises(Exception) as raised:
        dspy.Predict("question -> answer")(question="x")
    assert classify(raised.value, deterministic=True).kind == "parse"


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (StepTimeout("slow"), "timeout", True),
        ("RateLimitError", "rate_limit", True),
        ("Timeout", "timeout", True),
        ("ContextWindowExceededError", "bad_request", False),
        ("AuthenticationError", "lm_error", False),
        ("ServiceUnavailableError", "lm_error", True),
        (RuntimeError("boom"), "internal", False),
    ],
)
def test_litellm_errors_are_classified(error, kind, retryable):
    if isinstance(error, str):
        import litellm

        error = getattr(litellm.exceptions, error)(message="x", model="openai/gpt-4o-mini", llm_provider="openai")
    classified = classify(error)
    assert (classified.kind, classified.retryable) == (kind, retryable)


def test_error_messages_never_carry_keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-supersecretvalue123")
    message = classify(RuntimeError("bad key sk-supersecretvalue123 and sk-otherkey12345678")).message
    assert "supersecret" not in message and "otherkey" not in message


def test_results_are_valid_events(dispatched):
    completed = result_event(dispatched, execute_step(dispatched["data"], PARIS), "w")
    failed = result_event(dispatched, execute_step({**dispatched["data"], "inputs": {}}), "w")
    for event in (completed, failed):
        assert validate_event(event) == event
        assert event["causationId"] == dispatched["id"] and event["key"] == dispatched["key"]
    assert completed["type"] == "StepCompleted" and failed["type"] == "StepFailed"


def test_the_step_names_dspys_adapter_and_a_model_that_answers_in_chat_format_fails_json_parsing():
    lm = {**qa_step()["lm"], "model": "dspex/test?format=chat"}
    on_json = execute_step(qa_step(lm={**lm, "adapter": "json"}))
    assert on_json.error is not None and on_json.error.kind == "parse", on_json
    assert "JSONAdapter failed to parse" in on_json.error.message
    on_chat = execute_step(qa_step(lm={**lm, "adapter": "chat"}))
    assert on_chat.ok, on_chat.error
    assert on_chat.outputs is not None and on_chat.outputs["answer"]


def test_an_answer_that_does_not_read_as_its_fields_type_is_a_parse_error(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('[{"when": "How many", "then": {"answer": "seven, I think"}}]')
    signature = {
        "instructions": "",
        "inputs": [{"name": "question", "type": "str", "optional": False}],
        "outputs": [{"name": "answer", "type": "int", "optional": False}],
    }
    lm = {"model": f"dspex/test?answers={rules}", "temperature": 0, "maxTokens": 64}
    outcome = execute_step(qa_step(inputs={"question": "How many moons?"}, signature=signature, lm=lm))
    assert outcome.error is not None
    assert (outcome.error.kind, outcome.error.retryable) == ("parse", False), outcome.error
    assert "unable to parse string as an integer" in outcome.error.message
