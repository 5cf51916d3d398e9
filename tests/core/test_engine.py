"""The engine with its real plug-ins: thread executor, memory and SQLite stores."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.errors import EngineClosed, InvalidInput, InvalidTransition, NotFound, UnknownKind
from bgtasks_ext.core.models import Origin, TaskEvent, TaskFilter, TaskSpec
from bgtasks_ext.core.registry import KindRegistry
from bgtasks_ext.core.states import State
from bgtasks_ext.executors.thread import ThreadExecutor
from bgtasks_ext.kinds import default_registry
from bgtasks_ext.store.memory import MemoryStore
from bgtasks_ext.store.sqlite import SQLiteStore

from . import engine_kinds

FAST = EngineConfig(default_executor="thread", cancel_grace=0.2, retry_backoff=0.05)


def registry() -> KindRegistry:
    """The built-ins plus every function in engine_kinds."""
    reg = default_registry()
    for name, fn in vars(engine_kinds).items():
        if inspect.isfunction(fn) and fn.__module__ == engine_kinds.__name__ and not name.startswith("_"):
            reg.register(fn)
    return reg


def make_engine(store: object = None, config: EngineConfig = FAST, workers: int = 4) -> Engine:
    return Engine(store or MemoryStore(), {"thread": ThreadExecutor(workers)}, registry(), config)


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    store = MemoryStore() if request.param == "memory" else SQLiteStore(str(tmp_path / "t.sqlite"))
    eng = make_engine(store)
    eng.start()
    yield eng
    eng.stop()


def test_a_task_runs_to_finished_with_its_result(engine: Engine) -> None:
    # When a task is submitted
    task = engine.submit(TaskSpec("echo", {"value": {"a": [1, 2]}}, name="mine"))
    assert task.state is State.PENDING and task.name == "mine" and task.executor == "thread"
    # Then it finishes with its result stored as opaque bytes and a JSON preview
    done = engine.wait(task.id, 10)
    assert done.state is State.FINISHED
    assert done.result_preview == {"a": [1, 2]}
    assert done.started_at is not None and done.finished_at is not None
    assert done.created_at <= done.started_at <= done.finished_at
    assert cloudpickle.loads(engine.result_payload(task.id)) == {"a": [1, 2]}
    assert engine.store.get(task.id) == done


def test_events_come_in_order(engine: Engine) -> None:
    # Given a listener
    events: list[TaskEvent] = []
    engine.subscribe(events.append)
    # When a task with progress runs
    task = engine.submit(TaskSpec("steps", {"n": 20, "pause": 0.01}))
    engine.wait(task.id, 10)
    # Then its events are numbered in order: created, running, progress..., finished
    mine = [e for e in events if e.task.id == task.id]
    assert [e.seq for e in mine] == sorted(e.seq for e in mine)
    states = [e.task.state for e in mine if e.change != "progress"]
    assert states == [State.PENDING, State.RUNNING, State.FINISHED]
    assert mine[0].change == "created"
    progress = [e.task.progress for e in mine if e.change == "progress"]
    assert progress and progress[-1].current == 20 and progress[-1].fraction == 1.0
    assert mine[-1].task.progress.message == "step 20"


def test_print_output_lands_in_the_log(engine: Engine) -> None:
    task = engine.submit(TaskSpec("talk", {"lines": 3}))
    engine.wait(task.id, 10)
    chunk = engine.read_log(task.id)
    assert chunk.text == "line 0\nline 1\nline 2\n"
    assert engine.read_log(task.id, chunk.next_offset).text == ""


def test_failure_records_type_message_and_traceback(engine: Engine) -> None:
    task = engine.wait(engine.submit(TaskSpec("boom", {"message": "bad day"})).id, 10)
    assert task.state is State.FAILED
    assert task.error is not None
    assert (task.error.type, task.error.message) == ("ValueError", "bad day")
    assert "raise ValueError(message)" in task.error.traceback
    with pytest.raises(Exception, match="not finished"):
        engine.result_payload(task.id)


def test_singleton_key_returns_the_live_task(engine: Engine) -> None:
    # Given a live task with key K
    first, created = engine.create(TaskSpec("polite", {"seconds": 5}, key="K"))
    assert created
    # When another is submitted with K / Then the first comes back
    again, created = engine.create(TaskSpec("noop", key="K"))
    assert (again.id, created) == (first.id, False)
    # When the first ends / Then K is free again
    engine.cancel(first.id)
    engine.wait(first.id, 10)
    third, created = engine.create(TaskSpec("noop", key="K"))
    assert created and third.id != first.id


def test_run_on_delays_the_start(engine: Engine) -> None:
    at = time.time() + 0.4
    task = engine.submit(TaskSpec("noop", run_on=at))
    time.sleep(0.1)
    assert engine.get(task.id).state is State.PENDING
    done = engine.wait(task.id, 10)
    assert done.state is State.FINISHED and done.started_at is not None
    assert done.started_at >= at


def test_timeout_fails_the_task(engine: Engine) -> None:
    task = engine.wait(engine.submit(TaskSpec("polite", {"seconds": 30}, timeout=0.2)).id, 10)
    assert task.state is State.FAILED
    assert task.error is not None and task.error.reason == "timeout"
    assert task.error.type == "TimeoutError"


def test_retries_until_success_with_backoff(engine: Engine) -> None:
    name = f"flaky-{time.time_ns()}"
    task = engine.submit(TaskSpec("flaky", {"name": name, "fail_times": 2}, retries=3))
    done = engine.wait(task.id, 10)
    assert done.state is State.FINISHED and done.attempt == 3
    assert done.result_preview == "ok"


def test_retries_exhausted_fail(engine: Engine) -> None:
    name = f"flaky-{time.time_ns()}"
    task = engine.submit(TaskSpec("flaky", {"name": name, "fail_times": 5}, retries=1))
    done = engine.wait(task.id, 10)
    assert done.state is State.FAILED and done.attempt == 2
    assert done.error is not None and "attempt 2 fails" in done.error.message


def test_cancel_pending_never_runs(engine: Engine) -> None:
    task = engine.submit(TaskSpec("talk", run_on=time.time() + 0.3))
    cancelled = engine.cancel(task.id)
    assert cancelled.state is State.CANCELLED and cancelled.category.value == "failed"
    time.sleep(0.5)
    assert engine.get(task.id).state is State.CANCELLED
    assert engine.read_log(task.id).text == ""


def test_cancel_running_cooperative(engine: Engine) -> None:
    task = engine.submit(TaskSpec("steps", {"n": 1000, "pause": 0.01}))
    _wait_state(engine, task.id, State.RUNNING)
    assert engine.cancel(task.id).state is State.CANCELLING
    done = engine.wait(task.id, 10)
    assert done.state is State.CANCELLED


def test_cancel_pure_python_loop_by_async_exception(engine: Engine) -> None:
    task = engine.submit(TaskSpec("stubborn", {"seconds": 30}))
    _wait_state(engine, task.id, State.RUNNING)
    t0 = time.monotonic()
    engine.cancel(task.id)
    assert engine.wait(task.id, 10).state is State.CANCELLED
    assert time.monotonic() - t0 < 2 * FAST.cancel_grace + 1


def test_cancel_blocked_thread_is_abandoned_and_replaced(engine: Engine) -> None:
    # Given every thread but one busy, and one blocked in a long C call
    task = engine.submit(TaskSpec("blocked", {"seconds": 5}))
    _wait_state(engine, task.id, State.RUNNING)
    # When it is cancelled / Then it is reported cancelled after the two graces
    engine.cancel(task.id)
    assert engine.wait(task.id, 5).state is State.CANCELLED
    # And the pool still has its full width
    tasks = [engine.submit(TaskSpec("polite", {"seconds": 0.3})) for _ in range(4)]
    t0 = time.monotonic()
    for t in tasks:
        assert engine.wait(t.id, 10).state is State.FINISHED
    assert time.monotonic() - t0 < 1.5


def test_cancel_terminal_and_unknown(engine: Engine) -> None:
    task = engine.wait(engine.submit(TaskSpec("noop")).id, 10)
    with pytest.raises(InvalidTransition):
        engine.cancel(task.id)
    with pytest.raises(NotFound):
        engine.cancel("nope")


def test_delete(engine: Engine) -> None:
    # Given a finished task / When deleted / Then it is gone from history
    task = engine.wait(engine.submit(TaskSpec("talk")).id, 10)
    assert engine.delete(task.id) is None
    with pytest.raises(NotFound):
        engine.get(task.id)
    # Given a running task / When deleted / Then it is cancelled, not removed
    running = engine.submit(TaskSpec("polite", {"seconds": 10}))
    _wait_state(engine, running.id, State.RUNNING)
    engine.delete(running.id)
    assert engine.wait(running.id, 10).state is State.CANCELLED


@pytest.mark.parametrize(
    "spec,field",
    [
        (TaskSpec("nope"), "kind"),
        (TaskSpec("count", {"times": "many"}), "params.times"),
        (TaskSpec("count", {"bogus": 1}), "params.bogus"),
        (TaskSpec("noop", executor="gpu"), "executor"),
        (TaskSpec("noop", timeout=-1), "timeout"),
        (TaskSpec("noop", retries=-1), "retries"),
        (TaskSpec("noop", key=""), "key"),
        (TaskSpec("noop", run_on="tomorrow"), "run_on"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(engine: Engine, spec: TaskSpec, field: str) -> None:
    kept = engine.wait(engine.submit(TaskSpec("noop")).id, 10)
    before = engine.store.count(TaskFilter())
    with pytest.raises(InvalidInput) as exc:
        engine.submit(spec)
    assert exc.value.field == field
    if field == "kind":
        assert isinstance(exc.value, UnknownKind)
    engine.flush()
    assert engine.store.count(TaskFilter()) == before
    assert engine.get(kept.id) == kept


def test_list_filters_and_shows_live_state(engine: Engine) -> None:
    running = engine.submit(TaskSpec("polite", {"seconds": 10}, key="live"))
    _wait_state(engine, running.id, State.RUNNING)
    done = engine.wait(engine.submit(TaskSpec("noop")).id, 10)
    page = engine.list(TaskFilter.of(category="pending"))
    assert [t.id for t in page.tasks] == [running.id]
    assert page.tasks[0].state is State.RUNNING
    assert [t.id for t in engine.list(TaskFilter.of(category="finished")).tasks] == [done.id]
    assert [t.id for t in engine.list(TaskFilter.of(key="live")).tasks] == [running.id]
    engine.cancel(running.id)
    engine.wait(running.id, 10)


def test_retention_keeps_the_newest(tmp_path: Path) -> None:
    config = EngineConfig(default_executor="thread", keep=5, prune_every=1, cancel_grace=0.2)
    with make_engine(SQLiteStore(str(tmp_path / "r.sqlite")), config) as eng:
        live = eng.submit(TaskSpec("polite", {"seconds": 10}))
        ids = [eng.wait(eng.submit(TaskSpec("noop")).id, 10).id for _ in range(12)]
        eng.flush()
        kept = {t.id for t in eng.list(TaskFilter.of(category="finished"), limit=100).tasks}
        assert kept == set(ids[-5:])
        assert eng.get(live.id).state is State.RUNNING


def test_stop_interrupts_running_and_keeps_pending(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite")
    eng = make_engine(SQLiteStore(path))
    eng.start()
    running = eng.submit(TaskSpec("blocked", {"seconds": 3}))
    retried = eng.submit(TaskSpec("blocked", {"seconds": 3}, retries=1))
    later = eng.submit(TaskSpec("noop", run_on=time.time() + 3600))
    _wait_state(eng, running.id, State.RUNNING)
    _wait_state(eng, retried.id, State.RUNNING)
    eng.stop(grace=0.2)
    with pytest.raises(EngineClosed):
        eng.submit(TaskSpec("noop"))
    store = SQLiteStore(path)
    store.open()
    try:
        stopped = store.get(running.id)
        assert stopped is not None and stopped.state is State.FAILED
        assert stopped.error is not None and stopped.error.reason == "interrupted"
        requeued = store.get(retried.id)
        assert requeued is not None and requeued.state is State.PENDING and requeued.attempt == 2
        assert store.get(later.id).state is State.PENDING  # type: ignore[union-attr]
    finally:
        store.close()


def _wait_state(engine: Engine, task_id: str, state: State, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while engine.get(task_id).state is not state:
        assert time.monotonic() < deadline, f"never became {state}"
        time.sleep(0.01)


def test_a_far_future_run_on_keeps_timers_working(engine: Engine) -> None:
    # Given a task delayed to the year 2999 (a wait that long overflows the OS)
    far = engine.submit(TaskSpec("noop", run_on=32_503_680_000.0))
    # When a task with a near run_on follows / Then the timer thread still fires it
    near = engine.submit(TaskSpec("noop", run_on=time.time() + 0.1))
    assert engine.wait(near.id, 10).state is State.FINISHED
    assert engine.get(far.id).state is State.PENDING


def test_recovered_task_whose_executor_is_gone_fails_clearly(tmp_path: Path) -> None:
    # Given a pending task stored by an engine that had a "thread" executor
    path = str(tmp_path / "gone.sqlite")
    with make_engine(SQLiteStore(path)) as eng:
        task = eng.submit(TaskSpec("noop", run_on=time.time() + 3600))
    # When an engine without that executor starts on the same file
    from bgtasks_ext.executors.thread import ThreadExecutor as Other

    other = Engine(SQLiteStore(path), {"threads2": Other(1)}, registry(),
                   EngineConfig(default_executor="threads2"))
    with other:
        done = other.wait(task.id, 10)
    # Then the task fails, saying why, instead of crashing the engine
    assert done.state is State.FAILED
    assert done.error is not None and done.error.reason == "unavailable"
    assert "thread" in done.error.message


def test_a_timed_out_attempt_is_retried(engine: Engine) -> None:
    # Given a task that always times out, with one retry
    task = engine.submit(TaskSpec("polite", {"seconds": 30}, timeout=0.05, retries=1))
    # Then both attempts time out and it ends failed (never stuck in cancelling)
    done = engine.wait(task.id, 10)
    assert done.state is State.FAILED and done.attempt == 2
    assert done.error is not None and done.error.reason == "timeout"


def test_a_none_result_is_served_without_being_stored(engine: Engine) -> None:
    task = engine.wait(engine.submit(TaskSpec("noop")).id, 10)
    assert engine.store.get_blob(task.id, "result") is None
    assert cloudpickle.loads(engine.result_payload(task.id)) is None


class SlowStore(MemoryStore):
    """A real in-memory store whose commits take a while, as a busy disk's do."""

    def write(self, ops):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        super().write(ops)


