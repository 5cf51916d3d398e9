"""Warm workers: a kind's settings reach its tasks (``ctx.settings``); its ``warm``
function runs once in each process worker after the first task of the kind (and in
each worker started later); what it keeps (core/warm.py) survives the sweep at a task's
end and dies with its worker. Real workers, real child processes (a kept ``sleep 1000``
stands in for a pool kernel)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import cloudpickle
import pytest

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import TaskSpec
from bgtasks_ext.core.ports import Job
from bgtasks_ext.core.registry import KindRegistry
from bgtasks_ext.core.states import State
from bgtasks_ext.executors.process import ProcessExecutor
from bgtasks_ext.executors.proctree import descendants, running
from bgtasks_ext.executors.thread import ThreadExecutor
from bgtasks_ext.store.memory import MemoryStore
from tests.core.test_process_executor import Recorder, wait_until
from tests.faults import warm_kinds
from tests.faults.warm_kinds import REF, WARM
from tests.server_process import ServerProcess

pytestmark = pytest.mark.timeout(90)


def pooled(task_id: str, record: Path, **settings: Any) -> Job:
    """A job of the ``pooled`` kind as the engine makes it (its warm ref, its settings)."""
    return Job(task_id, "pooled", REF + "pooled", settings={"record": str(record), **settings}, warm=WARM)


def plain(task_id: str, name: str, **params: Any) -> Job:
    return Job(task_id, name, REF + name, params)


def probe(ex: ProcessExecutor, rec: Recorder, *task_ids: str) -> list[dict[str, Any]]:
    """Run a ``probe`` task per id (at once: with as many workers, one on each)."""
    for t in task_ids:
        ex.submit(plain(t, "probe"))
    return [result(rec, t) for t in task_ids]


def result(rec: Recorder, task_id: str) -> Any:
    out = rec.wait_done(task_id)
    assert out.status == "finished", out.error
    return cloudpickle.loads(out.result)  # type: ignore[arg-type]


def warmed(record: Path, lines: int) -> list[tuple[int, int]]:
    """The record's ``(worker pid, kept pid)`` lines once there are ``lines`` of them."""
    assert wait_until(lambda: record.exists() and len(record.read_text().splitlines()) >= lines, 20), \
        f"the warm function did not run {lines} time(s)"
    return [(int(a), int(b)) for a, b in (line.split() for line in record.read_text().splitlines())]


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[ProcessExecutor, Recorder]]]:
    made: list[ProcessExecutor] = []

    def factory(workers: int = 1, **kw: Any) -> tuple[ProcessExecutor, Recorder]:
        ex = ProcessExecutor(workers=workers, **kw)
        rec = Recorder()
        ex.start(rec)
        made.append(ex)
        assert wait_until(lambda: len(ex.pids(ready=True)) == workers, 20)
        return ex, rec

    yield factory
    for ex in made:
        ex.shutdown(2)


def test_the_warm_function_runs_once_in_every_worker_after_the_first_task_of_its_kind(
    make: Any, tmp_path: Path
) -> None:
    # Given two workers that ran tasks of other kinds only
    ex, rec = make(workers=2)
    record = tmp_path / "warm"
    probes = probe(ex, rec, "a", "b")
    # Then nothing was warmed: the warm module is not imported, nothing started
    assert not any(p["warmed"] or p["children"] for p in probes)
    assert not record.exists()
    # When the first task of the kind runs, with its settings
    ex.submit(pooled("p1", record, answer=42))
    first = result(rec, "p1")
    assert first["settings"] == {"record": str(record), "answer": 42}
    # Then each worker calls the warm function once, with the kind's settings
    lines = warmed(record, 2)
    assert sorted(pid for pid, _ in lines) == sorted(ex.pids())
    # And more tasks of the kind warm nothing again
    for i in range(4):
        ex.submit(pooled(f"more{i}", record))
    for i in range(4):
        result(rec, f"more{i}")
    probes = probe(ex, rec, "c", "d")
    assert len(record.read_text().splitlines()) == 2
    # And each worker keeps its one process
    assert sorted(k for p in probes for k in p["kept"]) == sorted(kept for _, kept in lines)


