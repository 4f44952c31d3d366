"""The events a consumer writes: StepStarted / StepCompleted / StepFailed and DeadLettered envelopes."""

import base64
from datetime import UTC, datetime
from typing import Any

from .ids import derived_id

STEP_RESULTS_TOPIC = "dspex.step-results"
DLQ_TOPIC = "dspex.dlq"
STEPS_TOPIC = "dspex.steps"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def step_ref(step: dict[str, Any], worker: str) -> dict[str, Any]:
    return {
        "stepId": step["stepId"],
        "executionId": step["executionId"],
        "stageId": step["stageId"],
        "attempt": step["attempt"],
        "worker": worker,
    }


def step_result_event(dispatched: dict[str, Any], event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """A result of `dispatched`; its id derives from the dispatch id, as tests/support/test-executor.ts.
    It is keyed like its step (the session key), so dspex.step-results is co-partitioned with dspex.steps."""
    step = dispatched["data"]
    discriminator = {"StepStarted": "started", "StepCompleted": "completed", "StepFailed": "failed"}[event_type]
    return {
        "id": derived_id(dispatched["id"], discriminator),
        "type": event_type,
        "schemaVersion": 1,
        "stream": f"execution-{step['executionId']}",
        "key": dispatched["key"],
        "occurredAt": now_iso(),
        "correlationId": dispatched["correlationId"],
        "causationId": dispatched["id"],
        "data": data,
    }


# Bounds of a dead letter, as streams/store.ts: it must fit under the event size limit whatever it carries.
MAX_DEAD_LETTER_ORIGINAL_BYTES = 256 * 1024
MAX_REASON_LENGTH = 2_000
MAX_DEAD_LETTER_KEY_LENGTH = 1_000


def dead_letter_event(original: bytes, reason: str, topic: str, partition: int, offset: int, consumer: str, key: str) -> dict[str, Any]:
    """The dead letter of a record that could not be used, built like `deadLetterOf` in streams/store.ts."""
    kept = original[:MAX_DEAD_LETTER_ORIGINAL_BYTES]
    note = f" (original cut to its first {len(kept)} of {len(original)} bytes)" if len(kept) < len(original) else ""
    try:
        text, encoding = kept.decode("utf-8"), "utf8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    reason = (reason if len(reason) <= MAX_REASON_LENGTH else f"{reason[:MAX_REASON_LENGTH]}...") + note
    source_id = f"{topic}/{partition}/{offset}"
    key = key if len(key) <= MAX_DEAD_LETTER_KEY_LENGTH else ""
    return {
        "id": derived_id(source_id, "dead-letter"),
        "type": "DeadLettered",
        "schemaVersion": 1,
        "stream": f"dlq-{topic}",
        "key": key or source_id,
        "occurredAt": now_iso(),
        "correlationId": source_id,
        "causationId": None,
        "data": {
            "source": {"topic": topic, "partition": partition, "offset": str(offset), "consumer": consumer},
            "reason": reason,
            "original": text,
            "encoding": encoding,
        },
    }
