"""The stdio transport, spawned for real: frames, ready, ping while busy, steps, bad frames, shutdown."""

import json
import os
import struct
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import REPO, load_json

from dspex_consumers.transports.frames import FrameError, encode_frame, read_frame
from dspex_consumers.wire.schemas import validate_event

DISPATCHED = load_json(REPO / "tests" / "vectors" / "events" / "StepDispatched.v1.json")


class Worker:
    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dspex_consumers", "--transport", "stdio", "--worker", "w1", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

    def send(self, message: dict[str, Any]) -> None:
        self.process.stdin.write(encode_frame(message))
        self.process.stdin.flush()

    def send_raw(self, body: bytes) -> None:
        self.process.stdin.write(struct.pack(">I", len(body)) + body)
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        body = read_frame(self.process.stdout)
        assert body is not None, "worker closed stdout"
        return json.loads(body)


@pytest.fixture(scope="module")
def answers(tmp_path_factory):
    path = tmp_path_factory.mktemp("answers") / "answers.json"
    path.write_text(json.dumps({"Capital of France?": {"answer": "Paris"}}))
    return path


@pytest.fixture
def worker(answers):
    started = Worker("--test-answers", str(answers))
    yield started
    if started.process.poll() is None:
        started.process.kill()
    started.process.wait(10)