def test_readers_woken_by_the_end_event_see_the_full_record() -> None:
    # Given an engine whose store commits slowly
    eng = make_engine(SlowStore())
    eng.start()
    try:
        seen: dict[str, object] = {}

        def on_event(event: TaskEvent) -> None:
            if event.change == "state" and event.task.state is State.FINISHED:
                # When a listener reacts to "finished" (as the events websocket's clients do),
                # reading in another thread, right away
                def read() -> None:
                    seen["state"] = eng.get(event.task.id).state
                    seen["result"] = cloudpickle.loads(eng.result_payload(event.task.id))
                    seen["log"] = eng.read_log(event.task.id).text

                threading.Thread(target=read).start()

        eng.subscribe(on_event)
        task = eng.submit(TaskSpec("talk", {"lines": 2}))
        eng.wait(task.id, 10)
        deadline = time.monotonic() + 10
        while len(seen) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # Then they see the final state, the real result and the whole log
        assert seen == {"state": State.FINISHED, "result": 2, "log": "line 0\nline 1\n"}
    finally:
        eng.stop()


def _engine_with_kernel_executor(process: bool = False) -> Engine:
    from bgtasks_ext.executors.kernel import KernelExecutor
    from bgtasks_ext.executors.process import ProcessExecutor

    executors: dict = {"thread": ThreadExecutor(1), "kernel": KernelExecutor()}
    if process:
        executors["process"] = ProcessExecutor(1)
    return Engine(MemoryStore(), executors, registry(), FAST)


