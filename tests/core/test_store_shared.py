"""The Store contract for several servers on one store, run against both stores:
leases, one run per (schedule, fire time), orphans, schedules. Two SQLiteStore objects
on one file stand for two servers where the race matters."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import pytest

from bgtasks_ext.core.errors import InvalidInput
from bgtasks_ext.core.models import Origin, TaskFilter
from bgtasks_ext.core.ports import DeleteSchedule, PutBlob, PutSchedule, Store, server_lease
from bgtasks_ext.core.schedules import Misfire, Overlap, Schedule
from bgtasks_ext.core.states import State
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.test_store import ended, ids, make, put, store  # noqa: F401 (fixture)

NOW = 1_800_000_000.0


# -- leases ---------------------------------------------------------------------------

def test_a_lease_is_taken_renewed_refused_to_others_and_expires(store: Store) -> None:
    # Given a free lease, When "a" takes it, Then it holds it until its expiry
    assert store.lease_holder("scheduler", NOW) is None
    assert store.lease("scheduler", "a", 10, NOW)
    assert store.lease_holder("scheduler", NOW + 9.9) == "a"
    # And another holder is refused while it is current, changing nothing
    assert not store.lease("scheduler", "b", 10, NOW + 5)
    assert store.lease_holder("scheduler", NOW + 9.9) == "a"
    # When "a" renews, Then its expiry moves on
    assert store.lease("scheduler", "a", 10, NOW + 8)
    assert store.lease_holder("scheduler", NOW + 17.9) == "a"
    # When it expires (expires_at <= now), Then it is free and "b" takes it
    assert store.lease_holder("scheduler", NOW + 18) is None
    assert store.lease("scheduler", "b", 10, NOW + 18)
    assert store.lease_holder("scheduler", NOW + 19) == "b"
    # And other names are other leases
    assert store.lease("server:x", "x", 10, NOW + 18)


def test_a_lease_is_released_only_by_its_holder(store: Store) -> None:
    # Given "a" holds a lease
    assert store.lease("l", "a", 10, NOW)
    # When "b" releases it, Then nothing changes
    store.release("l", "b")
    assert store.lease_holder("l", NOW) == "a"
    # When "a" releases it, Then it is free at once; releasing again is fine
    store.release("l", "a")
    store.release("l", "a")
    assert store.lease_holder("l", NOW) is None
    assert store.lease("l", "b", 10, NOW)


# -- one run per (schedule, fire time) ---------------------------------------------------

def test_insert_run_creates_the_run_once_per_fire_time(store: Store) -> None:
    # Given a run for fire time T of schedule s
    first = make(schedule_id="s", scheduled_for=NOW, server_id="a")
    # When it is inserted, with its input
    assert store.insert_run(first, b"inputs", "s", NOW)
    # Then it is stored like any task, with its blob
    assert store.get(first.id) == first and store.get_blob(first.id, "input") == b"inputs"
    # When another run (another server's) for the same fire time is inserted
    second = make(schedule_id="s", scheduled_for=NOW, server_id="b")
    assert not store.insert_run(second, b"other", "s", NOW)
    # Then nothing of it is stored
    assert store.get(second.id) is None and store.get_blob(second.id, "input") is None
    # And other fire times and other schedules are other runs
    assert store.insert_run(make(schedule_id="s"), None, "s", NOW + 1)
    assert store.insert_run(make(schedule_id="t"), None, "t", NOW)
    assert store.count(TaskFilter(schedule_id="s")) == 2


def test_insert_runs_inserts_many_at_once_each_fire_time_once(store: Store) -> None:
    # Given a fire time that has its run already
    assert store.insert_run(make(schedule_id="s"), None, "s", NOW)
    # When the runs of several schedules due at one instant are inserted together
    runs = [make(schedule_id=f"s{i}") for i in range(5)]
    again = make(schedule_id="s")
    done = store.insert_runs([(t, b"in" if i == 0 else None, f"s{i}", NOW) for i, t in enumerate(runs)]
                             + [(again, None, "s", NOW)])
    # Then each new fire time has its run (and input), the taken one none
    assert done == [True] * 5 + [False]
    assert all(store.get(t.id) == t for t in runs) and store.get(again.id) is None
    assert store.get_blob(runs[0].id, "input") == b"in"


def test_a_refused_run_record_stores_no_fire_time(store: Store) -> None:
    # Given a run whose params JSON cannot hold, When inserted, Then InvalidInput names it
    with pytest.raises(InvalidInput):
        store.insert_run(make(params={"f": object()}), None, "s", NOW)
    # And the fire time is still free
    assert store.insert_run(make(), None, "s", NOW)


def test_pruning_a_run_forgets_its_fire_time_but_a_deleted_run_keeps_it(store: Store) -> None:
    from bgtasks_ext.core.ports import DeleteTask, Prune

    # Given two ended runs
    old = ended(schedule_id="s", finished_at=NOW - 100)
    kept = ended(schedule_id="s", finished_at=NOW)
    assert store.insert_run(old, None, "s", 1.0) and store.insert_run(kept, None, "s", 2.0)
    # When one is pruned by age and the other deleted by a user
    store.write([Prune(None, NOW - 50), DeleteTask(kept.id)])
    # Then the pruned one's (long past) fire time is forgotten, the deleted one's is not
    assert store.insert_run(make(), None, "s", 1.0)
    assert not store.insert_run(make(), None, "s", 2.0)


def test_two_stores_on_one_file_racing_every_fire_time_insert_each_once(tmp_path: Path) -> None:
    # Given two SQLite stores (two servers' connections) on one file
    path = tmp_path / "t.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    for s in stores:
        s.open()
    fire_times = [NOW + i for i in range(200)]
    won: list[list[float]] = [[], []]
    barrier = threading.Barrier(2)

    def race(i: int) -> None:
        barrier.wait()
        for t in fire_times:
            if stores[i].insert_run(make(schedule_id="s", scheduled_for=t), None, "s", t):
                won[i].append(t)

    # When both insert a run for every fire time at once
    threads = [threading.Thread(target=race, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then each fire time got exactly one run, and there is one task per fire time
    assert sorted(won[0] + won[1]) == fire_times
    assert stores[0].count(TaskFilter(schedule_id="s")) == len(fire_times)
    for s in stores:
        s.close()


# -- orphans ----------------------------------------------------------------------------

def test_adopt_orphans_takes_only_live_tasks_of_servers_without_a_current_lease(store: Store) -> None:
    # Given server a alive (lease current), server b dead (lease expired), c never seen,
    # and live and ended tasks of each, and an old live task of no server
    assert store.lease(server_lease("a"), "a", 10, NOW)
    assert store.lease(server_lease("b"), "b", 10, NOW - 20)
    a_tasks = [make(server_id="a"), make(server_id="a", state=State.RUNNING)]
    b_tasks = [make(server_id="b"), make(server_id="b", state=State.RUNNING, started_at=NOW),
               make(server_id="b", state=State.CANCELLING, cancel_reason="cancelled")]
    c_task = make(server_id="c")
    legacy = make(state=State.RUNNING)
    b_ended = ended(server_id="b")
    put(store, *a_tasks, *b_tasks, c_task, legacy, b_ended)
    # When server n adopts orphans
    assert store.lease(server_lease("n"), "n", 10, NOW)
    adopted = store.adopt_orphans("n", NOW)
    # Then it gets the live tasks of b, c and no server, oldest first, now its own
    expected = [*b_tasks, c_task, legacy]
    assert ids(adopted) == ids(expected)
    assert adopted == [t.evolve(server_id="n") for t in expected]
    assert all(store.get(t.id) == t.evolve(server_id="n") for t in expected)
    # And a's tasks and the ended task are untouched
    assert [store.get(t.id) for t in [*a_tasks, b_ended]] == [*a_tasks, b_ended]
    # And a second look finds nothing (they are n's, and n's lease is current)
    assert store.adopt_orphans("m", NOW) == []


def test_a_released_server_lease_makes_its_tasks_orphans_at_once(store: Store) -> None:
    # Given server a holding a pending task, When a releases its lease (a clean stop)
    assert store.lease(server_lease("a"), "a", 10, NOW)
    task = make(server_id="a")
    put(store, task)
    assert store.adopt_orphans("b", NOW) == []
    store.release(server_lease("a"), "a")
    # Then the next server adopts it without waiting for the expiry
    assert store.adopt_orphans("b", NOW) == [task.evolve(server_id="b")]


# -- schedules --------------------------------------------------------------------------

def _schedule(sid: str, **kw: object) -> Schedule:
    base: dict[str, object] = dict(id=sid, name=f"n-{sid}", kind="count", params={"times": 2},
                                   created_at=NOW)
    base.update(kw)
    return Schedule(**base)  # type: ignore[arg-type]


def test_schedules_put_get_list_delete(store: Store) -> None:
    # Given two schedules, one with every field set, and one's frozen inputs
    full = _schedule("s2", every=None, cron="*/5 * * * *", timezone="Europe/Berlin",
                     start_at=NOW, end_at=NOW + 100, enabled=False, overlap=Overlap.QUEUE,
                     misfire=Misfire.SKIP, executor="process", timeout=3.5, retries=2,
                     owner="alice", origin=Origin("k", "a.ipynb"), python="/py", cwd="/w",
                     has_payload=True, next_fire_at=NOW + 5, last_fired_at=NOW - 5,
                     last_run_id="r1", queued_for=NOW - 1)
    plain = _schedule("s1", every=1.5)
    store.write([PutSchedule(full), PutSchedule(plain), PutBlob("s2", "input", b"frozen")])
    # Then they read back field for field, listed oldest (smallest id) first
    assert store.get_schedule("s2") == full and store.get_schedule("nope") is None
    assert store.list_schedules() == [plain, full]
    assert store.get_blob("s2", "input") == b"frozen"
    # When one is replaced, Then the new version is what is stored
    store.write([PutSchedule(_schedule("s1", every=3.0, last_run_id="r9"))])
    assert store.get_schedule("s1") == _schedule("s1", every=3.0, last_run_id="r9")
    # When one is deleted (twice is fine), Then it and its inputs are gone, its runs stay
    run = make(schedule_id="s2")
    assert store.insert_run(run, None, "s2", NOW)
    store.write([DeleteSchedule("s2"), DeleteSchedule("s2")])
    assert store.get_schedule("s2") is None and store.get_blob("s2", "input") is None
    assert [s.id for s in store.list_schedules()] == ["s1"]
    assert store.get(run.id) == run


def test_a_schedule_json_cannot_hold_names_the_field_and_stores_nothing(store: Store) -> None:
    with pytest.raises(InvalidInput) as info:
        store.write([PutSchedule(_schedule("s", every=1.0, params={"f": object()}))])
    assert info.value.field == "params"
    assert store.list_schedules() == []


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[SQLiteStore, SQLiteStore]]:
    a, b = SQLiteStore(tmp_path / "t.db"), SQLiteStore(tmp_path / "t.db")
    a.open()
    b.open()
    yield a, b
    a.close()
    b.close()


def test_two_stores_on_one_file_see_each_others_leases_and_orphans(
        two: tuple[SQLiteStore, SQLiteStore]) -> None:
    a, b = two
    # Given server a's lease and live task written through one connection
    assert a.lease(server_lease("a"), "a", 10, NOW)
    task = make(server_id="a")
    put(a, task)
    # Then the other connection sees the lease held and leaves the task alone
    assert not b.lease(server_lease("a"), "b", 10, NOW)
    assert b.adopt_orphans("b", NOW) == []
    # And once the lease has expired, the other adopts it
    assert b.adopt_orphans("b", NOW + 10) == [task.evolve(server_id="b")]
    assert a.get(task.id) == task.evolve(server_id="b")


def test_on_this_host_a_dead_process_lease_is_free_at_once_a_live_ones_is_not(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "t.db"
    take = ("import sys, time; from bgtasks_ext.store.sqlite import SQLiteStore; "
            "s = SQLiteStore(sys.argv[1]); s.open(); "
            "assert s.lease('server:x', 'x', 3600, time.time()); print('held', flush=True); "
            "sys.stdin.read()")
    # Given another process that took a long lease and still runs
    proc = subprocess.Popen([sys.executable, "-c", take, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        store = SQLiteStore(path)
        store.open()
        task = make(server_id="x")
        put(store, task)
        # Then its lease is held, its task not an orphan
        import time

        assert store.lease_holder("server:x", time.time()) == "x"
        assert store.adopt_orphans("n", time.time()) == []
    finally:
        # When that process ends (without releasing: as a kill would leave it)
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    # Then, long before the lease's expiry, it is free and its task adopted
    assert store.lease_holder("server:x", time.time()) is None
    assert store.adopt_orphans("n", time.time()) == [task.evolve(server_id="n")]
    store.close()
