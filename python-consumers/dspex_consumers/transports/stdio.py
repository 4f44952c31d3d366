"""The stdio transport: frames in on stdin, frames out on stdout, logs on stderr.

In:  {"type": "step", "id": R, "event": <StepDispatched envelope>}
     {"type": "ping", "id": R}
     {"type": "shutdown"}                        finish the work received so far, then exit
Out: {"type": "ready", "worker": W, "pid": P}   once, when DSPy is loaded
     {"type": "result", "id": R, "started": <StepStarted>, "event": <StepCompleted | StepFailed>, "capacity": C}
         (the StepStarted is made when the step begins and sent with its result: one frame per step;
         a step past its timeoutMs is answered as a timeout at its deadline, and its late result dropped)
     {"type": "pong", "id": R, "worker": W, "busy": bool, "done": N, "overdue": O, "capacity": C}
         answered even while a step runs; O = steps answered as timed out that are still running
     where C = {"models": [models and embedders this worker has run steps with], "rssMb": resident memory}
     {"type": "error", "id": R, "reason": "..."}  a frame that is not a valid command (nothing ran)

The worker runs as a batch task (SCHED_BATCH on Linux): a step waking it does not preempt the coordinator.
"""

import json
import logging
import math
import os
import queue
import sys
import threading
import time
from typing import Any, BinaryIO

from ..executor.deadline import MAX_OVERDUE
from ..executor.run import ExecutorSettings, StepOutcome, StepRun
from ..wire.codec import decode_value
from ..worker import result_event, started_event
from .frames import FrameError, encode_frame, read_frame

log = logging.getLogger("dspex.stdio")


class FrameWriter:
    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        frame = encode_frame(message)
        with self.lock:
            self.stream.write(frame)
            self.stream.flush()


def claim_stdout() -> BinaryIO:
    """Frames get a private copy of stdout; fd 1 then points at stderr, so stray prints cannot corrupt them."""
    frames = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return frames