@pytest.mark.parametrize("spec,field", [
    (TaskSpec("code", executor="process"), "payload"),
    (TaskSpec("code", executor="thread", payload=b"x"), "executor"),
    (TaskSpec("noop", executor="thread", payload=b"x"), "executor"),
    (TaskSpec("noop", executor="kernel"), "executor"),
    (TaskSpec("noop", executor="kernel", retries=1, origin=Origin("k-1")), "retries"),
])
def test_where_a_task_can_run_is_checked_for_python_callers_too(spec: TaskSpec, field: str) -> None:
    # Given an engine driven from Python (no REST layer in between)
    with _engine_with_kernel_executor(process=True) as eng:
        # When a task that cannot run where it asks is created / Then it is refused, by field
        with pytest.raises(InvalidInput) as err:
            eng.create(spec)
        assert err.value.field == field
        # And nothing was stored
        assert eng.list().tasks == []


def test_a_kernel_task_needs_no_payload_and_a_code_task_with_one_goes_to_a_worker() -> None:
    with _engine_with_kernel_executor(process=True) as eng:
        kernel_task = eng.submit(TaskSpec("code", executor="kernel", origin=Origin("k-1")))
        # (the default executor is "thread": user data never goes there, so a worker takes it)
        with_payload = eng.submit(TaskSpec("code", run_on=time.time() + 3600, payload=b"opaque"))
        assert kernel_task.state is State.PENDING and with_payload.has_payload
        assert with_payload.executor == "process"


