"""The Kafka transport: a consumer-group member on dspex.steps, results to dspex.step-results.

For each StepDispatched it produces StepStarted, runs the step, produces StepCompleted/StepFailed
(keyed like the step, ids derived from the dispatch id), waits for delivery, then commits the step's
offset. A step whose result is already on dspex.step-results is skipped, not run again (answered.py):
paid work runs once across new groups, restarts and redeliveries. Records that do not decode go to
dspex.dlq with their original bytes and the reason.
SIGTERM/SIGINT: the step in flight finishes and commits, then the member leaves the group.
Heartbeats run on librdkafka's own thread; max.poll.interval.ms must exceed the longest step.
"""

import logging
import os
import signal
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from ..executor.run import ExecutorSettings, execute_step
from ..wire.codec import decode_bytes, encode_event, headers_of
from ..wire.events import DLQ_TOPIC, STEP_RESULTS_TOPIC, STEPS_TOPIC, dead_letter_event
from ..worker import result_event, started_event
from .answered import AnsweredSteps, reader_config

log = logging.getLogger("dspex.kafka")


@dataclass(frozen=True)
class KafkaOptions:
    brokers: str
    group: str = "dspex-consumers"
    worker: str = "python"
    # The longest a step may take before the group considers this member dead (and reassigns its work).
    max_step_ms: int = 600_000
    steps_topic: str = STEPS_TOPIC
    results_topic: str = STEP_RESULTS_TOPIC
    dlq_topic: str = DLQ_TOPIC
    # TLS and SASL as the TS side's config (`kafka.ssl`, `kafka.sasl`): the password is read from the
    # environment variable `sasl_password_env` names, never given on the command line or in a file.
    ssl: bool = False
    sasl_mechanism: str | None = None  # plain, scram-sha-256 or scram-sha-512
    sasl_username: str | None = None
    sasl_password_env: str | None = None


SASL_MECHANISMS = {"plain": "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512"}


def security_config(options: KafkaOptions, environ: Any = os.environ) -> dict[str, Any]:
    """librdkafka's security settings for both clients; a SASL setup missing a part is a clear error."""
    if options.sasl_mechanism is None:
        return {"security.protocol": "SSL"} if options.ssl else {}
    mechanism = SASL_MECHANISMS.get(options.sasl_mechanism.lower())
    if mechanism is None:
        raise ValueError(f"Kafka SASL: unknown mechanism {options.sasl_mechanism!r} (known: {', '.join(SASL_MECHANISMS)})")
    if not options.sasl_username or not options.sasl_password_env:
        raise ValueError("Kafka SASL: a username and the name of the password's environment variable are required")
    password = environ.get(options.sasl_password_env)
    if not password:
        raise ValueError(f"Kafka SASL: the password variable {options.sasl_password_env} is not set")
    return {
        "security.protocol": "SASL_SSL" if options.ssl else "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.username": options.sasl_username,
        "sasl.password": password,
    }


def connection_config(options: KafkaOptions) -> dict[str, Any]:
    return {**security_config(options), "bootstrap.servers": options.brokers}


def consumer_config(options: KafkaOptions) -> dict[str, Any]:
    return {
        **connection_config(options),
        "group.id": options.group,
        "client.id": options.worker,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "max.poll.interval.ms": options.max_step_ms + 60_000,
        "session.timeout.ms": 45_000,
        "heartbeat.interval.ms": 3_000,
        # Incremental rebalances: a member joining or leaving does not stop everyone (no storms),
        # and partitions (hence session keys) stay where they were whenever possible.
        "partition.assignment.strategy": "cooperative-sticky",
    }


def producer_config(options: KafkaOptions) -> dict[str, Any]:
    return {
        **connection_config(options),
        "client.id": f"{options.worker}-producer",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 0,
        # The Java client's partitioner, as kafkajs and the embedded log use: the same key, the same partition.
        "partitioner": "murmur2_random",
    }


class DeliveryFailed(RuntimeError):
    pass


