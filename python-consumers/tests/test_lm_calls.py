"""Each LM call of a step is recorded in its result: what the model saw and said, tokens, latency, cost."""

import json

import pytest
from conftest import qa_step

from dspex_consumers.executor import execute_step
from dspex_consumers.executor.lm_calls import TEXT_LIMIT, json_size, recorded, truncated, within_budget
from dspex_consumers.executor.run import ExecutorSettings
from dspex_consumers.lms.test_lm import rules_of
from dspex_consumers.wire.schemas import validate_event
from dspex_consumers.worker import result_event

PARIS = rules_of({"Capital of France?": {"answer": "Paris"}})
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


def test_a_steps_result_carries_each_call_with_its_prompt_completion_tokens_latency_and_cost(dispatched):
    step = qa_step(lm={"model": "dspex/test?latency_ms=15", "temperature": 0}, demos=[])
    outcome = execute_step(step, ExecutorSettings(test_answers=PARIS))
    assert outcome.ok, outcome.error
    [call] = outcome.lm_calls
    assert call["model"] == "dspex/test?latency_ms=15"
    assert [message["role"] for message in call["messages"]] == ["system", "user"]
    assert "Capital of France?" in call["messages"][1]["content"]
    assert "[[ ## answer ## ]]\nParis" in call["completion"]
    assert (call["promptTokens"], call["completionTokens"]) == (outcome.usage["promptTokens"], outcome.usage["completionTokens"])
    assert call["promptTokens"] > 0 and call["completionTokens"] > 0
    assert 15 <= call["latencyMs"] <= outcome.latency_ms
    assert call["cost"] == 0.0  # a local LM costs nothing
    completed = result_event({**dispatched, "data": step}, outcome, "w")
    assert completed["type"] == "StepCompleted"
    assert validate_event(completed)["data"]["lmCalls"] == [call]


def test_every_call_of_a_react_step_is_recorded_in_order():
    step = qa_step(module="ReAct", tools=["calculator"], inputs={"question": "What is 2+3*4?"}, demos=[])
    outcome = execute_step(step, ExecutorSettings(test_answers=CALCULATION))
    assert outcome.ok, outcome.error
    assert len(outcome.lm_calls) == outcome.usage["calls"] == 3
    assert "next_tool_name" in outcome.lm_calls[0]["completion"] and "calculator" in outcome.lm_calls[0]["completion"]
    assert "[[ ## observation_0 ## ]]\n14" in outcome.lm_calls[1]["messages"][-1]["content"]
    assert "[[ ## answer ## ]]\n14" in outcome.lm_calls[2]["completion"]
    assert sum(call["promptTokens"] for call in outcome.lm_calls) == outcome.usage["promptTokens"]


def test_usage_mode_keeps_tokens_latency_and_cost_but_no_text():
    outcome = execute_step(qa_step(), ExecutorSettings(test_answers=PARIS, lm_calls="usage"))
    [call] = outcome.lm_calls
    assert set(call) == {"model", "promptTokens", "completionTokens", "latencyMs", "cost"}
    assert call["promptTokens"] == outcome.usage["promptTokens"] > 0


def test_a_failed_step_carries_the_calls_made_before_it_failed(dispatched):
    signature = {"inputs": [{"name": "question", "type": "str"}], "outputs": [{"name": "stars", "type": "int", "constraints": {"min": 1, "max": 5}}]}
    rules = rules_of({"Capital": {"stars": 9}})
    step = qa_step(signature=signature, demos=[])
    outcome = execute_step(step, ExecutorSettings(test_answers=rules))
    assert outcome.error is not None and outcome.error.kind == "invalid_output"
    [call] = outcome.lm_calls
    assert "[[ ## stars ## ]]\n9" in call["completion"]
    failed = result_event({**dispatched, "data": step}, outcome, "w")
    assert failed["type"] == "StepFailed" and validate_event(failed)["data"]["lmCalls"] == [call]


def test_a_long_message_keeps_its_start_and_end_around_a_marker():
    question = "Q" * 30_000 + " Capital of France?"
    outcome = execute_step(qa_step(inputs={"question": question}), ExecutorSettings(test_answers=PARIS))
    user = outcome.lm_calls[0]["messages"][-1]["content"]
    assert len(user) < TEXT_LIMIT + 100
    assert "dspex cut" in user and user.startswith("[[ ## question ## ]]\nQQQ")
    assert "Capital of France?" in user[-TEXT_LIMIT // 2 :]  # the end of the prompt is kept
    assert truncated("x" * 10, 4) == "xx\n[… dspex cut 6 of 10 characters …]\nxx"
    assert truncated("short") == "short"


def test_a_steps_calls_stay_within_their_budget():
    call = {"model": "m", "messages": [{"role": "user", "content": "a" * 10_000}], "completion": "b" * 10_000, "promptTokens": 1, "completionTokens": 1, "latencyMs": 1.0}
    many = [call] * 40
    shrunk = recorded(many, budget=100_000)
    assert json_size(shrunk) <= 100_000
    assert all("messages" in each for each in shrunk)  # the texts got shorter, every call kept them
    assert len(shrunk[0]["completion"]) < TEXT_LIMIT // 4 + 100

    cut = recorded(many, budget=20_000)
    assert json_size(cut) <= 20_000
    assert "messages" in cut[0] and "messages" not in cut[-1]  # the first calls whole, the rest usage only
    assert [each["promptTokens"] for each in cut] == [1] * 40
    assert within_budget([call], 10) == [{key: value for key, value in call.items() if key not in ("messages", "completion")}]


def test_key_shaped_strings_in_the_recorded_text_are_masked(monkeypatch):
    secret = "sk-test-SECRET-0a1b2c3d4e5f6a7b8c9d"
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "plain-secret-value-123")
    question = f"Capital of France? my key is {secret}, and plain-secret-value-123"
    outcome = execute_step(qa_step(inputs={"question": question}), ExecutorSettings(test_answers=PARIS))
    text = json.dumps(outcome.lm_calls)
    assert "Capital of France?" in text
    assert secret not in text and "plain-secret-value-123" not in text and "***" in text


def test_the_consumer_takes_what_to_record_from_its_command_line_or_dspex_trace_lm(monkeypatch):
    from dspex_consumers.__main__ import parse_args, settings_from

    monkeypatch.delenv("DSPEX_TRACE_LM", raising=False)
    assert settings_from(parse_args(["--transport", "stdio"])).lm_calls == "full"
    monkeypatch.setenv("DSPEX_TRACE_LM", "usage")
    assert settings_from(parse_args(["--transport", "stdio"])).lm_calls == "usage"
    assert settings_from(parse_args(["--transport", "stdio", "--trace-lm", "full"])).lm_calls == "full"
    monkeypatch.setenv("DSPEX_TRACE_LM", "prompts")
    with pytest.raises(SystemExit):
        parse_args(["--transport", "stdio"])
