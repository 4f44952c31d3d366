"""Bad input against the Python consumer: the decoder, the stdio transport and the Kafka transport.

Each bad input gets a classified answer (an error frame, a dead letter with the reason, or a StepFailed),
the consumer keeps serving, and a valid step after the garbage completes. The corpus is hand-written
cases plus seeded random bytes, JSON and broken envelopes.
"""

import json
import os
import random
import struct
import threading
import uuid
from typing import Any

import pytest
from conftest import REPO, load_json

from dspex_consumers.executor.run import ExecutorSettings
from dspex_consumers.lms.test_lm import rules_of
from dspex_consumers.wire.codec import MAX_EVENT_BYTES, MAX_NESTING_DEPTH, decode_bytes
from dspex_consumers.wire.events import MAX_DEAD_LETTER_ORIGINAL_BYTES, dead_letter_event
from dspex_consumers.wire.schemas import validate_event
from dspex_consumers.worker import result_event

DISPATCHED = load_json(REPO / "tests" / "vectors" / "events" / "StepDispatched.v1.json")
EXAMPLES = [load_json(path) for path in sorted((REPO / "tests" / "vectors" / "events").glob("*.json"))]
PARIS = ExecutorSettings(test_answers=rules_of({"Capital of France?": {"answer": "Paris"}}))

TRIED = {"count": 0}


@pytest.fixture(scope="module", autouse=True)
def report_the_count():
    yield
    print(f"\ntest_bad_input.py: {TRIED['count']} bad inputs tried")


def copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def with_step(**data: Any) -> dict[str, Any]:
    event = copy(DISPATCHED)
    event["data"].update(data)
    return event


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def dispatched_with_input(raw_json: str) -> bytes:
    event = with_step(inputs={"question": "@"})
    return json.dumps(event).replace('"@"', raw_json).encode()


# (name, bytes, a part of the reason)
HAND_WRITTEN: list[tuple[str, bytes, str]] = [
    ("empty", b"", "not JSON"),
    ("broken JSON", b'{"type": "StepDispatched", ', "not JSON"),
    ("invalid UTF-8", b"\x7b\xff\xfe\x7d", "not valid UTF-8"),
    ("overlong UTF-8", b"\x7b\xc0\xaf\x7d", "not valid UTF-8"),
    ("JSON null", b"null", "not a dspex envelope"),
    ("a list", b"[1, 2, 3]", "not a dspex envelope"),
    ("type is a list", json.dumps({**DISPATCHED, "type": [1]}).encode(), "not a dspex envelope: type: expected string"),
    ("type is an object", json.dumps({**DISPATCHED, "type": {"$ne": None}}).encode(), "not a dspex envelope: type: expected string"),
    ("a huge unknown type", json.dumps({**DISPATCHED, "type": "T" * 200_000}).encode(), "unknown event type"),
    ("unknown type", json.dumps({**DISPATCHED, "type": "Teleported"}).encode(), "unknown event type"),
    ("a future schema version", json.dumps({**DISPATCHED, "schemaVersion": 99}).encode(), "newer than this build"),
    ("schema version as a string", json.dumps({**DISPATCHED, "schemaVersion": "1"}).encode(), "schemaVersion"),
    ("missing id", json.dumps({k: v for k, v in DISPATCHED.items() if k != "id"}).encode(), "id: is required"),
    ("id not a UUID", json.dumps({**DISPATCHED, "id": "42"}).encode(), "id"),
    ("unknown module", json.dumps(with_step(module="Teleport")).encode(), "data.module"),
    ("missing signature", json.dumps({**DISPATCHED, "data": {k: v for k, v in DISPATCHED["data"].items() if k != "signature"}}).encode(), "data.signature"),
    ("inputs is a string", json.dumps(with_step(inputs="hi")).encode(), "data.inputs"),
    (f"nesting {MAX_NESTING_DEPTH + 1} levels", dispatched_with_input(nested(MAX_NESTING_DEPTH)), f"deeper than {MAX_NESTING_DEPTH} levels"),
    ("nesting 500 levels", dispatched_with_input(nested(500)), f"deeper than {MAX_NESTING_DEPTH} levels"),
    ("nesting 100,000 levels", dispatched_with_input(nested(100_000)), f"deeper than {MAX_NESTING_DEPTH} levels"),
    ("over the size limit", dispatched_with_input(json.dumps("x" * MAX_EVENT_BYTES)), f"over the limit of {MAX_EVENT_BYTES}"),
    ("over the size limit, not UTF-8", b"\xff" * (MAX_EVENT_BYTES + 1), f"over the limit of {MAX_EVENT_BYTES}"),
]