def test_a_timed_out_task_caught_by_a_stop_ends_timed_out(tmp_path: Path) -> None:
    # Given a task past its timeout whose code ignores the cancel (cancelling, long grace)
    path = str(tmp_path / "timeout.sqlite")
    eng = make_engine(SQLiteStore(path), EngineConfig(default_executor="thread", cancel_grace=30))
    eng.start()
    task = eng.submit(TaskSpec("blocked", {"seconds": 2}, timeout=0.1))
    _wait_state(eng, task.id, State.CANCELLING)
    # When the server stops before the executor confirms
    eng.stop(grace=0.1)
    # Then it ended as its timeout says, the same as a start after a crash would decide
    store = SQLiteStore(path)
    store.open()
    try:
        stopped = store.get(task.id)
    finally:
        store.close()
    assert stopped is not None and stopped.state is State.FAILED
    assert stopped.error is not None and stopped.error.reason == "timeout"


def test_a_vanished_runner_interrupts_its_task_by_the_policy() -> None:
    # Given a running kernel-executor task (claimed by its kernel)
    with _engine_with_kernel_executor() as eng:
        task = eng.submit(TaskSpec("noop", executor="kernel", origin=Origin("k-1")))
        assert eng.claim(task.id)
        # When its kernel goes away
        eng.interrupt(task.id, "the kernel went away (died) while the task ran in it")
        # Then it failed as interrupted, with the message
        done = eng.wait(task.id, 10)
        assert done.state is State.FAILED and done.error is not None
        assert done.error.reason == "interrupted" and "kernel went away" in done.error.message


