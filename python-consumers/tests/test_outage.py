"""Riding through a broker outage, without a broker: which errors are ridden through, the backoff, one log
line per state change, librdkafka's connection noise, and a fatal error stopping the worker with its reason.
(test_kafka_outage.py stops a real broker.)"""

import logging

import pytest
from confluent_kafka import KafkaError, KafkaException

from dspex_consumers.executor.run import ExecutorSettings
from dspex_consumers.transports.kafka import KafkaOptions, KafkaWorker
from dspex_consumers.transports.outage import Backoff, BrokerLink, LibrdkafkaLog, unreachable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_connection_errors_are_ridden_through_and_fatal_or_permanent_ones_are_not():
    for code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._WAIT_COORD, KafkaError.NOT_COORDINATOR,
                 KafkaError._DESTROY_BROKER):
        assert unreachable(KafkaError(code))
    assert unreachable(KafkaError(KafkaError.UNKNOWN, "try again", retriable=True))
    assert not unreachable(KafkaError(KafkaError._TRANSPORT, fatal=True))
    assert not unreachable(KafkaError(KafkaError._FATAL, "fenced", fatal=True))
    assert not unreachable(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    assert not unreachable(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))


def test_the_backoff_doubles_up_to_five_seconds_and_starts_over_after_a_success():
    clock = Clock()
    backoff = Backoff(clock=clock)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert not backoff.ready()
    clock.now += 5.0
    assert backoff.ready()
    backoff.reset()
    assert backoff.ready() and backoff.next() == 0.5


def test_the_link_says_once_that_the_broker_is_down_and_once_that_it_is_back(caplog):
    caplog.set_level(logging.DEBUG, logger="dspex.kafka")
    clock = Clock()
    link = BrokerLink(clock=clock)
    link.failed("not leader for partition")  # a blip: calls fail for a moment, then work
    clock.now += 1
    link.worked()
    link.noticed(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))
    assert link.suspect and not link.down
    commit_sent_at = clock.now
    clock.now += 1
    link.failed("Failed to get metadata")
    clock.now += 3
    link.failed("Failed to get metadata")
    assert not link.down  # not for PATIENCE_S yet
    clock.now += 2
    link.failed("Failed to get metadata")
    assert link.down
    clock.now += 37
    link.worked(asked_at=commit_sent_at)  # a commit sent before the failures, answered late: no proof
    assert link.down
    link.worked()
    link.worked()
    clock.now += 10
    link.failed("3 results not delivered in 5 s", since=clock.now - 5)  # a delivery that waited 5 s
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "kafka: broker unreachable (1/1 brokers are down), retrying",
        "kafka: broker back after 42 s",
        "kafka: broker unreachable (3 results not delivered in 5 s), retrying",
    ]


def test_librdkafka_connection_failures_go_to_debug_and_other_lines_keep_their_level(caplog):
    caplog.set_level(logging.DEBUG, logger="dspex.kafka.librdkafka")
    quiet = LibrdkafkaLog()
    quiet.log(logging.ERROR, "%s [%s] %s", "FAIL", "w#consumer-1", "Connect to ipv4#127.0.0.1:1 failed: Connection refused")
    quiet.log(logging.WARNING, "%s [%s] %s", "SESSTMOUT", "w#consumer-1", "Consumer group session timed out")
    assert [(record.levelno, record.getMessage().split(" ")[0]) for record in caplog.records] == [
        (logging.DEBUG, "FAIL"), (logging.WARNING, "SESSTMOUT")]


@pytest.fixture
def worker():
    """A worker whose clients point at a port nobody listens on (they never need to connect here)."""
    created = KafkaWorker(KafkaOptions(brokers="127.0.0.1:1", worker="unit"), ExecutorSettings())
    real_consumer = created.consumer
    yield created
    real_consumer.close()
    created.answered.close()


def test_connection_errors_only_make_the_worker_suspect_an_outage(worker, caplog):
    caplog.set_level(logging.INFO, logger="dspex.kafka")
    worker._on_error(KafkaError(KafkaError._TRANSPORT, "Connect to ipv4#127.0.0.1:1 failed"))
    assert worker.link.suspect and not worker.link.down
    assert caplog.records == []
    worker._on_error(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not allowed"))
    assert [record.getMessage() for record in caplog.records] == [
        'kafka: KafkaError{code=TOPIC_AUTHORIZATION_FAILED,val=29,str="not allowed"}']


class FatalConsumer:
    """Stands in for the consumer: its first poll serves librdkafka's report of a fatal error."""

    def __init__(self, on_error):
        self.on_error = on_error
        self.closed = False

    def subscribe(self, *_, **__):
        pass

    def poll(self, *_):
        self.on_error(KafkaError(KafkaError._FATAL, "Fatal error: Broker: producer fenced", fatal=True))

    def assignment(self):
        return []

    def list_topics(self, *_, **__):  # the probe, as the producer finds nobody on port 1
        return None

    def pause(self, _):
        pass

    def close(self):
        self.closed = True


def test_a_fatal_error_stops_the_worker_with_its_reason(worker, caplog):
    caplog.set_level(logging.INFO, logger="dspex.kafka")
    worker.consumer = FatalConsumer(worker._on_error)
    assert worker.serve() == 1
    assert worker.consumer.closed
    assert "kafka: stopping: " in caplog.text and "producer fenced" in caplog.text
    with pytest.raises(KafkaException):
        worker._on_error(KafkaError(KafkaError._FATAL, "fenced", fatal=True))