class KafkaWorker:
    def __init__(self, options: KafkaOptions, settings: ExecutorSettings):
        self.options = options
        self.settings = settings
        self.stopping = threading.Event()
        self.consumer = Consumer(consumer_config(options))
        self.producer = Producer(producer_config(options))
        reader = Consumer(reader_config(connection_config(options), options.worker))
        self.answered = AnsweredSteps(reader, options.steps_topic, options.results_topic)
        # The scan knows the answers up to an assignment; these are the last this worker gave since.
        self.recent: OrderedDict[str, None] = OrderedDict()

    def stop(self, *_: Any) -> None:
        log.info("stopping after the step in flight")
        self.stopping.set()

    def serve(self) -> int:
        self.consumer.subscribe([self.options.steps_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("member of %s on %s", self.options.group, self.options.steps_topic)
        try:
            while not self.stopping.is_set():
                message = self.consumer.poll(0.5)
                if message is None:
                    continue
                if message.error():
                    self._on_error(message.error())
                    continue
                self._handle(message)
                self._commit(message)
        finally:
            self.producer.flush(30)
            self.consumer.close()  # commits nothing more, leaves the group now: no wait for a session timeout
            self.answered.close()
        return 0

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _partition_list(partitions))
        self.answered.assigned([tp.partition for tp in partitions])

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside poll(), so never while a step runs: the result of the last step is out and its
        # offset committed before the next owner of the partition starts reading it.
        log.info("revoked %s", _partition_list(partitions))
        self.answered.revoked([tp.partition for tp in partitions])

    def _commit(self, message: Message) -> None:
        """Commits after the result is out; a commit that loses a rebalance race is not fatal: the new
        owner of the partition finds the step's result on the log and skips it."""
        try:
            self.consumer.commit(message=message, asynchronous=False)
        except KafkaException as error:
            if error.args and error.args[0].fatal():
                raise
            log.warning("kafka: commit of %s[%d]@%d lost to a rebalance: %s", message.topic(),
                        message.partition(), message.offset(), error)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            raise KafkaException(error)
        log.warning("kafka: %s", error)

    def _handle(self, message: Message) -> None:
        raw = message.value() or b""
        decoded = decode_bytes(raw)
        if not decoded.ok or decoded.event["type"] != "StepDispatched":
            reason = decoded.reason or f"{decoded.event['type']} does not belong on {self.options.steps_topic}"
            self._dead_letter(message, raw, reason)
            return
        dispatched = decoded.event
        step_id = dispatched["data"]["stepId"]
        if self.answered.contains(message, step_id) or step_id in self.recent:
            log.info("step %s skipped: its result is already on %s", step_id, self.options.results_topic)
            return
        self._produce([started_event(dispatched, self.options.worker)])
        outcome = execute_step(dispatched["data"], self.settings)
        result = result_event(dispatched, outcome, self.options.worker)
        self._produce([result])
        self._remember(step_id)
        log.info("step %s %s in %.0f ms", step_id, result["type"], outcome.latency_ms)

    def _remember(self, step_id: str) -> None:
        self.recent[step_id] = None
        while len(self.recent) > 1000:
            self.recent.popitem(last=False)

    def _dead_letter(self, message: Message, raw: bytes, reason: str) -> None:
        key = (message.key() or b"").decode("utf-8", "replace")
        letter = dead_letter_event(
            raw, reason, message.topic(), message.partition(), message.offset(), self.options.group, key
        )
        log.warning("dead-lettered %s/%s/%s: %s", message.topic(), message.partition(), message.offset(), reason)
        self._produce([letter], topic=self.options.dlq_topic)

    def _produce(self, events: list[dict[str, Any]], topic: str | None = None) -> None:
        """Produces and waits until the broker has them all: only then may the input offset be committed."""
        failures: list[str] = []

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                failures.append(str(error))

        for event in events:
            self.producer.produce(
                topic or self.options.results_topic,
                key=event["key"].encode("utf-8"),
                value=encode_event(event),
                headers=headers_of(event),
                on_delivery=delivered,
            )
        remaining = self.producer.flush(30)
        if failures or remaining:
            raise DeliveryFailed(f"results not delivered ({remaining} pending): {'; '.join(failures)}")


def _partition_list(partitions: list[Any]) -> str:
    """"topic[0,2]" per topic, for the assignment log lines (`dspex workers` shows them)."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return " ".join(f"{topic}[{','.join(map(str, sorted(ps)))}]" for topic, ps in by_topic.items()) or "nothing"


def serve_kafka(options: KafkaOptions, settings: ExecutorSettings) -> int:
    worker = KafkaWorker(options, settings)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    return worker.serve()
