"""Step threads: results and errors handed back, a call past its deadline left running, threads reused."""

import threading

import pytest

from dspex_consumers.executor.deadline import Overdue, StepThreads


def test_hands_back_the_result_or_what_the_call_raised_and_reuses_one_thread():
    threads = StepThreads()
    names: set[int] = set()

    def call(i: int) -> int:
        names.add(threading.get_ident())
        return i * 2

    assert [threads.run(lambda i=i: call(i), 5) for i in range(50)] == [i * 2 for i in range(50)]
    assert len(names) == 1 and threading.get_ident() not in names
    with pytest.raises(ValueError, match="bad"):
        threads.run(lambda: (_ for _ in ()).throw(ValueError("bad")), 5)
    assert threads.run(lambda: "after", 5) == "after"


def test_a_call_past_its_deadline_keeps_its_thread_until_it_returns_then_the_thread_is_reused():
    threads = StepThreads()
    release, returned = threading.Event(), threading.Event()

    def stuck() -> str:
        release.wait(10)
        returned.set()
        return "late"

    with pytest.raises(Overdue):
        threads.run(stuck, 0.05)
    assert threads.run(lambda: "meanwhile", 5) == "meanwhile"  # on another thread
    assert threads.overdue == 1 and len(threads.idle) == 1
    counted_back = threading.Event()
    count_back = threads.returned_late

    def returned_late(thread) -> None:  # the thread counts itself back right after the call returns
        count_back(thread)
        counted_back.set()

    threads.returned_late = returned_late
    release.set()
    assert returned.wait(5)
    assert counted_back.wait(5)
    assert threads.overdue == 0 and len(threads.idle) == 2
    assert threads.run(lambda: "next", 5) == "next"


def test_refuses_new_calls_while_too_many_are_overdue():
    threads = StepThreads(max_overdue=2)
    release = threading.Event()
    for _ in range(2):
        with pytest.raises(Overdue, match="no result"):
            threads.run(lambda: release.wait(10), 0.01)
    with pytest.raises(Overdue, match="2 earlier calls are still running"):
        threads.run(lambda: "refused", 5)
    release.set()
