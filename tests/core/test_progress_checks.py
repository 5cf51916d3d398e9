"""progress() and track() check for cancel and send progress only now and then (that keeps
them cheaper than tqdm: benchmarks/bench_progress.py), yet a cancel is still seen, counts
stay exact and the last values always go out."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Iterator

import pytest

from bgtasks_ext import TaskCancelled, progress, track
from bgtasks_ext.core.attempt import run_attempt
from bgtasks_ext.core.context import MAX_CHUNK, TaskContext, bind, current
from bgtasks_ext.core.ports import OutcomeStatus

from .test_context import FakeClock, Recorder


def _run(ctx: TaskContext, fn: Any) -> Any:
    """Run ``fn`` as a task's code with ``ctx`` bound (as every executor does)."""
    return run_attempt(ctx, fn)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 17, 1000, 123_457])
def test_track_yields_every_item_and_ends_on_the_exact_count(n: int) -> None:
    # Given a task that tracks a generator of n items (no len(): the count must be taken)
    sink = Recorder()
    seen: list[int] = []

    def job() -> None:
        for x in track((i * 2 for i in range(n)), message="items"):
            seen.append(x)

    # When it runs to the end
    outcome = _run(TaskContext("t1", sink, clock=FakeClock()), job)
    # Then every item came through, in order, and the last report is the exact count
    assert outcome.status == OutcomeStatus.FINISHED
    assert seen == [i * 2 for i in range(n)]
    assert sink.progress_calls[-1] == (n, None, "items")


def test_track_counts_what_a_loop_took_when_it_stops_early() -> None:
    # Given a task that breaks out of a tracked loop after 12,345 items of 10**9
    sink = Recorder()

    def job() -> None:
        for i in track(range(10**9), message="scan"):
            if i == 12_344:
                break

    # When it ends
    _run(TaskContext("t1", sink, clock=FakeClock()), job)
    # Then the last report says 12,345 of 10**9
    assert sink.progress_calls[-1] == (12_345, 1e9, "scan")


def test_track_counts_what_a_loop_took_when_its_body_raises() -> None:
    sink = Recorder()

    def job() -> None:
        for i in track(list(range(100))):
            if i == 41:
                raise ValueError("bad row")

    outcome = _run(TaskContext("t1", sink, clock=FakeClock()), job)
    assert outcome.status == OutcomeStatus.FAILED
    assert sink.progress_calls[-1] == (42, 100.0, None)


def test_progress_in_a_tight_loop_ends_on_the_last_value() -> None:
    # Given a task that reports a million times within one flush interval (a clock that stands still)
    sink = Recorder()

    def job() -> None:
        for i in range(1_000_000):
            progress(i + 1, total=1_000_000)

    # When it ends
    _run(TaskContext("t1", sink, clock=FakeClock()), job)
    # Then few reports went out, and the last one is the final value
    assert len(sink.progress_calls) < 100
    assert sink.progress_calls[-1] == (1_000_000, 1_000_000, None)


def test_a_cancel_request_stops_progress_at_its_next_call() -> None:
    # Given a task calling progress() in a loop, and a cancel requested (by the executor) at i == 1000
    ctx = TaskContext("t1", Recorder(), clock=FakeClock())
    reached: list[int] = []

    def job() -> None:
        for i in range(10**9):
            if i == 1000:
                ctx.request_cancel()
            reached.append(i)
            progress(i)

    # When it runs
    outcome = _run(ctx, job)
    # Then the very next call raised: the task ended cancelled there
    assert outcome.status == OutcomeStatus.CANCELLED
    assert reached[-1] == 1000


def test_a_cancel_request_stops_a_tracked_loop_within_one_chunk() -> None:
    # Given a tracked loop of 10**9 items and a cancel requested at item 1000
    ctx = TaskContext("t1", Recorder(), clock=FakeClock())
    reached: list[int] = []

    def job() -> None:
        for i in track(range(10**9)):
            if i == 1000:
                ctx.request_cancel()
            reached.append(i)

    # When it runs
    outcome = _run(ctx, job)
    # Then it stopped at the next check, at most one chunk later
    assert outcome.status == OutcomeStatus.CANCELLED
    assert 1000 <= reached[-1] < 1000 + MAX_CHUNK


