"""The Kafka transport: a consumer-group member on dspex.steps, results to dspex.step-results.

For each StepDispatched it produces StepStarted, runs the step, produces StepCompleted/StepFailed
(keyed like the step, ids derived from the dispatch id), waits for delivery, then commits the step's
offset. A step whose result is already on dspex.step-results is skipped, not run again (answered.py):
paid work runs once across new groups, restarts and redeliveries. Records that do not decode go to
dspex.dlq with their original bytes and the reason.
An outage of the broker is ridden through (outage.py): results wait in the idempotent producer and the
worker takes no new step until they are delivered; commits and reads are retried with backoff; one line
says the broker is unreachable, one that it is back. Only a fatal librdkafka error stops the worker.
SIGTERM/SIGINT: the step in flight finishes and commits, then the member leaves the group; during an
outage it waits STOP_GRACE_S more for the results, then leaves without them (and says which).
Heartbeats run on librdkafka's own thread; max.poll.interval.ms must exceed the longest step.
"""

import logging
import os
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from ..executor.run import ExecutorSettings, execute_step
from ..wire.codec import decode_bytes, encode_event, headers_of
from ..wire.events import DLQ_TOPIC, STEP_RESULTS_TOPIC, STEPS_TOPIC, dead_letter_event
from ..worker import result_event, started_event
from .answered import AnsweredSteps, reader_config
from .outage import PATIENCE_S, Backoff, BrokerLink, LibrdkafkaLog, unreachable

log = logging.getLogger("dspex.kafka")
T = TypeVar("T")


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
    return {
        **security_config(options),
        "bootstrap.servers": options.brokers,
        # librdkafka's own backoff between connection attempts (default up to 10 s): a broker that is back
        # is found within 2 s.
        "reconnect.backoff.max.ms": 2000,
    }


def consumer_config(options: KafkaOptions) -> dict[str, Any]:
    return {
        **connection_config(options),
        "group.id": options.group,
        "client.id": options.worker,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "max.poll.interval.ms": options.max_step_ms + 60_000,
        # As the TS processors' (streams/kafka): the partitions of a member that died move within 10 s, and so
        # does the group after a broker restart (the members from before it expire).
        "session.timeout.ms": 10_000,
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
        # A result waits in the producer until the broker has it, however long an outage lasts (0: no
        # limit); the idempotent producer's retries never write it twice.
        "message.timeout.ms": 0,
        # The Java client's partitioner, as kafkajs and the embedded log use: the same key, the same partition.
        "partitioner": "murmur2_random",
    }


# After SIGTERM during an outage: one more wait for the results, then the worker leaves without them.
STOP_GRACE_S = 5.0
# The longest the last commits and the consumer's close take when leaving.
CLOSE_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 2.0


class DeliveryFailed(RuntimeError):
    pass


class Interrupted(Exception):
    """SIGTERM while the broker was unreachable: the step at hand stays uncommitted."""


class Delivery:
    """The events of one produce call that the broker has not confirmed yet, and the permanent failures."""

    def __init__(self) -> None:
        self.pending: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []

    def track(self, event: dict[str, Any]) -> Callable[[KafkaError | None, Message], None]:
        self.pending[event["id"]] = event

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is None:
                self.pending.pop(event["id"], None)
            else:
                self.failures.append(f"{describe(event)}: {error.str()}")

        return delivered

    @property
    def waiting(self) -> bool:
        return bool(self.pending) and not self.failures


def describe(event: dict[str, Any]) -> str:
    step_id = (event.get("data") or {}).get("stepId")
    return f"{event['type']} of step {step_id}" if step_id else f"{event['type']} {event['id']}"