def without(mapping: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in names}


def step_without(*names: str) -> dict[str, Any]:
    return {**DISPATCHED, "data": without(DISPATCHED["data"], *names)}


DECLARED = load_json(REPO / "tests" / "vectors" / "events" / "VariableDeclared.v1.json")


def declared_with_spec(spec: Any) -> dict[str, Any]:
    event = copy(DECLARED)
    event["data"]["declaration"]["spec"] = spec
    return event


# (name, value, the whole reason): as precise as streams/codec.ts — each problem once, with its path.
PRECISE: list[tuple[str, Any, str]] = [
    ("a string", "StepDispatched", "not a dspex envelope: (root): expected object, received string"),
    ("an empty object", {}, "not a dspex envelope: " + "; ".join(
        f"{name}: is required" for name in ("id", "type", "schemaVersion", "stream", "key", "occurredAt", "correlationId", "causationId", "data"))),
    ("missing id and key", without(DISPATCHED, "id", "key"), "not a dspex envelope: id: is required; key: is required"),
    ("missing data", without(DISPATCHED, "data"), "not a dspex envelope: data: is required"),
    ("id not a UUID", {**DISPATCHED, "id": "42"}, "not a dspex envelope: id: expected a UUID"),
    ("bad timestamp", {**DISPATCHED, "occurredAt": "yesterday"}, "not a dspex envelope: occurredAt: expected an ISO datetime"),
    ("empty key", {**DISPATCHED, "key": ""}, "not a dspex envelope: key: expected at least 1 character"),
    ("causationId a number", {**DISPATCHED, "causationId": 3}, "not a dspex envelope: causationId: expected string or null, received number"),
    ("schema version 2.5", {**DISPATCHED, "schemaVersion": 2.5}, "not a dspex envelope: schemaVersion: expected integer, received number"),
    ("schema version 0", {**DISPATCHED, "schemaVersion": 0}, "not a dspex envelope: schemaVersion: expected a number >= 1"),
    ("unknown type", {**DISPATCHED, "type": "Teleported"}, 'unknown event type "Teleported"'),
    ("future version", {**DISPATCHED, "schemaVersion": 9}, "StepDispatched schema version 9 is newer than this build knows (1): upgrade dspex"),
    ("missing data fields", step_without("stepId", "signature", "lm"),
     "invalid StepDispatched: data.stepId: is required; data.signature: is required; data.lm: is required"),
    ("missing nested field", with_step(signature={"inputs": [{"type": "str"}], "outputs": [{"name": "a"}]}),
     "invalid StepDispatched: data.signature.inputs.0.name: is required"),
    ("unknown module", with_step(module="Teleport"), 'invalid StepDispatched: data.module: expected one of "Predict"|"ChainOfThought"|"ReAct"|"Retrieve"'),
    ("negative attempt", with_step(attempt=-1), "invalid StepDispatched: data.attempt: expected a number >= 0"),
    ("step id too long", with_step(stepId="s" * 201), "invalid StepDispatched: data.stepId: expected at most 200 characters"),
    ("inputs null", with_step(inputs=None), "invalid StepDispatched: data.inputs: expected object, received null"),
    ("a tool not a string", with_step(tools=["search:faq", 7]), "invalid StepDispatched: data.tools.1: expected string, received number"),
    ("spec missing a field", declared_with_spec({"kind": "float", "min": 0}), "invalid VariableDeclared: data.declaration.spec.max: is required"),
    ("spec a string", declared_with_spec("float"), "invalid VariableDeclared: data.declaration.spec: expected object, received string"),
]


@pytest.mark.parametrize("name,value,reason", PRECISE, ids=[case[0] for case in PRECISE])
def test_reasons_name_each_problem_once_with_its_path(name, value, reason):
    TRIED["count"] += 1
    assert decode_bytes(json.dumps(value).encode()).reason == reason


def test_a_union_of_an_unknown_kind_names_the_kinds_it_knows():
    reason = decode_bytes(json.dumps(declared_with_spec({"kind": "teleport"})).encode()).reason
    assert reason.startswith('invalid VariableDeclared: data.declaration.spec.kind: expected one of "float"|"integer"|')