def test_a_workers_cancel_event_is_seen_by_progress_after_the_next_flush() -> None:
    # Given a task in a worker: the reader thread sets the task's event, nothing else
    event = threading.Event()
    ctx = TaskContext("t1", Recorder(), clock=FakeClock(), cancel_event=event)
    reached: list[int] = []

    def job() -> None:
        for i in range(10**9):
            if i == 1000:
                event.set()
                ctx.flush()  # what the worker's flusher thread does every interval
            reached.append(i)
            progress(i)

    # When it runs
    outcome = _run(ctx, job)
    # Then the next call raised
    assert outcome.status == OutcomeStatus.CANCELLED
    assert reached[-1] == 1000


def test_the_pacer_makes_a_busy_loop_see_a_cancel_event_on_its_own() -> None:
    # Given a task's busy progress() loop and a cancel event that only another thread sets
    event = threading.Event()
    ctx = TaskContext("t1", Recorder(), cancel_event=event)
    threading.Timer(0.05, event.set).start()

    def job() -> str:
        deadline = time.monotonic() + 30  # a generous bound: a broken pacer fails, it does not hang
        i = 0
        while time.monotonic() < deadline:
            i += 1
            progress(i)
        return "never saw the cancel"

    # When it runs
    outcome = _run(ctx, job)
    # Then the loop saw the cancel (the pacer thread asked for a check)
    assert outcome.status == OutcomeStatus.CANCELLED


def test_the_pacer_sends_progress_of_a_busy_loop_while_it_runs() -> None:
    # Given a task that calls progress() in a busy loop until a report went out mid-loop
    sink = Recorder()

    def job() -> int:
        deadline = time.monotonic() + 30
        i = 0
        while time.monotonic() < deadline:
            i += 1
            progress(i)
            if len(sink.progress_calls) >= 2:
                return i
        return -1

    outcome = _run(TaskContext("t1", sink), job)
    # Then the second report (the first is the first call) came while the loop ran
    assert outcome.status == OutcomeStatus.FINISHED and outcome.preview > 1
    assert sink.progress_calls[1][0] > 1


def test_progress_from_a_coroutine_the_task_runs_reaches_the_task() -> None:
    # Given a task whose code runs an asyncio loop (asyncio.run in the task's thread)
    sink = Recorder()

    async def step(i: int) -> None:
        progress(i, total=3, message="async")

    async def main() -> None:
        for i in range(1, 4):
            await asyncio.create_task(step(i))

    # When it runs
    outcome = _run(TaskContext("t1", sink), lambda: asyncio.run(main()))
    # Then the coroutines' progress is the task's
    assert outcome.status == OutcomeStatus.FINISHED
    assert sink.progress_calls[-1] == (3, 3, "async")


def test_another_thread_started_by_a_task_is_not_the_task() -> None:
    seen: list[object] = []

    def job() -> None:
        t = threading.Thread(target=lambda: seen.append(current()))
        t.start()
        t.join()

    _run(TaskContext("t1", Recorder()), job)
    assert seen == [None]


def test_an_unstarted_or_abandoned_track_does_no_harm() -> None:
    # Given a tracked iterator that is made but never iterated, and one dropped half-way
    sink = Recorder()
    ctx = TaskContext("t1", sink, clock=FakeClock())
    prev = bind(ctx)
    try:
        unused = track(range(10))
        it: Iterator[int] = track(range(10))
        next(it)
        next(it)
        del unused, it
        ctx.finish()
    finally:
        bind(prev)
    # Then the last report is what was taken
    assert sink.progress_calls[-1][0] == 2


def test_an_abandoned_tracked_iterator_collected_later_does_not_undo_newer_progress() -> None:
    # Given a task that keeps a tracked iterator it stopped early, then tracks another loop
    sink = Recorder()

    def job() -> None:
        first = track(range(1000))
        for i in first:
            if i == 9:
                break
        for _ in track(range(50)):
            pass
        # `first` is collected only when the function returns

    # When it ends
    _run(TaskContext("t1", sink, clock=FakeClock()), job)
    # Then the last report is the second loop's
    assert sink.progress_calls[-1] == (50, 50.0, None)
