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


def create_topics(*names: str, brokers: str | None = BROKERS) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers})
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


# --- paid work runs once: a step whose result is on the log is never run again ---------------------------------

PARIS = ExecutorSettings(test_answers=rules_of({"Capital of France?": {"answer": "Paris"}}))


def step_for(session: str, suffix: str) -> dict:
    """The shared StepDispatched with a step id, a dispatch id and a key of its own."""
    step = json.loads(json.dumps(DISPATCHED))
    step["data"]["stepId"] = f"{session}-step-{suffix}"
    step["data"]["sessionKey"] = step["key"] = session
    step["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, step["data"]["stepId"]))
    return step


def produce_events(topic: str, events: list[dict], timestamp_ms: int = 0, transaction: str | None = None,
                   brokers: str | None = BROKERS) -> None:
    """`timestamp_ms`: the records' timestamp (0: now); `transaction`: "commit" or "abort" one around them."""
    from confluent_kafka import Producer

    from dspex_consumers.wire.codec import encode_event

    config = {"bootstrap.servers": brokers, "partitioner": "murmur2_random"}
    producer = Producer({**config, "transactional.id": f"test-{uuid.uuid4()}"} if transaction else config)
    if transaction:
        producer.init_transactions(30)
        producer.begin_transaction()
    for event in events:
        producer.produce(topic, key=event["key"].encode(), value=encode_event(event), timestamp=timestamp_ms)
    producer.flush(30)  # on the log before the transaction ends: an abort would drop unsent records
    if transaction == "commit":
        producer.commit_transaction(30)
    elif transaction == "abort":
        producer.abort_transaction(30)
    assert producer.flush(30) == 0


def wait_until_committed_to_end(group: str, topic: str, timeout_s: float = 60, brokers: str | None = BROKERS) -> None:
    """Until `group` has committed every partition of `topic` up to its end (what it consumed, it has decided)."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    probe = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
    partitions = [TopicPartition(topic, p) for p in probe.list_topics(topic, timeout=30).topics[topic].partitions]
    deadline = time.time() + timeout_s
    try:
        while True:
            try:
                ends = [probe.get_watermark_offsets(tp, 30)[1] for tp in partitions]
                committed = [max(tp.offset, 0) for tp in probe.committed(partitions, 30)]
                if committed == ends:
                    return
                progress = f"committed {committed} of {ends}"
            except KafkaException as error:  # a broker that has just started: no leader yet for a moment
                progress = str(error)
            assert time.time() < deadline, f"{group} on {topic}: {progress}"
            time.sleep(0.1)
    finally:
        probe.close()


def read_to_end(topic: str, brokers: str | None = BROKERS) -> list[dict]:
    """Every event on `topic` now, each partition read up to its end."""
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{uuid.uuid4()}", "enable.partition.eof": True})
    partitions = reader.list_topics(topic, timeout=30).topics[topic].partitions
    reader.assign([TopicPartition(topic, p, 0) for p in partitions])
    events, unread = [], set(partitions)
    try:
        while unread:
            message = reader.poll(5)
            assert message is not None, f"no end of {topic}[{sorted(unread)}] in sight"
            if message.error():
                unread.discard(message.partition())
            else:
                events.append(json.loads(message.value()))
    finally:
        reader.close()
    return events


class Worker:
    """A KafkaWorker on its own thread, counting the steps it executes."""

    def __init__(self, monkeypatch, topics: tuple[str, str, str], group: str, name: str):
        from dspex_consumers.transports import kafka

        steps, results, dlq = topics
        self.executed: list[str] = []
        run = kafka.execute_step

        def counted(step, settings):
            self.executed.append(step["stepId"])
            return run(step, settings)

        monkeypatch.setattr(kafka, "execute_step", counted)
        options = kafka.KafkaOptions(brokers=BROKERS, group=group, worker=name, steps_topic=steps, results_topic=results, dlq_topic=dlq)
        self.worker = kafka.KafkaWorker(options, PARIS)
        self.thread = threading.Thread(target=self.worker.serve)

    def __enter__(self) -> "Worker":
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def new_topics() -> tuple[str, str, str]:
    suffix = uuid.uuid4().hex[:8]
    topics = (f"test.steps.{suffix}", f"test.step-results.{suffix}", f"test.dlq.{suffix}")
    create_topics(*topics)
    return topics


def test_a_new_group_runs_none_of_the_steps_another_group_answered(monkeypatch):
    topics = new_topics()
    steps = [step_for(f"session-{i}", "a") for i in range(8)]  # spread over the 3 partitions
    produce_events(topics[0], steps)

    with Worker(monkeypatch, topics, f"g1-{uuid.uuid4()}", "first") as first:
        wait_until_committed_to_end(first.worker.options.group, topics[0])
    assert sorted(first.executed) == sorted(step["data"]["stepId"] for step in steps)

    with Worker(monkeypatch, topics, f"g2-{uuid.uuid4()}", "second") as second:
        wait_until_committed_to_end(second.worker.options.group, topics[0])
    assert second.executed == []
    results = read_to_end(topics[1])
    assert len(results) == 2 * len(steps)
    assert all(event["data"]["worker"] == "first" for event in results)


def result_of(step: dict, event_type: str, worker: str, **data) -> dict:
    from dspex_consumers.wire.events import step_ref, step_result_event

    return step_result_event(step, event_type, {**step_ref(step["data"], worker), **data})


def test_a_step_whose_result_is_on_the_log_is_skipped_though_its_offset_was_not_committed(monkeypatch):
    topics = new_topics()
    completed, timed_out, unanswered = (step_for("session-1", name) for name in ("completed", "timed-out", "unanswered"))
    produce_events(topics[0], [completed, timed_out, unanswered])
    # A worker that crashed after producing its result, before committing; the coordinator's timeout.
    timeout = result_of(timed_out, "StepFailed", "coordinator", latencyMs=30_000,
                        error={"kind": "timeout", "message": "no result within 30000 ms", "retryable": True})
    produce_events(topics[1], [
        result_of(completed, "StepStarted", "crashed"),
        result_of(completed, "StepCompleted", "crashed", outputs={"answer": "Paris"}, latencyMs=5,
                  usage={"calls": 1, "promptTokens": 1, "completionTokens": 1}, trace=[]),
    ])
    produce_events(topics[1], [{**timeout, "causationId": None}], transaction="commit")  # as the TS processors write

    with Worker(monkeypatch, topics, f"g-{uuid.uuid4()}", "w") as worker:
        wait_until_committed_to_end(worker.worker.options.group, topics[0])
    assert worker.executed == [unanswered["data"]["stepId"]]


def test_a_step_without_a_result_runs_even_when_it_was_started(monkeypatch):
    topics = new_topics()
    never_started, started, aborted = (step_for("session-2", name) for name in ("never-started", "started", "aborted"))
    produce_events(topics[0], [never_started, started, aborted])
    produce_events(topics[1], [result_of(started, "StepStarted", "crashed-mid-step")])
    timeout = result_of(aborted, "StepFailed", "coordinator", latencyMs=1, error={"kind": "timeout", "message": "late", "retryable": True})
    produce_events(topics[1], [timeout], transaction="abort")

    with Worker(monkeypatch, topics, f"g-{uuid.uuid4()}", "w") as worker:
        wait_until_committed_to_end(worker.worker.options.group, topics[0])
    assert worker.executed == [step["data"]["stepId"] for step in (never_started, started, aborted)]
    completed = [event for event in read_to_end(topics[1]) if event["type"] == "StepCompleted"]
    assert sorted(event["data"]["stepId"] for event in completed) == sorted(worker.executed)


def test_the_answers_read_are_those_since_the_committed_step(monkeypatch, caplog):
    from confluent_kafka import Consumer, TopicPartition

    from dspex_consumers.wire.partition import partition_for

    topics = new_topics()
    session = "session-3"
    old = [step_for(session, "old-1"), step_for(session, "old-2")]
    answered, unanswered = step_for(session, "answered"), step_for(session, "unanswered")
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    produce_events(topics[0], old, timestamp_ms=an_hour_ago)
    produce_events(topics[1], [result_of(step, "StepFailed", "coordinator", latencyMs=1, error={"kind": "timeout", "message": "late", "retryable": True}) for step in old], timestamp_ms=an_hour_ago)
    produce_events(topics[0], [answered, unanswered])
    produce_events(topics[1], [result_of(answered, "StepFailed", "w0", latencyMs=1, error={"kind": "parse", "message": "x", "retryable": False})])
    group, partition = f"g-{uuid.uuid4()}", partition_for(session, 3)
    committer = Consumer({"bootstrap.servers": BROKERS, "group.id": group})
    committer.commit(offsets=[TopicPartition(topics[0], partition, len(old))], asynchronous=False)
    committer.close()

    caplog.set_level("INFO", logger="dspex.kafka")
    with Worker(monkeypatch, topics, group, "w") as worker:
        wait_until_committed_to_end(group, topics[0])
    assert worker.executed == [unanswered["data"]["stepId"]]
    # The two answers of an hour before the committed step were not read: only the one since.
    assert f"{topics[0]}[{partition}]: results read since the committed step: 1 answered" in caplog.text