@pytest.mark.parametrize("kind,error", [("exits", "SystemExit"), ("interrupted_by_hand", "KeyboardInterrupt")])
def test_system_exit_and_keyboard_interrupt_end_the_attempt_not_the_thread(kind: str, error: str) -> None:
    # Given a thread executor with a single thread
    with make_engine(workers=1) as eng:
        # When a task raises SystemExit / KeyboardInterrupt
        task = eng.submit(TaskSpec(kind))
        # Then it fails with that error (it is never left running)
        done = eng.wait(task.id, 10)
        assert done.state is State.FAILED and done.error is not None and done.error.type == error
        # And a cancel of it is refused as for any ended task
        with pytest.raises(InvalidTransition):
            eng.cancel(task.id)
        # And the one thread still runs the next tasks, to their end, uncancelled
        later = [eng.submit(TaskSpec("counts_to")) for _ in range(3)]
        assert [eng.wait(t.id, 10).state for t in later] == [State.FINISHED] * 3


def test_a_late_interrupt_never_lands_in_the_next_task_of_the_thread() -> None:
    # Given one thread, and a task that ignores cancel but returns soon after it
    with make_engine(config=EngineConfig(default_executor="thread", cancel_grace=0.3), workers=1) as eng:
        first = eng.submit(TaskSpec("stubborn", {"seconds": 0.4}))
        _wait_state(eng, first.id, State.RUNNING)
        eng.cancel(first.id)  # the asynchronous exception is due 0.3 s later...
        second = eng.submit(TaskSpec("stubborn", {"seconds": 0.6}))  # ...while this one runs
        assert eng.wait(first.id, 10).state is State.CANCELLED
        # Then the next task on that thread is not hit by it
        assert eng.wait(second.id, 10).state is State.FINISHED


