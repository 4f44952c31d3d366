"""The Kafka transport against a real broker (DSPEX_KAFKA_BROKERS); skipped with the reason when there is none."""

import json
import os
import threading
import time
import uuid

import pytest
from conftest import REPO, load_json

from dspex_consumers.executor.run import ExecutorSettings
from dspex_consumers.lms.test_lm import rules_of
from dspex_consumers.wire.ids import derived_id

BROKERS = os.environ.get("DSPEX_KAFKA_BROKERS")
pytestmark = pytest.mark.skipif(not BROKERS, reason="no Kafka broker: set DSPEX_KAFKA_BROKERS (npm test starts one)")

DISPATCHED = load_json(REPO / "tests" / "vectors" / "events" / "StepDispatched.v1.json")


def create_topics(*names: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BROKERS})
    for future in admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1) for name in names]).values():
        future.result(30)


def read_all(topic: str, expected: int, timeout_s: float = 60) -> list:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": BROKERS, "group.id": f"reader-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    found, deadline = [], time.time() + timeout_s
    while len(found) < expected and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            found.append(message)
    consumer.close()
    return found


def test_steps_in_results_and_dead_letters_out_then_a_clean_stop():
    from confluent_kafka import Producer

    from dspex_consumers.transports.kafka import KafkaOptions, KafkaWorker

    suffix = uuid.uuid4().hex[:8]
    steps, results, dlq = f"test.steps.{suffix}", f"test.step-results.{suffix}", f"test.dlq.{suffix}"
    create_topics(steps, results, dlq)
    producer = Producer({"bootstrap.servers": BROKERS})
    sent = []
    producer.produce(steps, key=b"session-1", value=b"{not json")
    producer.produce(steps, key=b"session-1", value=json.dumps(DISPATCHED).encode(), on_delivery=lambda _, m: sent.append(m))
    producer.flush(30)

    options = KafkaOptions(brokers=BROKERS, group=f"g-{suffix}", worker="kw", steps_topic=steps, results_topic=results, dlq_topic=dlq)
    worker = KafkaWorker(options, ExecutorSettings(test_answers=rules_of({"Capital of France?": {"answer": "Paris"}})))
    runner = threading.Thread(target=worker.serve)
    runner.start()
    try:
        produced = read_all(results, 2)
        letters = read_all(dlq, 1)
    finally:
        worker.stop()
        runner.join(30)
    assert not runner.is_alive()

    events = [json.loads(message.value()) for message in produced]
    assert [event["type"] for event in events] == ["StepStarted", "StepCompleted"]
    assert events[1]["id"] == derived_id(DISPATCHED["id"], "completed")
    assert events[1]["data"]["outputs"] == {"answer": "Paris"}
    # Keyed like the step, so on the partition of the same number (both topics have 3 partitions).
    assert all(message.key() == b"session-1" and message.partition() == sent[0].partition() for message in produced)
    assert dict(produced[1].headers())["dspex-type"] == b"StepCompleted"

    letter = json.loads(letters[0].value())
    assert letter["type"] == "DeadLettered" and letter["data"]["original"] == "{not json"
    assert "not JSON" in letter["data"]["reason"]