class KafkaWorker:
    def __init__(self, options: KafkaOptions, settings: ExecutorSettings):
        self.options = options
        self.settings = settings
        self.stopping = threading.Event()
        self.link = BrokerLink()
        callbacks = {"error_cb": self._on_error, "logger": LibrdkafkaLog()}
        self.consumer = Consumer({**consumer_config(options), **callbacks, "on_commit": self._on_commit})
        self.producer = Producer({**producer_config(options), **callbacks})
        reader = Consumer({**reader_config(connection_config(options), options.worker), **callbacks})
        self.answered = AnsweredSteps(reader, options.steps_topic, options.results_topic)
        # The scan knows the answers up to an assignment; these are the last this worker gave since.
        self.recent: OrderedDict[str, None] = OrderedDict()
        # (topic, partition) → the offset to commit: its steps are answered, their results on the log.
        self.uncommitted: dict[tuple[str, int], int] = {}
        self.commit_sent_at: float | None = None  # while a commit is in flight
        self.commit_backoff = Backoff()
        self.probe_backoff = Backoff()
        self.paused: list[TopicPartition] = []  # while results wait for the broker

    def stop(self, *_: Any) -> None:
        log.info("stopping after the step in flight")
        self.stopping.set()

    def serve(self) -> int:
        self.consumer.subscribe([self.options.steps_topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        log.info("member of %s on %s", self.options.group, self.options.steps_topic)
        try:
            self._serve_steps()
        except Interrupted:
            pass
        except (KafkaException, DeliveryFailed) as error:
            log.error("kafka: stopping: %s", error)
            return 1
        finally:
            self._leave()
        return 0

    def _serve_steps(self) -> None:
        while not self.stopping.is_set():
            self._between_polls()
            message = self.consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                self._on_error(message.error())
                continue
            self._handle(message)
            self._mark_answered(message)

    def _between_polls(self) -> None:
        self.producer.poll(0)  # its error and log callbacks
        self._commit_uncommitted()
        self._probe_if_in_doubt()

    def _on_assign(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _partition_list(partitions))
        self.answered.assigned([tp.partition for tp in partitions])

    def _on_revoke(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside poll(), so never while a step runs: the result of the last step is out and its
        # offset committed before the next owner of the partition starts reading it. (Polls also go on while
        # results wait out an outage: a revoke as the broker comes back, before they are delivered, may let
        # the next owner run that step again.)
        log.info("revoked %s", _partition_list(partitions))
        self._commit_now([tp for tp in partitions if (tp.topic, tp.partition) in self.uncommitted])
        self._forget(partitions)

    def _on_lost(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Out of the group (an outage longer than the session): nothing can be committed for these; whoever
        gets them next re-reads the uncommitted steps and skips those answered."""
        log.info("lost %s", _partition_list(partitions))
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        self.answered.revoked([tp.partition for tp in partitions])
        for tp in partitions:
            self.uncommitted.pop((tp.topic, tp.partition), None)

    def _on_error(self, error: KafkaError) -> None:
        """error_cb of the three clients (served by their poll and flush), and errors that poll returns."""
        if error.fatal():
            raise KafkaException(error)
        if unreachable(error):
            self.link.noticed(error)
        else:
            log.warning("kafka: %s", error)

    # --- commits: after the results are on the log, asynchronous, retried while the partition is ours ---

    def _mark_answered(self, message: Message) -> None:
        """Unless the partition went to another member meanwhile (its steps are theirs to commit)."""
        partition = (message.topic(), message.partition())
        if partition in {(tp.topic, tp.partition) for tp in self.consumer.assignment()}:
            self.uncommitted[partition] = message.offset() + 1
            self._commit_uncommitted()

    def _commit_uncommitted(self) -> None:
        if not self.uncommitted or self.commit_sent_at is not None or not self.commit_backoff.ready():
            return
        self.consumer.commit(offsets=self._offsets(self.uncommitted), asynchronous=True)
        self.commit_sent_at = time.monotonic()

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        sent_at, self.commit_sent_at = self.commit_sent_at, None
        failure = error or next((tp.error for tp in partitions if tp.error is not None), None)
        for tp in partitions:
            if tp.error is None and error is None and self.uncommitted.get((tp.topic, tp.partition)) == tp.offset:
                del self.uncommitted[(tp.topic, tp.partition)]
        if failure is None:
            self.commit_backoff.reset()
            self.link.worked(asked_at=sent_at)
            return
        self.commit_backoff.next()
        if failure.fatal():
            raise KafkaException(failure)
        if unreachable(failure):
            self.link.noticed(failure)
        else:
            log.info("kafka: commit of %s failed (%s), retrying while they are this member's",
                     _partition_list(partitions), failure.str())

    def _commit_now(self, partitions: list[TopicPartition]) -> None:
        """A synchronous commit before a revoke (the broker is there: it runs the rebalance). One that fails
        is not fatal: the next owner of the partition finds the steps' results on the log and skips them."""
        offsets = self._offsets({key: offset for key, offset in self.uncommitted.items() if key in
                                 {(tp.topic, tp.partition) for tp in partitions}})
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exception:
            if exception.args[0].fatal():
                raise
            log.warning("kafka: commit of %s failed: %s", _partition_list(offsets), exception)

    @staticmethod
    def _offsets(uncommitted: dict[tuple[str, int], int]) -> list[TopicPartition]:
        return [TopicPartition(topic, partition, offset) for (topic, partition), offset in uncommitted.items()]

    def _probe_if_in_doubt(self) -> None:
        """Between steps nothing else tells whether the broker went down or came back: a metadata request."""
        if not (self.link.down or self.link.suspect) or not self.probe_backoff.ready():
            return
        try:
            self.consumer.list_topics(self.options.steps_topic, timeout=PROBE_TIMEOUT_S)
        except KafkaException as exception:
            if not unreachable(exception.args[0]):
                raise
            self.probe_backoff.next()
            self.link.failed(exception.args[0].str())
            return
        self.probe_backoff.reset()
        self.link.worked()

    def _leave(self) -> None:
        """Commits what it can and leaves the group at once (no wait for a session timeout)."""
        self._commit_before_leaving()
        self.producer.flush(STOP_GRACE_S)
        self._close_consumer()
        self.answered.close()

    def _commit_before_leaving(self) -> None:
        """Asynchronous commits, waited for a bounded time: a synchronous one sent as the broker goes away
        would wait for it to come back."""
        self.consumer.pause(self.consumer.assignment())
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while self.uncommitted and not self.link.down and time.monotonic() < deadline:
            self._commit_uncommitted()
            self.consumer.poll(0.1)
        if self.uncommitted:
            log.warning("kafka: %s not committed: the next owner finds those steps' results on the log and skips "
                        "them", _partition_list(self._offsets(self.uncommitted)))
            self.uncommitted.clear()

    def _close_consumer(self) -> None:
        """close() waits for a commit that was on its way when the broker went down until the broker is back."""
        closing = threading.Thread(target=self.consumer.close, name="kafka-consumer-close", daemon=True)
        closing.start()
        closing.join(CLOSE_TIMEOUT_S)
        if closing.is_alive():
            log.warning("kafka: leaving without a goodbye to the group (the broker is unreachable); it drops this "
                        "member after its session timeout")

    # --- steps ---

    def _handle(self, message: Message) -> None:
        raw = message.value() or b""
        decoded = decode_bytes(raw)
        if not decoded.ok or decoded.event["type"] != "StepDispatched":
            reason = decoded.reason or f"{decoded.event['type']} does not belong on {self.options.steps_topic}"
            self._dead_letter(message, raw, reason)
            return
        dispatched = decoded.event
        step_id = dispatched["data"]["stepId"]
        if self._while_unreachable(lambda: self.answered.contains(message, step_id)) or step_id in self.recent:
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

    def _while_unreachable(self, call: Callable[[], T]) -> T:
        """`call()`, retried with backoff for as long as it fails only because the broker is unreachable."""
        backoff, failed = Backoff(), False
        while True:
            try:
                result = call()
            except KafkaException as exception:
                if not unreachable(exception.args[0]):
                    raise
                self.link.failed(exception.args[0].str())
                failed = True
                if self.stopping.wait(backoff.next()):
                    raise Interrupted from exception
                continue
            if failed:
                self.link.worked()
            return result

    def _dead_letter(self, message: Message, raw: bytes, reason: str) -> None:
        key = (message.key() or b"").decode("utf-8", "replace")
        letter = dead_letter_event(
            raw, reason, message.topic(), message.partition(), message.offset(), self.options.group, key
        )
        log.warning("dead-lettered %s/%s/%s: %s", message.topic(), message.partition(), message.offset(), reason)
        self._produce([letter], topic=self.options.dlq_topic)

    # --- results: the offset of a step is committed only once they are on the log ---

    def _produce(self, events: list[dict[str, Any]], topic: str | None = None) -> None:
        """Produces and waits until the broker has them all, through an outage if need be."""
        delivery, produced_at = Delivery(), time.monotonic()
        for event in events:
            self.producer.produce(
                topic or self.options.results_topic,
                key=event["key"].encode("utf-8"),
                value=encode_event(event),
                headers=headers_of(event),
                on_delivery=delivery.track(event),
            )
        self.producer.flush(PATIENCE_S)
        if delivery.waiting:
            self.link.failed(f"{len(delivery.pending)} results not delivered in {PATIENCE_S:.0f} s", since=produced_at)
            self._keep_flushing(delivery)
        if delivery.failures:
            raise DeliveryFailed(f"results not delivered: {'; '.join(delivery.failures)}")
        self.link.worked()

    def _keep_flushing(self, delivery: Delivery) -> None:
        """The producer keeps the results and retries; meanwhile this member takes no new step (its
        partitions are paused) but keeps polling, so it stays in its group."""
        backoff = Backoff()
        self._pause(self.consumer.assignment())
        try:
            while delivery.waiting:
                if self.stopping.is_set():
                    self._last_chance(delivery)
                    return
                self._poll_paused()
                self.producer.flush(backoff.next())
        finally:
            # Exactly those paused: a partition lost and assigned again meanwhile is still paused.
            self.consumer.resume(self.paused)
            self.paused = []

    def _pause(self, partitions: list[TopicPartition]) -> None:
        self.consumer.pause(partitions)
        self.paused.extend(partitions)

    def _poll_paused(self) -> None:
        message = self.consumer.poll(0)
        if message is None:
            return
        if message.error():
            self._on_error(message.error())
            return
        # From a partition assigned during the wait (not paused yet): put back until the wait is over.
        step = TopicPartition(message.topic(), message.partition(), message.offset())
        self._pause([step])
        self.consumer.seek(step)

    def _last_chance(self, delivery: Delivery) -> None:
        """SIGTERM during an outage: one more wait, then the worker leaves without these results."""
        self.producer.flush(STOP_GRACE_S)
        if not delivery.waiting:
            return
        undelivered = [describe(event) for event in delivery.pending.values()]
        self.producer.purge()
        log.warning("kafka: stopping; not delivered: %s (the step is not committed: the partition's next owner runs "
                    "it again unless its results reached the log)", ", ".join(undelivered))
        raise Interrupted


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
