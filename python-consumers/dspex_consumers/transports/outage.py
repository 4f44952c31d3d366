"""Riding through an outage of the broker: which errors mean it cannot be reached, the waits between
retries, and the state of the link, said once when it goes down and once when it is back."""

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

log = logging.getLogger("dspex.kafka")

# The broker, the group's coordinator or a partition's leader cannot be reached right now: librdkafka
# keeps reconnecting, and the worker keeps retrying.
UNREACHABLE = frozenset({
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._RESOLVE,
    KafkaError._TIMED_OUT,
    KafkaError._TIMED_OUT_QUEUE,
    KafkaError._WAIT_COORD,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.NOT_ENOUGH_REPLICAS,
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    # A cluster node left the metadata (killed): a request in flight to it fails with this (seen in the soak).
    KafkaError._DESTROY_BROKER,
})


def unreachable(error: KafkaError) -> bool:
    """Whether `error` only says that the broker cannot be reached for now (a fatal error never does)."""
    return not error.fatal() and (error.code() in UNREACHABLE or error.retriable())


class Backoff:
    """Waits between retries: 0.5 s, doubling up to 5 s, back to 0.5 s after a success (`reset`)."""

    def __init__(self, first_s: float = 0.5, most_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.first_s, self.most_s, self.clock = first_s, most_s, clock
        self.delay_s = first_s
        self.ready_at = 0.0

    def next(self) -> float:
        """The next wait; `ready()` is False until it has passed."""
        delay = self.delay_s
        self.delay_s = min(delay * 2, self.most_s)
        self.ready_at = self.clock() + delay
        return delay

    def ready(self) -> bool:
        return self.clock() >= self.ready_at

    def reset(self) -> None:
        self.delay_s = self.first_s
        self.ready_at = 0.0


# A broker that has answered none of the worker's calls for this long is unreachable (a leader moving or a
# broker starting up fails calls for a moment without being an outage).
PATIENCE_S = 5.0


class BrokerLink:
    """Whether the broker answers the worker's own calls (deliveries, commits, reads, probes): down once they
    have failed for PATIENCE_S, back at the first that works. librdkafka's connection errors only make it
    `suspect` and give the reason: they arrive late (when the client is polled), so one from before a
    recovery must not announce a new outage."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.failing_since: float | None = None
        self.down_since: float | None = None
        self.suspect = False
        self.last_error: str | None = None

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def noticed(self, error: KafkaError) -> None:
        self.suspect = True
        self.last_error = error.str()

    def failed(self, reason: str, since: float | None = None) -> None:
        """A call failed (`since`: when it was made, if it waited for an answer until now)."""
        now = self.clock()
        began = now if since is None else since
        self.failing_since = began if self.failing_since is None else min(self.failing_since, began)
        if self.down_since is None and now - self.failing_since >= PATIENCE_S:
            self.down_since = self.failing_since
            log.warning("kafka: broker unreachable (%s), retrying", self.last_error or reason)

    def worked(self, asked_at: float | None = None) -> None:
        """`asked_at`: when the call that worked was made (a commit's answer is read later); one made
        before the failures began says nothing about their end."""
        if asked_at is not None and self.failing_since is not None and asked_at < self.failing_since:
            return
        if self.down_since is not None:
            log.info("kafka: broker back after %.0f s", self.clock() - self.down_since)
        self.failing_since = self.down_since = None
        self.suspect = False
        self.last_error = None


librdkafka_log = logging.getLogger("dspex.kafka.librdkafka")
CONNECTION_FACILITY = "FAIL"


class LibrdkafkaLog:
    """The clients' `logger`. librdkafka logs every failed connection attempt (several a second during an
    outage): those go to debug, since the link reports the outage once; other lines keep their level."""

    def log(self, level: int, fmt: str, *args: Any) -> None:
        facility = args[0] if args else None
        librdkafka_log.log(logging.DEBUG if facility == CONNECTION_FACILITY else level, fmt, *args)