def test_a_reason_lists_at_most_twenty_problems():
    reason = decode_bytes(json.dumps(with_step(tools=list(range(1_000)))).encode()).reason
    assert reason.count("expected string") == 20 and reason.endswith("data.tools.19: expected string, received number; and more")


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1.5, 2**70, 1e308])
    if kind == 3:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(12)))
    if kind == 4:
        return ""
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {str(rng.randrange(100)): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def broken_envelope(rng: random.Random) -> bytes:
    event = copy(rng.choice(EXAMPLES))
    target = event["data"] if rng.random() < 0.6 and isinstance(event.get("data"), dict) and event["data"] else event
    name = rng.choice(sorted(target))
    if rng.random() < 0.3:
        del target[name]
    else:
        target[name] = random_json(rng)
    return json.dumps(event).encode()


def generated(count: int, seed: int = 10) -> list[bytes]:
    """Random bytes, random JSON and broken envelopes, the ones the decoder refuses."""
    rng = random.Random(seed)
    makers = [
        lambda: rng.randbytes(rng.randrange(200)),
        lambda: json.dumps(random_json(rng)).encode(),
        lambda: broken_envelope(rng),
    ]
    found = []
    while len(found) < count:
        raw = rng.choice(makers)()
        if not decode_bytes(raw).ok:
            found.append(raw)
    return found


def assert_clear(reason: str | None) -> None:
    assert reason is not None and 5 < len(reason) < 4_000


@pytest.mark.parametrize("name,raw,reason", HAND_WRITTEN, ids=[case[0] for case in HAND_WRITTEN])
def test_the_decoder_refuses_hand_written_bad_input_with_its_reason(name, raw, reason):
    TRIED["count"] += 1
    decoded = decode_bytes(raw)
    assert not decoded.ok
    assert reason in decoded.reason
    assert_clear(decoded.reason)


def test_the_decoder_never_raises_on_generated_input():
    rng = random.Random(3)
    for _ in range(1_500):
        TRIED["count"] += 1
        raw = rng.choice([lambda: rng.randbytes(rng.randrange(300)), lambda: json.dumps(random_json(rng)).encode(), lambda: broken_envelope(rng)])()
        decoded = decode_bytes(raw)
        if not decoded.ok:
            assert_clear(decoded.reason)


def test_nesting_up_to_the_limit_and_a_byte_order_mark_are_accepted():
    # The envelope, data and inputs take three levels (the TS suite checks the same boundary).
    assert decode_bytes(dispatched_with_input(nested(MAX_NESTING_DEPTH - 3))).ok
    assert decode_bytes(b"\xef\xbb\xbf" + json.dumps(DISPATCHED).encode()).ok


def test_a_dead_letter_of_a_huge_record_fits_and_says_it_was_cut():
    letter = dead_letter_event(b"\xff" * (MAX_EVENT_BYTES - 10), "r" * 10_000, "dspex.steps", 0, 7, "g", "k" * 5_000)
    validate_event(letter)
    assert letter["data"]["encoding"] == "base64"
    assert len(letter["data"]["original"]) <= MAX_DEAD_LETTER_ORIGINAL_BYTES * 4 // 3 + 4
    assert letter["data"]["reason"].endswith(f"(original cut to its first {MAX_DEAD_LETTER_ORIGINAL_BYTES} of {MAX_EVENT_BYTES - 10} bytes)")
    assert letter["key"] == "dspex.steps/0/7"


def test_a_result_over_the_limits_becomes_a_step_failure():
    from dspex_consumers.executor.run import StepOutcome

    for outputs in ({"answer": "x" * MAX_EVENT_BYTES}, {"answer": json.loads(nested(100))}):
        failed = result_event(DISPATCHED, StepOutcome(1.0, outputs=outputs), "w")
        validate_event(failed)
        assert failed["type"] == "StepFailed"
        assert failed["data"]["error"]["kind"] == "invalid_output"
        assert "the step's result" in failed["data"]["error"]["message"]


# --- stdio: one worker process takes all the garbage, then still runs a step ---------------------------------

def test_the_stdio_worker_answers_garbage_with_errors_and_keeps_serving(tmp_path):
    import subprocess
    import sys

    from dspex_consumers.transports.frames import encode_frame, read_frame

    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"Capital of France?": {"answer": "Paris"}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "dspex_consumers", "--transport", "stdio", "--worker", "w", "--test-answers", str(answers)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )

    def send_raw(body: bytes) -> None:
        process.stdin.write(struct.pack(">I", len(body)) + body)
        process.stdin.flush()

    def receive() -> dict[str, Any]:
        body = read_frame(process.stdout)
        assert body is not None, "the worker closed stdout"
        return json.loads(body)

    try:
        assert receive()["type"] == "ready"
        frames: list[tuple[bytes, str]] = [
            (b"{not json", "not JSON"),
            (b"\xff\xfe", "not JSON"),
            (nested(100_000).encode(), "too deeply"),
            (b"[]", "unknown message type"),
            (b"null", "unknown message type"),
            (b'{"type": 7}', "unknown message type"),
            (b'{"type": "step"}', "not a dspex envelope"),
        ]
        steps = [raw for _, raw, _ in HAND_WRITTEN if raw[:1] == b"{"] + generated(40)
        for i, raw in enumerate(steps):
            # A step frame carries the event as JSON: raw bytes that are not JSON go as a string.
            try:
                event = json.loads(raw)
            except (ValueError, RecursionError):
                event = raw.decode("utf-8", "replace")
            body = json.dumps({"type": "step", "id": f"bad-{i}", "event": event}).encode() if len(raw) < 200_000 else b'{"type": "step", "id": "bad-%d", "event": ' % i + raw + b"}"
            frames.append((body, ""))
        for body, _ in frames:
            send_raw(body)
        for body, reason in frames:
            TRIED["count"] += 1
            answer = receive()
            assert answer["type"] == "error", body[:80]
            assert reason in answer["reason"]
            assert_clear(answer["reason"])
        process.stdin.write(encode_frame({"type": "step", "id": "good", "event": DISPATCHED}))
        process.stdin.flush()
        result = receive()
        assert (result["id"], result["event"]["type"]) == ("good", "StepCompleted")
        assert result["event"]["data"]["outputs"] == {"answer": "Paris"}
    finally:
        process.kill()
        process.wait(10)


