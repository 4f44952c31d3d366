"""Which steps already have a result on dspex.step-results: a step answered once is never run again.

Results are keyed like their steps, so the answers to the steps of dspex.steps[p] are on
dspex.step-results[p] (both topics having as many partitions). When this consumer is given partition p,
the first step it reads there is the one at the group's committed offset (or the partition's first step
when the group has none): it reads step-results[p] from that step's timestamp up to the partition's end,
and keeps the ids of the steps that have a StepCompleted or a StepFailed (from a worker, or the
coordinator's timeout). That covers a new group, a restart, a redelivery, and a crash between producing
a result and committing its step. As it reads on, it forgets answers older than the steps it reads.
A call the broker does not answer within BROKER_TIMEOUT_S raises (the worker retries it while the broker
is unreachable); the scan then starts over.
"""

import json
import logging
import time
from collections import OrderedDict
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message, TopicPartition

log = logging.getLogger("dspex.kafka")

ANSWERS = ("StepCompleted", "StepFailed")
# Timestamps come from the clocks of different producers (the coordinator's, the workers'), and a
# record may be appended a while after it was created: the scan starts this much earlier, and an answer
# is forgotten only once the steps read are this much newer than it.
CLOCK_MARGIN_MS = 5 * 60_000
BROKER_TIMEOUT_S = 10
UNKNOWN_TIME = 2**63 - 1  # an answer without a timestamp is kept as long as its partition is owned


class AnsweredSteps:
    def __init__(self, reader: Consumer, steps_topic: str, results_topic: str):
        """`reader`: a consumer that only assign()s (it joins no group and commits nothing)."""
        self.reader = reader
        self.steps_topic = steps_topic
        self.results_topic = results_topic
        self.unscanned: set[int] = set()
        self.answered: dict[int, OrderedDict[str, int]] = {}  # partition → step id → its answer's timestamp

    def close(self) -> None:
        self.reader.close()

    def assigned(self, partitions: list[int]) -> None:
        self.unscanned.update(partitions)

    def revoked(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.unscanned.discard(partition)
            self.answered.pop(partition, None)

    def contains(self, step: Message, step_id: str) -> bool:
        """Whether `step_id`, read from `step`'s partition, has a result on the log."""
        partition, timestamp = step.partition(), timestamp_of(step)
        if partition in self.unscanned:
            self.answered[partition] = self._scan(partition, timestamp)
            self.unscanned.discard(partition)
        answered = self.answered.setdefault(partition, OrderedDict())
        if timestamp is not None:
            forget_older_than(answered, timestamp - CLOCK_MARGIN_MS)
        return step_id in answered

    def _scan(self, partition: int, since: int | None) -> OrderedDict[str, int]:
        ranges = self._ranges(self._result_partitions_for(partition), since)
        answered: OrderedDict[str, int] = OrderedDict()
        if ranges:
            self._read(ranges, answered)
        log.info("%s[%d]: results read since the committed step: %d answered", self.steps_topic, partition, len(answered))
        return answered

    def _result_partitions_for(self, partition: int) -> list[int]:
        steps, results = self._partition_count(self.steps_topic), self._partition_count(self.results_topic)
        if steps == results:
            return [partition]
        log.warning("%s has %d partitions and %s %d: they are not co-partitioned, so every partition of the "
                    "results is read", self.steps_topic, steps, self.results_topic, results)
        return list(range(results))

    def _partition_count(self, topic: str) -> int:
        metadata = self.reader.list_topics(topic, timeout=BROKER_TIMEOUT_S).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        return len(metadata.partitions)

    def _ranges(self, partitions: list[int], since: int | None) -> dict[int, tuple[int, int]]:
        """Partition → [start, end) to read: from `since` (ms, less the margin) to the end as of now."""
        ends = {p: self.reader.get_watermark_offsets(self._tp(p), BROKER_TIMEOUT_S, cached=False) for p in partitions}
        if since is None:
            starts = {p: low for p, (low, _) in ends.items()}
        else:
            wanted = [self._tp(p, max(0, since - CLOCK_MARGIN_MS)) for p in partitions]
            found = self.reader.offsets_for_times(wanted, BROKER_TIMEOUT_S)
            starts = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition][1] for tp in found}
        return {p: (starts[p], high) for p, (_, high) in ends.items() if starts[p] < high}

    def _read(self, ranges: dict[int, tuple[int, int]], answered: OrderedDict[str, int]) -> None:
        self.reader.assign([self._tp(p, start) for p, (start, _) in ranges.items()])
        unread = set(ranges)
        last_read = time.monotonic()
        try:
            while unread:
                messages = self.reader.consume(500, timeout=1.0)
                if messages:
                    last_read = time.monotonic()
                elif time.monotonic() - last_read > BROKER_TIMEOUT_S:
                    raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{self.results_topic}: nothing read in {BROKER_TIMEOUT_S} s"))
                for message in messages:
                    if reached_end(message, ranges):
                        unread.discard(message.partition())
                    if message.error() is None:
                        note_answer(message, answered)
                    elif message.error().code() != KafkaError._PARTITION_EOF:
                        warn_unless_fatal(message.error())
        finally:
            self.reader.unassign()

    def _tp(self, partition: int, offset: int = OFFSET_BEGINNING) -> TopicPartition:
        return TopicPartition(self.results_topic, partition, offset)


def reader_config(common: dict[str, Any], name: str) -> dict[str, Any]:
    """The scan's consumer. confluent-kafka wants a group.id, but assign() never joins that group and
    nothing is committed to it. read_committed: an aborted result answers nothing."""
    return {
        **common,
        "group.id": f"{name}-answered-steps",
        "client.id": f"{name}-answered-steps",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "isolation.level": "read_committed",
    }


def reached_end(message: Message, ranges: dict[int, tuple[int, int]]) -> bool:
    """The last record of its range, or the partition's end (an aborted or a control record can be last)."""
    error = message.error()
    if error is not None:
        return error.code() == KafkaError._PARTITION_EOF
    return message.offset() + 1 >= ranges[message.partition()][1]


def warn_unless_fatal(error: KafkaError) -> None:
    if error.fatal():
        raise KafkaException(error)
    log.warning("kafka: %s", error)


def note_answer(message: Message, answered: OrderedDict[str, int]) -> None:
    try:
        event = json.loads(message.value() or b"")
    except (ValueError, RecursionError):
        return  # not an answer (the processors dead-letter it)
    if not isinstance(event, dict) or event.get("type") not in ANSWERS or not isinstance(event.get("data"), dict):
        return
    step_id = event["data"].get("stepId")
    if isinstance(step_id, str):
        timestamp = timestamp_of(message)
        answered[step_id] = UNKNOWN_TIME if timestamp is None else timestamp


def forget_older_than(answered: OrderedDict[str, int], oldest: int) -> None:
    """Answers come in log order, so the oldest are first: drops them up to the first one still recent."""
    while answered and next(iter(answered.values())) < oldest:
        answered.popitem(last=False)


def timestamp_of(message: Message) -> int | None:
    kind, value = message.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE else value
