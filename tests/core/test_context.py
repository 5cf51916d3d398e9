"""The context API: a no-op outside a task, coalesced inside one."""

from __future__ import annotations

import threading

import pytest

from bgtasks_ext import TaskCancelled, cancelled, progress, track
from bgtasks_ext.core.context import FLUSH_INTERVAL, TaskContext, bind, current


class Recorder:
    def __init__(self) -> None:
        self.progress_calls: list[tuple[float, float | None, str | None]] = []
        self.logs: list[str] = []

    def progress(self, current: float, total: float | None, message: str | None) -> None:
        self.progress_calls.append((current, total, message))

    def log(self, text: str) -> None:
        self.logs.append(text)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_outside_a_task_everything_is_a_no_op() -> None:
    # Given no task bound to this thread
    assert current() is None
    # When task code runs in the foreground / Then it just runs
    progress(1, total=10, message="x")
    assert list(track([1, 2, 3])) == [1, 2, 3]
    assert cancelled() is False


def test_progress_is_coalesced_to_one_report_per_interval() -> None:
    # Given a context with a fake clock
    sink, clock = Recorder(), FakeClock()
    ctx = TaskContext("t1", sink, clock=clock)
    prev = bind(ctx)
    try:
        # When progress is reported 100,000 times within one interval
        for i in range(100_000):
            progress(i, total=100_000)
        # Then only the first crossed to the sink
        assert sink.progress_calls == [(0, 100_000, None)]
        # When time moves past the interval, and the pacer's next tick asks for a check
        clock.now += FLUSH_INTERVAL
        ctx.poll()
        progress(5, message="later")
        # Then the latest value goes out, and flush() sends what is left
        assert sink.progress_calls[-1] == (5, 100_000, "later")
        progress(6)
        ctx.flush()
        assert sink.progress_calls[-1] == (6, 100_000, "later")
    finally:
        bind(prev)


def test_track_takes_total_from_len_and_counts() -> None:
    sink, clock = Recorder(), FakeClock()
    ctx = TaskContext("t1", sink, clock=clock)
    prev = bind(ctx)
    try:
        items = []
        for item in track(["a", "b", "c"], message="loading"):
            items.append(item)
            clock.now += 1
        ctx.flush()
    finally:
        bind(prev)
    assert items == ["a", "b", "c"]
    assert sink.progress_calls[0] == (0, 3.0, "loading")
    assert sink.progress_calls[-1] == (3, 3.0, "loading")


def test_track_of_an_iterator_has_no_total() -> None:
    sink = Recorder()
    ctx = TaskContext("t1", sink)
    prev = bind(ctx)
    try:
        assert sum(track(iter(range(4)))) == 6
    finally:
        bind(prev)
    assert sink.progress_calls[0][1] is None


def test_cancel_raises_from_progress_and_shows_in_cancelled() -> None:
    # Given a running task's context
    ctx = TaskContext("t1", Recorder())
    prev = bind(ctx)
    try:
        assert cancelled() is False
        # When cancel is requested
        ctx.request_cancel()
        # Then cancelled() turns true and progress() raises TaskCancelled
        assert cancelled() is True
        with pytest.raises(TaskCancelled):
            progress(1)
        with pytest.raises(TaskCancelled):
            list(track(range(3)))
    finally:
        bind(prev)


def test_contexts_are_per_thread() -> None:
    ctx = TaskContext("t1", Recorder())
    prev = bind(ctx)
    seen: list[object] = []
    try:
        t = threading.Thread(target=lambda: seen.append(current()))
        t.start()
        t.join()
    finally:
        bind(prev)
    assert seen == [None]
