"""The worker's faster copies of two DSPy helpers answer exactly as DSPy's own."""

import logging

import dspy
import dspy.adapters.utils as adapter_utils
import pydantic
import pytest
from conftest import qa_step

from dspex_consumers.executor import dspy_speedups, execute_step
from dspex_consumers.executor.run import ExecutorSettings
from dspex_consumers.lms.test_lm import rules_of

DIRECT_CALL = "Calling module.forward(...) on Predict directly is discouraged"


class Warnings(logging.Handler):
    """What DSPy's module logger says (it does not propagate to the root logger, so caplog misses it)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings():
    handler = Warnings()
    logger = logging.getLogger("dspy.primitives.module")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def installed():
    dspy_speedups.install()
    assert dspy.Module.__getattribute__ is dspy_speedups._getattribute


def test_forward_reached_other_than_through_call_still_warns(warnings):
    predict = dspy.Predict("question -> answer")
    assert callable(predict.forward)
    assert any(DIRECT_CALL in message for message in warnings)


def test_a_step_run_through_call_does_not_warn(warnings):
    settings = ExecutorSettings(test_answers=rules_of({"Capital of France?": {"answer": "Paris"}}))
    outcome = execute_step(qa_step(), settings)
    assert outcome.outputs == {"answer": "Paris"}
    assert not any(DIRECT_CALL in message for message in warnings)


class Point(pydantic.BaseModel):
    x: int
    label: str


@pytest.mark.parametrize(
    "value", ["Paris", "", "line\nbreak 🙂", "lone \ud800 surrogate", 3, 2.5, None, ["a", 1], {"k": "v"}, Point(x=1, label="a")]
)
def test_field_values_serialize_as_dspy_serializes_them(value):
    assert adapter_utils.serialize_for_json is dspy_speedups._serialize_string_fast
    assert adapter_utils.serialize_for_json(value) == dspy_speedups._serialize_for_json(value)


def test_installing_twice_keeps_one_copy():
    dspy_speedups.install()
    assert dspy.Module.__getattribute__ is dspy_speedups._getattribute
    assert adapter_utils.serialize_for_json is dspy_speedups._serialize_string_fast