class RefusingStore(MemoryStore):
    """A real in-memory store that refuses, as a real one does, the batches holding an op
    ``refuse(op)`` picks: SQLite's "string or blob too big", a full disk."""

    def __init__(self, refuse: Callable[[Any], bool], error: Exception) -> None:
        super().__init__()
        self.refuse = refuse
        self.error = error

    def write(self, ops):  # type: ignore[no-untyped-def]
        if any(self.refuse(op) for op in ops):
            raise self.error
        super().write(ops)


def _blob_over(limit: int) -> Callable[[Any], bool]:
    from bgtasks_ext.core.ports import PutBlob

    return lambda op: isinstance(op, PutBlob) and len(op.data) > limit


def _progress_from(mark: float, everything: bool) -> Callable[[Any], bool]:
    """A running task's progress snapshot past ``mark``; with ``everything``, every later
    record of that task too."""
    from bgtasks_ext.core.ports import PutTask

    return lambda op: (isinstance(op, PutTask) and op.task.progress.current >= mark
                       and (everything or op.task.state is State.RUNNING))


def test_a_write_the_store_refuses_fails_the_task_and_memory_agrees() -> None:
    # Given a store that cannot hold a result as big as a task returns
    eng = make_engine(RefusingStore(_blob_over(1000), ValueError("string or blob too big")))
    eng.start()
    try:
        task = eng.submit(TaskSpec("bytes_of", {"size": 5000}))
        # When it ends / Then it is failed with reason store_error, at once (no hang)
        done = eng.wait(task.id, 5)
        assert done.state is State.FAILED and done.error is not None
        assert done.error.reason == "store_error" and "too big" in done.error.message
        # And what is stored says the same as what is served
        assert eng.store.get(task.id) == done == eng.get(task.id)
        assert eng.read_log(task.id).text == ""
        # And the engine runs on
        assert eng.wait(eng.submit(TaskSpec("bytes_of", {"size": 10})).id, 5).state is State.FINISHED
    finally:
        eng.stop()


def test_a_result_above_max_result_bytes_fails_where_it_ran() -> None:
    config = EngineConfig(default_executor="thread", max_result_bytes=1000)
    with make_engine(config=config) as eng:
        done = eng.wait(eng.submit(TaskSpec("bytes_of", {"size": 5000})).id, 5)
        assert done.state is State.FAILED and done.error is not None
        assert done.error.reason == "result_too_large" and "max_result_bytes" in done.error.message
        ok = eng.wait(eng.submit(TaskSpec("bytes_of", {"size": 500})).id, 5)
        assert ok.state is State.FINISHED


@pytest.mark.parametrize("everything", [False, True])
def test_a_refused_write_of_a_running_task_fails_it_and_stops_its_code(everything: bool) -> None:
    # Given a running task whose progress record the store refuses
    config = EngineConfig(default_executor="thread", cancel_grace=0.2, progress_persist_interval=0)
    eng = make_engine(RefusingStore(_progress_from(3, everything), OSError("database or disk is full")),
                      config)
    eng.start()
    try:
        task = eng.submit(TaskSpec("steps_then_wait", {"steps": 5}))
        # Then it fails with reason store_error, and its code is asked to stop
        done = eng.wait(task.id, 10)
        assert done.state is State.FAILED and done.error is not None
        assert done.error.reason == "store_error" and "disk is full" in done.error.message
        ex = eng.executors["thread"]
        deadline = time.monotonic() + 5
        while task.id in ex._running:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "its code was never stopped"
            time.sleep(0.01)
        # And the store holds the failure; or, when it refuses that too, this server
        # still shows it (never a task left running in the listing)
        stored = eng.store.get(task.id)
        assert stored is not None
        assert (stored.state is State.FAILED) is (not everything)
        assert eng.get(task.id).state is State.FAILED
        assert [t.state for t in eng.list().tasks if t.id == task.id] == [State.FAILED]
    finally:
        eng.stop()
