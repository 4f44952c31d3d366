"""Calls run on reused step threads, each with a deadline; a call past it keeps its thread until it returns.

A call and its result go to and from a step thread through two plain locks. A ThreadPoolExecutor's idle
accounting started a new thread whenever the previous step's thread had not yet counted itself idle (until
it held 64), and its Future added a Condition to every hand-over; here one thread serves steps one after
another, and daemon threads do not hold up the worker's exit behind a step past its deadline.
"""

import threading
from collections.abc import Callable
from typing import Any

MAX_OVERDUE = 64  # calls past their deadline still running; past this, new calls are refused


class Overdue(Exception):
    """The call did not return within its deadline (it goes on running on its thread)."""


class _StepThread:
    def __init__(self, pool: "StepThreads"):
        self.pool = pool
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.state = threading.Lock()
        self.abandoned = False
        self.call: Callable[[], Any] | None = None
        self.outcome: tuple[bool, Any] = (True, None)
        threading.Thread(target=self._serve, name="step", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self.go.acquire()
            call, self.call = self.call, None
            try:
                self.outcome = (True, call())  # type: ignore[misc]
            except BaseException as error:  # handed to the caller, who raises it
                self.outcome = (False, error)
            with self.state:
                if self.abandoned:
                    self.abandoned = False
                    self.outcome = (True, None)
                    self.pool.returned_late(self)
                    continue
                self.done.release()


class StepThreads:
    """Reused threads for calls with a deadline."""

    def __init__(self, max_overdue: int = MAX_OVERDUE):
        self.max_overdue = max_overdue
        self.lock = threading.Lock()
        self.idle: list[_StepThread] = []
        self.overdue = 0

    def run(self, call: Callable[[], Any], timeout_s: float) -> Any:
        """`call()`'s result (or what it raised); `Overdue` once `timeout_s` passed without one."""
        with self.lock:
            if self.overdue >= self.max_overdue:
                raise Overdue(f"{self.overdue} earlier calls are still running past their deadline")
            thread = self.idle.pop() if self.idle else None
        thread = thread or _StepThread(self)
        thread.call = call
        thread.go.release()
        if not thread.done.acquire(timeout=max(timeout_s, 0)):
            with thread.state:
                finished = thread.done.acquire(blocking=False)  # it returned just now
                if not finished:
                    thread.abandoned = True
                    with self.lock:
                        self.overdue += 1
                    raise Overdue(f"no result within {timeout_s:.3f} s")
        ok, value = thread.outcome
        thread.outcome = (True, None)
        with self.lock:
            self.idle.append(thread)
        if not ok:
            raise value
        return value

    def returned_late(self, thread: _StepThread) -> None:
        with self.lock:
            self.overdue -= 1
            self.idle.append(thread)