def test_what_the_warm_function_prints_goes_to_the_server_log_not_a_task_log(
    make: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ex, rec = make()
    ex.submit(pooled("p1", tmp_path / "warm"))
    result(rec, "p1")
    warmed(tmp_path / "warm", 1)
    ex.submit(plain("after", "probe"))
    result(rec, "after")
    assert "warming up" in capfd.readouterr().out
    assert not any("warming up" in "".join(texts) for texts in rec.logs.values())


def test_a_failing_warm_function_is_logged_and_fails_no_task(
    make: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    ex, rec = make()
    ex.submit(Job("b1", "pooled_broken", REF + "pooled_broken", settings={"why": "testing"},
                  warm="tests.faults.warm_up:broken"))
    pid = result(rec, "b1")
    out: list[str] = []

    def logged() -> bool:
        out.append(capfd.readouterr().out)
        return "no warm-up today (testing)" in "".join(out)

    assert wait_until(logged, 20)
    text = "".join(out)
    assert "warm-up tests.faults.warm_up:broken failed" in text and "RuntimeError" in text
    ex.submit(Job("b2", "pooled_broken", REF + "pooled_broken", warm="tests.faults.warm_up:broken"))
    assert result(rec, "b2") == pid  # the same worker lives on


def test_a_kept_process_survives_the_sweep_and_a_left_one_does_not(make: Any, tmp_path: Path) -> None:
    # Given a warmed worker that keeps a process
    ex, rec = make()
    ex.submit(pooled("p1", tmp_path / "warm"))
    result(rec, "p1")
    [(worker, kept)] = warmed(tmp_path / "warm", 1)
    # When a task leaves a process running
    ex.submit(plain("left", "leave_one", pidfile=str(tmp_path / "left")))
    left = result(rec, "left")
    # Then the sweep ended that one (and said so), not the kept one
    assert wait_until(lambda: not running(left), 10)
    assert f"ended 1 process(es) the task left running: {left}" in "".join(rec.logs["left"])
    assert running(kept)
    assert probe(ex, rec, "p2")[0]["kept"] == [kept]


def test_a_kept_process_a_task_took_over_ends_with_the_task(make: Any, tmp_path: Path) -> None:
    ex, rec = make()
    ex.submit(pooled("p1", tmp_path / "warm"))
    result(rec, "p1")
    [(worker, kept)] = warmed(tmp_path / "warm", 1)
    # When a task takes the kept process over (forgets it) and leaves it running
    ex.submit(plain("t", "take_over", pid=kept))
    result(rec, "t")
    # Then it is the task's own: ended by the sweep
    assert wait_until(lambda: not running(kept), 10)


def test_a_cancelled_task_loses_its_tree_and_the_worker_keeps_its_kept_process(
    make: Any, tmp_path: Path
) -> None:
    ex, rec = make()
    ex.submit(pooled("p1", tmp_path / "warm"))
    result(rec, "p1")
    [(worker, kept)] = warmed(tmp_path / "warm", 1)
    # When a task that started five processes is cancelled (SIGTERM ends it)
    ex.submit(Job("tree", "spawn_tree", "tests.core.kinds_for_tests:spawn_tree",
                  {"pidfile": str(tmp_path / "pids")}))
    assert wait_until(lambda: (tmp_path / "pids").exists() and len((tmp_path / "pids").read_text().split()) == 5)
    tree = [int(p) for p in (tmp_path / "pids").read_text().split()]
    ex.cancel("tree", 0.3)
    assert rec.wait_done("tree").status == "cancelled"
    # Then its tree is gone, and the worker (the same one) still keeps its process
    assert wait_until(lambda: not any(running(p) for p in tree), 10), [p for p in tree if running(p)]
    assert ex.pids() == [worker] and running(kept)


def test_a_stubborn_cancelled_task_is_killed_with_its_worker_and_the_kept_process(
    make: Any, tmp_path: Path
) -> None:
    record = tmp_path / "warm"
    ex, rec = make()
    ex.submit(pooled("p1", record))
    result(rec, "p1")
    [(worker, kept)] = warmed(record, 1)
    ex.submit(Job("s", "stubborn", "tests.core.kinds_for_tests:stubborn"))
    rec.wait_claimed("s")
    ex.cancel("s", 0.2)
    assert rec.wait_done("s").status == "cancelled"
    assert wait_until(lambda: not running(kept) and not running(worker), 10)
    # And the replacement worker warms again at its start
    [_, (fresh, fresh_kept)] = warmed(record, 2)
    assert fresh != worker and running(fresh_kept)


def test_kept_processes_die_with_a_worker_killed_by_sigkill(make: Any, tmp_path: Path) -> None:
    record = tmp_path / "warm"
    ex, rec = make()
    ex.submit(pooled("p1", record))
    result(rec, "p1")
    [(worker, kept)] = warmed(record, 1)
    # When the idle worker is killed from outside (the OOM killer, a user)
    os.kill(worker, signal.SIGKILL)
    # Then its kept process dies too, and its replacement warms at its start
    assert wait_until(lambda: not running(kept), 10)
    [_, (fresh, fresh_kept)] = warmed(record, 2)
    assert fresh != worker and running(fresh_kept)


def test_a_retired_worker_takes_its_kept_process_and_its_replacement_warms(make: Any, tmp_path: Path) -> None:
    record = tmp_path / "warm"
    ex, rec = make(max_tasks_per_worker=2)
    ex.submit(pooled("p1", record))
    result(rec, "p1")
    [(worker, kept)] = warmed(record, 1)
    # When the worker is replaced after its second task (no task of the kind since)
    ex.submit(plain("p2", "probe"))
    result(rec, "p2")
    # Then its kept process is gone and the new worker warmed at its start
    [_, (fresh, fresh_kept)] = warmed(record, 2)
    assert fresh != worker
    assert wait_until(lambda: not running(kept), 10) and running(fresh_kept)


def test_kept_processes_die_when_the_executor_stops(tmp_path: Path) -> None:
    record = tmp_path / "warm"
    ex = ProcessExecutor(workers=2)
    rec = Recorder()
    ex.start(rec)
    try:
        ex.submit(pooled("p1", record))
        result(rec, "p1")
        lines = warmed(record, 2)
    finally:
        ex.shutdown(2)
    assert wait_until(lambda: not any(running(k) or running(w) for w, k in lines), 10)


# -- through the engine -----------------------------------------------------------------
def engine_with(settings: dict[str, dict[str, Any]]) -> Engine:
    reg = KindRegistry()
    for fn in (warm_kinds.pooled, warm_kinds.settings_of, warm_kinds.probe):
        reg.register(fn)
    config = EngineConfig(default_executor="process", kind_settings=settings)
    executors = {"process": ProcessExecutor(1), "thread": ThreadExecutor(2)}
    return Engine(MemoryStore(), executors, reg, config)  # type: ignore[arg-type]


def run(engine: Engine, kind: str, executor: str = "process") -> Any:
    task = engine.wait(engine.submit(TaskSpec(kind, {}, executor=executor)).id, 30)
    assert task.state is State.FINISHED, task.error
    return cloudpickle.loads(engine.result_payload(task.id))


def test_kind_settings_reach_the_task_on_the_thread_and_process_executors() -> None:
    engine = engine_with({"settings_of": {"kernels": 2, "names": ["python3"]}})
    engine.start()
    try:
        for executor in ("thread", "process"):
            assert run(engine, "settings_of", executor) == {"kernels": 2, "names": ["python3"]}
        # And a kind without settings gets {}
        assert run(engine, "pooled", "thread")["settings"] == {}
    finally:
        engine.stop()


def test_an_engine_that_never_runs_the_kind_warms_nothing_and_the_first_task_does(tmp_path: Path) -> None:
    record = tmp_path / "warm"
    engine = engine_with({"pooled": {"record": str(record)}})
    engine.start()
    try:
        # Given tasks of other kinds only (and the warm kind on the thread executor)
        run(engine, "settings_of")
        run(engine, "pooled", "thread")
        seen = run(engine, "probe")
        # Then the worker imported and started nothing for the warm kind
        assert not seen["warmed"] and not seen["children"] and not record.exists()
        # When the kind runs in the process executor, its worker warms with its settings
        assert run(engine, "pooled")["settings"] == {"record": str(record)}
        [(worker, kept)] = warmed(record, 1)
        assert worker == seen["pid"] and running(kept)
    finally:
        engine.stop()
    # And the engine's stop ends the kept process
    assert wait_until(lambda: not running(kept), 10)


def test_a_kept_ipykernel_survives_the_sweep_and_dies_with_its_worker(make: Any, tmp_path: Path) -> None:
    # Given a worker whose warm function keeps a real kernel (as the notebook kind's pool does)
    record = tmp_path / "warm"
    ex, rec = make()
    ex.submit(Job("k", "pooled", REF + "pooled", settings={"record": str(record)},
                  warm="tests.faults.warm_up:warm_kernel"))
    result(rec, "k")
    [(worker, kernel)] = warmed(record, 1)
    # When a task leaves a process behind, the sweep spares the kernel
    ex.submit(plain("left", "leave_one", pidfile=str(tmp_path / "left")))
    left = result(rec, "left")
    assert wait_until(lambda: not running(left), 10) and running(kernel)
    # And when the worker is killed, the kernel goes with it
    os.kill(worker, signal.SIGKILL)
    assert wait_until(lambda: not running(kernel), 10)


# -- a real server ----------------------------------------------------------------------
def test_a_server_warms_its_workers_only_once_the_kind_ran_and_its_stop_ends_what_they_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "warm"
    monkeypatch.setenv("WARM_TEST_RECORD", str(record))
    srv = ServerProcess(tmp_path, tmp_path / "tasks.sqlite",
                        config={"extra_kinds": ["tests.faults.warm_kinds:pooled"]}).start()
    try:
        # Given a server that ran tasks of other kinds only
        assert srv.wait_end(srv.call("POST", "tasks", json={"kind": "sleep", "params": {"seconds": 0}})
                            .json()["id"])["state"] == "finished"
        workers = descendants(srv.pid)
        # Then its workers started nothing and imported nothing for the warm kind
        assert workers and not any(descendants(w) for w in workers) and not record.exists()
        # When a task of the kind runs
        assert srv.wait_end(srv.call("POST", "tasks", json={"kind": "pooled"}).json()["id"])["state"] == "finished"
        # Then the worker warms and keeps its process
        [(worker, kept)] = warmed(record, 1)
        assert worker in workers and running(kept)
    finally:
        srv.stop()
    # And the server's stop ends it
    assert wait_until(lambda: not running(kept), 10)