class StdioWorker:
    def __init__(self, reader: BinaryIO, writer: FrameWriter, settings: ExecutorSettings, worker: str):
        self.reader = reader
        self.writer = writer
        self.settings = settings
        self.worker = worker
        self.steps: queue.Queue[tuple[Any, dict[str, Any]] | None] = queue.Queue()
        self.busy = False
        self.done = 0
        self.models: set[str] = set()  # what this process has loaded (or warmed): the pool prefers it for them
        # Steps run on the runner thread itself; the watchdog answers for a step past its deadline and hands
        # the queue to a new runner (a hand-over to another thread per step cost ~0.1 ms of CPU at L = 0).
        self.watch = threading.Condition()
        self.runner: threading.Thread | None = None
        self.running: tuple[Any, dict[str, Any], dict[str, Any], StepRun] | None = None
        self.watch_until = math.inf  # when the watchdog wakes next
        self.overdue = 0  # runners left behind on a step past its deadline, still running it
        self.finished = threading.Event()

    def serve(self) -> int:
        with self.watch:
            self._start_runner()
        threading.Thread(target=self._watch_deadlines, name="deadlines", daemon=True).start()
        self.writer.send({"type": "ready", "worker": self.worker, "pid": os.getpid()})
        try:
            self._read_commands()
        finally:
            self.steps.put(None)
            self.finished.wait()
        return 0

    def _read_commands(self) -> None:
        while True:
            try:
                body = read_frame(self.reader)
            except FrameError as error:
                log.error("stdin: %s; stopping", error)
                return
            if body is None:
                return
            try:
                message = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                self.writer.send({"type": "error", "id": None, "reason": f"frame is not JSON: {error}"})
                continue
            except RecursionError:
                self.writer.send({"type": "error", "id": None, "reason": "frame nests too deeply to read"})
                continue
            if self._handle(message, len(body)) == "shutdown":
                return

    def _handle(self, message: Any, size: int) -> str | None:
        kind = message.get("type") if isinstance(message, dict) else None
        request = message.get("id") if isinstance(message, dict) else None
        if kind == "ping":
            pong = {"type": "pong", "id": request, "worker": self.worker, "busy": self.busy, "done": self.done, "overdue": self.overdue}
            self.writer.send({**pong, "capacity": self._capacity()})
        elif kind == "shutdown":
            return "shutdown"
        elif kind == "step":
            self._accept_step(request, message.get("event"), size)
        else:
            self.writer.send({"type": "error", "id": request, "reason": f"unknown message type {kind!r}"})
        return None

    def _accept_step(self, request: Any, event: Any, frame_size: int) -> None:
        decoded = decode_value(event, frame_size)
        if not decoded.ok or decoded.event["type"] != "StepDispatched":
            reason = decoded.reason or f"expected StepDispatched, got {decoded.event['type']}"
            self.writer.send({"type": "error", "id": request, "reason": reason})
            return
        self.steps.put((request, decoded.event))

    def _start_runner(self) -> None:
        self.runner = threading.Thread(target=self._run_steps, name="steps", daemon=True)
        self.runner.start()

    def _run_steps(self) -> None:
        try:
            self._take_steps()
        finally:
            with self.watch:
                if self.runner is threading.current_thread():  # not one left behind on a step past its deadline
                    self.finished.set()

    def _take_steps(self) -> None:
        me = threading.current_thread()
        while (item := self.steps.get()) is not None:
            request, dispatched = item
            started = started_event(dispatched, self.worker)
            run = StepRun(dispatched["data"], self.settings)
            with self.watch:
                refused = self.overdue >= MAX_OVERDUE
                if not refused:
                    self.running = (request, dispatched, started, run)
                    if run.deadline < self.watch_until:
                        self.watch.notify()
            if refused:
                why = f"{self.overdue} earlier steps are still running past their deadline"
                self._answer(request, dispatched, started, run.timed_out(why))
                continue
            self.busy = True
            outcome = run.here()
            with self.watch:
                if self.runner is not me:  # the watchdog answered for this step, and a new runner took over
                    self.overdue -= 1
                    return
                self.running = None
            self._answer(request, dispatched, started, outcome)

    def _watch_deadlines(self) -> None:
        with self.watch:
            while True:
                if self.running is None:
                    self.watch_until = math.inf
                    self.watch.wait()
                    continue
                request, dispatched, started, run = self.running
                left = run.deadline - time.monotonic()
                if left > 0:
                    self.watch_until = run.deadline
                    self.watch.wait(left)
                    continue
                self.running = None
                self.overdue += 1
                self._start_runner()
                self._answer(request, dispatched, started, run.timed_out())

    def _answer(self, request: Any, dispatched: dict[str, Any], started: dict[str, Any], outcome: StepOutcome) -> None:
        result = result_event(dispatched, outcome, self.worker)
        # Counted before the result goes out: a ping sent after the result is read then sees it done.
        self.models.update(models_of(dispatched["data"]))
        self.busy = False
        self.done += 1
        self.writer.send({"type": "result", "id": request, "started": started, "event": result, "capacity": self._capacity()})

    def _capacity(self) -> dict[str, Any]:
        return {"models": sorted(self.models), "rssMb": resident_mb()}


def models_of(step: dict[str, Any]) -> list[str]:
    """The models a step loads: its LM, and a Retrieve step's embedder instead."""
    if step.get("module") == "Retrieve" and "retrieve" in step:
        return [step["retrieve"]["embedder"]]
    return [step["lm"]["model"]]


def resident_mb() -> int:
    """This process's resident memory, from /proc (Linux); else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run_as_batch_task() -> None:
    """Linux's SCHED_BATCH for this thread and the threads it starts: a worker woken by a step no longer preempts
    the running process, on a busy machine the coordinator that sent the step and is dispatching the next ones.
    CPU is still shared fairly; only the wake-up does not take the CPU from whoever holds it."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError) as error:  # not Linux: the default policy, only slower when the CPUs are full
        log.debug("SCHED_BATCH not set: %s", error)


def serve_stdio(settings: ExecutorSettings, worker: str) -> int:
    run_as_batch_task()  # before serve() starts the runner and watchdog threads, which inherit it
    frames = claim_stdout()
    return StdioWorker(sys.stdin.buffer, FrameWriter(frames), settings, worker).serve()