# --- Kafka: garbage records on the steps topic are dead-lettered, valid steps around them complete -----------

BROKERS = os.environ.get("DSPEX_KAFKA_BROKERS")


@pytest.mark.skipif(not BROKERS, reason="no Kafka broker: set DSPEX_KAFKA_BROKERS (npm test starts one)")
def test_the_kafka_consumer_dead_letters_garbage_and_keeps_serving():
    from confluent_kafka import Producer
    from test_kafka import create_topics, read_all

    from dspex_consumers.transports.kafka import KafkaOptions, KafkaWorker

    suffix = uuid.uuid4().hex[:8]
    steps, results, dlq = f"test.steps.{suffix}", f"test.step-results.{suffix}", f"test.dlq.{suffix}"
    create_topics(steps, results, dlq)
    # Idempotent: the records land in the order produced even when a batch is retried (the test reads the
    # letters' offsets in that order; without it a retried batch once landed after the next one).
    producer = Producer({"bootstrap.servers": BROKERS, "message.max.bytes": 2 * MAX_EVENT_BYTES, "enable.idempotence": True})
    bad = [(name, raw, reason) for name, raw, reason in HAND_WRITTEN] + [(f"generated {i}", raw, "") for i, raw in enumerate(generated(30))]
    good = []
    for i, (_, raw, _) in enumerate(bad):
        producer.produce(steps, key=b"session-1", value=raw)
        if i % 10 == 0:
            step = with_step(stepId=f"x1/answer/{i}")
            step["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"good-{i}-{suffix}"))
            good.append(step["id"])
            producer.produce(steps, key=b"session-1", value=json.dumps(step).encode())
    producer.flush(30)
    TRIED["count"] += len(bad)

    options = KafkaOptions(brokers=BROKERS, group=f"g-{suffix}", worker="kw", steps_topic=steps, results_topic=results, dlq_topic=dlq)
    worker = KafkaWorker(options, PARIS)
    runner = threading.Thread(target=worker.serve)
    runner.start()
    try:
        letters = read_all(dlq, len(bad), timeout_s=90)
        produced = read_all(results, 2 * len(good), timeout_s=90)
        assert runner.is_alive(), "the consumer stopped"
    finally:
        worker.stop()
        runner.join(30)

    events = [json.loads(message.value()) for message in produced]
    completed = [event for event in events if event["type"] == "StepCompleted"]
    assert sorted(event["causationId"] for event in completed) == sorted(good)
    assert len(letters) == len(bad)
    by_offset = {}
    for message in letters:
        letter = json.loads(message.value())
        validate_event(letter)
        by_offset[int(letter["data"]["source"]["offset"])] = letter
    # Everything went to one partition (one key), in order: the letters' offsets skip the good steps.
    offsets = sorted(by_offset)
    for (name, _, reason), offset in zip(bad, offsets, strict=True):
        assert reason in by_offset[offset]["data"]["reason"], name
