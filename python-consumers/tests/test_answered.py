"""The answered-steps set without a broker: which records answer a step, and how the set stays bounded."""

import json
from collections import OrderedDict

from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from dspex_consumers.transports.answered import forget_older_than, note_answer


def record(value: object, timestamp: int = 1_000) -> Message:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Message(topic="dspex.step-results", partition=0, offset=0, value=raw, timestamp=(TIMESTAMP_CREATE_TIME, timestamp))


def test_a_completion_or_a_failure_answers_its_step_and_nothing_else_does():
    answered: OrderedDict[str, int] = OrderedDict()
    for value in [
        {"type": "StepCompleted", "data": {"stepId": "done"}},
        {"type": "StepFailed", "data": {"stepId": "timed-out", "worker": "coordinator"}},
        {"type": "StepStarted", "data": {"stepId": "started"}},
        {"type": "StepCompleted", "data": {"stepId": 7}},
        {"type": "StepCompleted", "data": "done"},
        ["StepCompleted"],
        b"{not json",
        b"[" * 100_000,
    ]:
        note_answer(record(value), answered)
    assert answered == {"done": 1_000, "timed-out": 1_000}


def test_answers_older_than_the_steps_read_by_more_than_the_margin_are_forgotten():
    answered = OrderedDict([("a", 1_000), ("b", 2_000), ("c", 9_000)])
    forget_older_than(answered, 2_000)
    assert list(answered) == ["b", "c"]
    forget_older_than(answered, 10_000)
    assert answered == {}