def test_ready_then_a_step_gives_one_result_with_its_start(worker):
    ready = worker.receive()
    assert ready["type"] == "ready" and ready["worker"] == "w1"
    worker.send({"type": "step", "id": 7, "event": DISPATCHED})
    result = worker.receive()
    assert (result["type"], result["id"], result["event"]["type"]) == ("result", 7, "StepCompleted")
    assert result["started"]["type"] == "StepStarted"
    assert result["started"]["data"]["stepId"] == result["event"]["data"]["stepId"]
    assert result["started"]["occurredAt"] <= result["event"]["occurredAt"]
    assert result["event"]["data"]["outputs"] == {"answer": "Paris"}
    assert result["event"]["data"]["worker"] == "w1"
    validate_event(result["started"])
    validate_event(result["event"])


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="scheduling policies are Linux's")
def test_the_worker_and_the_threads_it_starts_are_batch_tasks(worker):
    assert worker.receive()["type"] == "ready"
    worker.send({"type": "step", "id": 1, "event": DISPATCHED})
    assert worker.receive()["type"] == "result"
    pid = worker.process.pid
    policies = [os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{pid}/task")]
    assert os.sched_getscheduler(pid) == os.SCHED_BATCH
    # the main thread, the step runner and the deadline watchdog (a library may have started others at import)
    assert policies.count(os.SCHED_BATCH) >= 3, policies


def test_pings_are_answered_while_a_step_runs(worker):
    worker.receive()
    slow = json.loads(json.dumps(DISPATCHED))
    slow["data"]["lm"]["model"] = "dspex/test?latency_ms=1500"
    worker.send({"type": "step", "id": 1, "event": slow})
    # Pinged until the step has begun (the runner thread takes it from the reader's queue).
    for ping in range(2, 200):
        worker.send({"type": "ping", "id": ping})
        pong = worker.receive()
        assert pong["type"] == "pong", pong
        if pong["busy"]:
            break
    capacity = pong.pop("capacity")
    assert pong == {"type": "pong", "id": ping, "worker": "w1", "busy": True, "done": 0, "overdue": 0}
    assert capacity["models"] == [] and capacity["rssMb"] > 0  # the step in flight has not finished
    result = worker.receive()
    assert result["type"] == "result"
    assert result["capacity"]["models"] == ["dspex/test?latency_ms=1500"]


def test_bad_frames_get_errors_and_the_worker_lives_on(worker):
    worker.receive()
    worker.send_raw(b"{not json")
    assert worker.receive()["type"] == "error"
    worker.send({"type": "step", "id": 3, "event": {"type": "StepDispatched"}})
    error = worker.receive()
    assert error["type"] == "error" and error["id"] == 3 and error["reason"].startswith("not a dspex envelope: id: is required;")
    worker.send({"type": "teleport", "id": 4})
    assert worker.receive()["reason"] == "unknown message type 'teleport'"
    worker.send({"type": "ping", "id": 5})
    assert worker.receive()["type"] == "pong"


def test_a_step_over_the_event_limit_or_nested_too_deeply_is_refused_with_the_reason(worker):
    worker.receive()
    huge = json.loads(json.dumps(DISPATCHED))
    huge["data"]["inputs"]["question"] = "x" * 1_000_001
    worker.send({"type": "step", "id": 1, "event": huge})
    error = worker.receive()
    assert (error["type"], error["id"]) == ("error", 1)
    assert error["reason"].startswith("value is ") and error["reason"].endswith("bytes, over the limit of 1000000")
    deep = json.loads(json.dumps(DISPATCHED))
    nested: Any = "bottom"
    for _ in range(70):
        nested = [nested]
    deep["data"]["inputs"]["question"] = nested
    worker.send({"type": "step", "id": 2, "event": deep})
    assert worker.receive()["reason"] == "value nests arrays and objects deeper than 64 levels"
    worker.send({"type": "step", "id": 3, "event": DISPATCHED})
    assert worker.receive()["event"]["type"] == "StepCompleted"


def test_a_failing_step_is_a_result_not_a_dead_worker(worker):
    worker.receive()
    broken = json.loads(json.dumps(DISPATCHED))
    broken["data"]["inputs"] = {}
    worker.send({"type": "step", "id": 1, "event": broken})
    failed = worker.receive()["event"]
    assert failed["type"] == "StepFailed" and failed["data"]["error"]["kind"] == "bad_request"
    worker.send({"type": "ping", "id": 2})
    assert worker.receive()["done"] == 1


def test_a_step_past_its_deadline_is_answered_as_a_timeout_and_the_next_steps_run_meanwhile(worker):
    worker.receive()
    slow = json.loads(json.dumps(DISPATCHED))
    slow["data"]["lm"]["model"] = "dspex/test?latency_ms=1500"
    slow["data"]["timeoutMs"] = 200
    worker.send({"type": "step", "id": 1, "event": slow})
    worker.send({"type": "step", "id": 2, "event": DISPATCHED})
    timed_out, completed = worker.receive(), worker.receive()
    assert (timed_out["id"], timed_out["event"]["type"]) == (1, "StepFailed")
    assert timed_out["event"]["data"]["error"]["kind"] == "timeout" and timed_out["event"]["data"]["error"]["retryable"]
    assert (completed["id"], completed["event"]["type"]) == (2, "StepCompleted")
    # Until the slow step returns, it is overdue; when it does, its result is dropped: only pongs come back.
    pongs = []
    deadline = time.monotonic() + 30
    while not pongs or pongs[-1]["overdue"] > 0:
        assert time.monotonic() < deadline, "the slow step never returned"
        worker.send({"type": "ping", "id": 3 + len(pongs)})
        pongs.append(worker.receive())
        assert pongs[-1]["type"] == "pong", pongs[-1]
    pong = pongs[-1]
    assert pongs[0]["overdue"] == 1, "the slow step was still running when the timeout was answered"
    worker.send({"type": "step", "id": 99, "event": DISPATCHED})
    after = worker.receive()
    assert (after["type"], after["id"]) == ("result", 99)
    assert pong["done"] == 2


def test_shutdown_finishes_received_work_then_exits(worker):
    worker.receive()
    worker.send({"type": "step", "id": 1, "event": DISPATCHED})
    worker.send({"type": "shutdown"})
    assert worker.receive()["type"] == "result"
    assert worker.process.wait(20) == 0


def test_frames_round_trip_and_truncation_is_an_error():
    import io

    frame = encode_frame({"type": "ping", "id": "ü"})
    assert json.loads(read_frame(io.BytesIO(frame))) == {"type": "ping", "id": "ü"}
    assert read_frame(io.BytesIO(b"")) is None
    with pytest.raises(FrameError):
        read_frame(io.BytesIO(frame[:-2]))
