"""The Store contract, run against both stores, plus what only SQLite has (files,
pragmas, migrations, query plans at 100k rows)."""

from __future__ import annotations

import dataclasses
import itertools
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from bgtasks_ext.core.errors import BgTasksError, InvalidInput
from bgtasks_ext.core.models import Origin, Progress, Scope, Task, TaskError, TaskFilter
from bgtasks_ext.core.ports import AppendLog, DeleteTask, Op, Prune, PutBlob, PutTask, Store
from bgtasks_ext.core.states import State
from bgtasks_ext.store import codec
from bgtasks_ext.store.memory import MemoryStore
from bgtasks_ext.store.sqlite import SQLiteStore

_ids = itertools.count(1)


def make(**fields: Any) -> Task:
    """A task with an id larger than every earlier one (ids order by creation)."""
    n = next(_ids)
    base: dict[str, Any] = dict(
        id=f"{n:032x}", kind="count", name=f"t{n}", params={"n": n},
        state=State.PENDING, created_at=1_700_000_000.0 + n, executor="thread",
    )
    base.update(fields)
    return Task(**base)


def ended(state: State = State.FINISHED, **fields: Any) -> Task:
    return make(state=state, finished_at=fields.pop("finished_at", 1_700_000_500.0), **fields)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "h" / "t.db")
    s.open()
    yield s
    s.close()


@pytest.fixture
def sql_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "t.db")
    s.open()
    yield s
    s.close()


def put(store: Store, *tasks: Task) -> None:
    store.write([PutTask(t) for t in tasks])


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def read(store: Store, task_id: str, offset: int = 0, limit: int | None = None) -> tuple[str, int, int]:
    chunk = store.read_log(task_id, offset, limit)
    return chunk.text, chunk.offset, chunk.next_offset


def walk(store: Store, flt: TaskFilter, limit: int) -> list[Task]:
    out, cursor = [], None
    while True:
        page = store.list(flt, limit, cursor)
        out += page.tasks
        if page.next_cursor is None:
            return out
        assert len(page.tasks) == limit
        cursor = page.next_cursor


FULL = dict(
    kind="notebook", name="full", params={"path": "a.ipynb", "n": [1, 2.5, None], "s": "é\x00"},
    state=State.FAILED, executor="process", created_at=1_700_000_000.125, started_at=1_700_000_001.5,
    finished_at=1_700_000_002.75, run_on=1_700_000_000.5, progress=Progress(3.5, 10.0, "cell 3"),
    owner="alice", origin=Origin("k-1", "dir/a.ipynb"), key="nightly", scope=Scope.KERNEL,
    schedule_id="s-1", attempt=2, retries=3, timeout=60.0,
    error=TaskError("ValueError", "bad", "Traceback...", "timeout"),
    result_preview={"rows": 3}, python="/usr/bin/python3", cwd="/home/a", has_payload=True,
    cancel_reason="timeout", note="outputs set: a\tb\n", scheduled_for=1_700_000_000.25,
    server_id="server-a", placement="tcp://10.0.0.5:40001",
)


# -- records ------------------------------------------------------------------------


def test_every_field_round_trips(store: Store) -> None:
    # Given a task with no field left at its default
    task = make(**FULL)
    defaults = make()
    assert all(getattr(task, f.name) != getattr(defaults, f.name) for f in dataclasses.fields(Task))
    # When it is stored and read back, by id and by listing
    put(store, task)
    # Then it is the same record, field for field
    assert store.get(task.id) == task
    assert store.list(TaskFilter()).tasks == [task]


def test_codec_record_has_every_field_and_reads_older_records() -> None:
    # Given the record of a task, and a short record an older version could have written
    task = make(**FULL)
    short = {"id": "x", "kind": "k", "name": "n", "state": "pending", "created_at": 1.0,
             "executor": "t"}
    # When they are encoded / decoded
    rec = codec.to_record(task)
    old = codec.from_record(short)
    # Then the record names every field, and missing fields take their defaults
    assert set(rec) == {f.name for f in dataclasses.fields(Task)}
    assert codec.loads(codec.dumps(task)) == task
    assert old == Task("x", "k", "n", {}, State.PENDING, 1.0, "t")


def test_put_replaces_and_callers_cannot_mutate_what_is_stored(store: Store) -> None:
    # Given a stored task whose params dict the caller keeps
    params: dict[str, Any] = {"a": 1}
    task = make(params=params)
    put(store, task)
    # When the caller mutates it, then stores a new version of the task
    params["a"] = 2
    newer = dataclasses.replace(task, state=State.RUNNING, params={"a": 3})
    put(store, newer)
    # Then the store holds only the newer version, once
    assert store.get(task.id) == newer
    assert store.count(TaskFilter()) == 1
    assert store.get("nope") is None


def test_unserializable_value_names_the_field(store: Store) -> None:
    # Given a task whose params JSON cannot hold
    task = make(params={"f": object()})
    # When it is written, Then the error is an InvalidInput naming params
    with pytest.raises(InvalidInput) as info:
        put(store, task)
    assert info.value.field == "params"


# -- listing ------------------------------------------------------------------------


def _population() -> list[Task]:
    rng = random.Random(7)
    out = []
    for i in range(120):
        state = list(State)[i % 6]
        out.append(make(
            state=state, kind=rng.choice(["a", "b", "c"]),
            key=rng.choice([None, None, "k1", "k2"]),
            origin=Origin(rng.choice([None, "kern1", "kern2"]), None),
            schedule_id=rng.choice([None, None, "s1"]),
            finished_at=1.0 * i if state.terminal else None,
        ))
    return out


FILTERS: list[tuple[TaskFilter, Callable[[Task], bool]]] = [
    (TaskFilter(), lambda t: True),
    (TaskFilter.of(state="running"), lambda t: t.state is State.RUNNING),
    (TaskFilter.of(category="pending"), lambda t: not t.state.terminal),
    (TaskFilter.of(category="failed"), lambda t: t.state.value in ("failed", "cancelled")),
    (TaskFilter.of(category="finished"), lambda t: t.state is State.FINISHED),
    (TaskFilter.of(kind="b"), lambda t: t.kind == "b"),
    (TaskFilter.of(key="k1"), lambda t: t.key == "k1"),
    (TaskFilter.of(kernel_id="kern2"), lambda t: t.origin.kernel_id == "kern2"),
    (TaskFilter.of(schedule_id="s1"), lambda t: t.schedule_id == "s1"),
    (TaskFilter.of(category="failed", kind="a"),
     lambda t: t.kind == "a" and t.state.value in ("failed", "cancelled")),
    (TaskFilter.of(category="pending", key="k2"), lambda t: t.key == "k2" and not t.state.terminal),
    (TaskFilter.of(kind="c", kernel_id="kern1", schedule_id="s1"),
     lambda t: t.kind == "c" and t.origin.kernel_id == "kern1" and t.schedule_id == "s1"),
    (TaskFilter.of(state="failed", category="finished"), lambda t: False),
    (TaskFilter.of(kind="zzz"), lambda t: False),
]


@pytest.mark.parametrize("flt, want", FILTERS)
def test_filters_select_exactly_the_matching_tasks_newest_first(
    store: Store, flt: TaskFilter, want: Callable[[Task], bool]
) -> None:
    # Given tasks spread over every state, kind, key, kernel and schedule
    tasks = _population()
    put(store, *tasks)
    expected = [t.id for t in reversed(tasks) if want(t)]
    # When listed (in one page, and in pages of 7) and counted with a filter
    # Then exactly the matching tasks come back, newest first
    assert ids(store.list(flt, 1000).tasks) == expected
    assert ids(walk(store, flt, 7)) == expected
    assert store.count(flt) == len(expected)


def test_pagination_walks_every_row_once_newest_first(store: Store) -> None:
    # Given a few hundred tasks written in batches
    tasks = [make(state=State.FINISHED if i % 3 else State.FAILED) for i in range(350)]
    for i in range(0, 350, 100):
        put(store, *tasks[i : i + 100])
    # When every page is walked, for all tasks and for one category
    every = walk(store, TaskFilter(), 16)
    failed = walk(store, TaskFilter.of(category="failed"), 9)
    # Then each row comes exactly once, in descending id order
    assert ids(every) == [t.id for t in reversed(tasks)]
    assert ids(failed) == [t.id for t in reversed(tasks) if t.state is State.FAILED]
    # And a listing that ends on a page boundary has no empty extra page
    assert store.list(TaskFilter(), 350).next_cursor is None
    assert store.list(TaskFilter(), 349).next_cursor is not None


@pytest.mark.parametrize("cursor", ["garbage", "", "!!!", "YWJj", codec.encode_cursor("")])
def test_a_cursor_the_store_did_not_make_is_invalid_input(store: Store, cursor: str) -> None:
    # Given a store, When listing with a made-up cursor, Then InvalidInput("cursor")
    with pytest.raises(InvalidInput) as info:
        store.list(TaskFilter(), 10, cursor)
    assert info.value.field == "cursor"


@pytest.mark.parametrize("limit", [0, -1, 1001, True, "10", 2.0])
def test_a_limit_outside_1_to_1000_is_invalid_input(store: Store, limit: Any) -> None:
    # Given a store, When listing with a bad limit, Then InvalidInput("limit")
    with pytest.raises(InvalidInput) as info:
        store.list(TaskFilter(), limit)
    assert info.value.field == "limit"
    # And the bounds themselves are fine
    assert store.list(TaskFilter(), 1).tasks == store.list(TaskFilter(), 1000).tasks == []


def test_live_is_every_unfinished_task_oldest_first(store: Store) -> None:
    # Given tasks in every state, written out of id order
    tasks = [make(state=s) for s in State for _ in range(3)]
    put(store, *reversed(tasks))
    # When live() is asked, Then it has the non-terminal ones, oldest first
    assert ids(store.live()) == [t.id for t in tasks if not t.terminal]


# -- logs and blobs -----------------------------------------------------------------


def test_log_append_and_read_by_offset(store: Store) -> None:
    # Given a log written in two appends (one with a NUL and an undecodable byte)
    store.write([AppendLog("t", "hello ", 100), AppendLog("t", "wo\x00rld\udcff", 100)])
    # When it is read from several offsets, Then offsets are character positions
    assert read(store, "t") == ("hello wo\x00rld?", 0, 13)
    assert read(store, "t", 6) == ("wo\x00rld?", 6, 13)
    assert read(store, "t", 6, 3) == ("wo\x00", 6, 9)
    assert read(store, "t", 13, 0) == ("", 13, 13)
    # And reading past the end, or an unknown log, gives nothing at the end
    assert read(store, "t", 50) == ("", 13, 13)
    assert read(store, "unknown", 5) == ("", 0, 0)
    with pytest.raises(InvalidInput):
        store.read_log("t", -1)


def test_log_cap_keeps_the_newest_text_at_stable_offsets(store: Store) -> None:
    # Given a log capped at 10 characters, written 4 letters at a time
    letters = "abcdefghijklmnopqrstuvwxyz"
    store.write([AppendLog("t", letters[i : i + 4], 10) for i in range(0, 26, 4)])
    # When it is read from the start (an offset that was dropped)
    chunk = read(store, "t", 0)
    # Then the read starts at the oldest kept text, and says where that is
    assert chunk == ("qrstuvwxyz", 16, 26)
    assert read(store, "t", 20) == ("uvwxyz", 20, 26)
    # And later appends keep counting from the absolute end, even past a cap of 0
    store.write([AppendLog("t", "0123456789AB", 10)])
    assert read(store, "t") == ("23456789AB", 28, 38)
    store.write([AppendLog("t", "", 0)])
    assert read(store, "t") == ("", 38, 38)
    store.write([AppendLog("t", "x", 5)])
    assert read(store, "t") == ("x", 38, 39)
    with pytest.raises(InvalidInput):
        store.write([AppendLog("t", "x", -1)])


def test_log_matches_a_model_under_random_appends(store: Store) -> None:
    # Given a model log (the whole text) and random appends around the store's chunk size
    rng = random.Random(3)
    cap, whole = 60_000, ""
    for i in range(40):
        piece = "".join(rng.choice("ab\ncd") for _ in range(rng.choice([0, 1, 500, 9000, 20000])))
        # When each piece is appended
        store.write([AppendLog("t", piece, cap)])
        whole += piece
        # Then every read agrees with the model: the newest cap characters, at true offsets
        first = max(0, len(whole) - cap)
        for offset in (0, first, rng.randrange(len(whole) + 1), len(whole)):
            begin = max(offset, first)
            want = whole[begin:] if i % 2 == 0 else whole[begin : begin + 7000]
            assert read(store, "t", offset, 7000 if i % 2 else None) == (want, begin, begin + len(want))


def test_blobs_store_bytes_by_task_and_name(store: Store) -> None:
    # Given two blobs of one task, one replaced
    store.write([PutBlob("t", "input", b"\x00\x01"), PutBlob("t", "result", b"r1")])
    store.write([PutBlob("t", "result", b"r2")])
    # When read, Then each name has its latest bytes, and unknown ones are None
    assert store.get_blob("t", "input") == b"\x00\x01"
    assert store.get_blob("t", "result") == b"r2"
    assert store.get_blob("t", "other") is None and store.get_blob("u", "input") is None


def test_delete_task_removes_its_log_and_blobs_only(store: Store) -> None:
    # Given two tasks, each with a log and a blob
    a, b = make(), make()
    put(store, a, b)
    store.write([AppendLog(a.id, "log", 100), AppendLog(b.id, "log", 100),
                 PutBlob(a.id, "result", b"x"), PutBlob(b.id, "result", b"x")])
    # When one is deleted (twice: deleting what is gone is fine)
    store.write([DeleteTask(a.id), DeleteTask(a.id)])
    # Then it is gone with its log and blobs, and the other is untouched
    assert store.get(a.id) is None and store.read_log(a.id).text == ""
    assert store.get_blob(a.id, "result") is None
    assert store.get(b.id) == b and store.read_log(b.id).text == "log"
    assert store.get_blob(b.id, "result") == b"x"


# -- pruning ------------------------------------------------------------------------


def test_prune_by_count_keeps_the_newest_terminal_and_every_live_task(store: Store) -> None:
    # Given live tasks mixed among ten ended ones, each ended one with a log and blob
    live_old = make(state=State.RUNNING)
    done = [ended(s) for s in [State.FINISHED, State.FAILED, State.CANCELLED] * 3 + [State.FINISHED]]
    live_new = make(state=State.PENDING)
    put(store, live_old, *done, live_new)
    store.write([AppendLog(t.id, "x", 10) for t in done] + [PutBlob(t.id, "result", b"r") for t in done])
    # When pruned to keep four ended tasks
    store.write([Prune(keep=4, before=None)])
    # Then the four newest ended tasks and every live one remain; the rest left no trace
    kept = [t.id for t in reversed(done[-4:])]
    assert ids(store.list(TaskFilter()).tasks) == [live_new.id, *kept, live_old.id]
    for gone in done[:-4]:
        assert store.read_log(gone.id).text == "" and store.get_blob(gone.id, "result") is None
    assert store.read_log(done[-1].id).text == "x"
    # And keep=0 removes every ended task, but no live one
    store.write([Prune(keep=0, before=None)])
    assert ids(store.list(TaskFilter()).tasks) == [live_new.id, live_old.id]
    with pytest.raises(InvalidInput):
        store.write([Prune(keep=-1, before=None)])


def test_prune_by_age_removes_only_terminal_tasks_that_ended_before(store: Store) -> None:
    # Given old and recent ended tasks, and an old live task
    old = [ended(finished_at=100.0 + i) for i in range(3)]
    recent = [ended(State.FAILED, finished_at=1000.0 + i) for i in range(3)]
    live = make(state=State.RUNNING, created_at=1.0)
    put(store, *old, live, *recent)
    # When pruned by age (and a no-op prune)
    store.write([Prune(keep=None, before=500.0), Prune(keep=None, before=None)])
    # Then only the old ended tasks are gone
    assert set(ids(store.list(TaskFilter()).tasks)) == {live.id, *ids(recent)}


# -- atomicity and threads ----------------------------------------------------------


def test_a_failing_batch_leaves_nothing_of_itself(store: Store) -> None:
    # Given a stored task
    first = make()
    put(store, first)
    # When a batch updates it, logs, stores a blob, then fails on its last op
    bad = make(params={"x": object()})
    ops: list[Op] = [
        PutTask(dataclasses.replace(first, state=State.RUNNING)), AppendLog(first.id, "log", 10),
        PutBlob(first.id, "result", b"r"), PutTask(make()), PutTask(bad),
    ]
    with pytest.raises(InvalidInput):
        store.write(ops)
    # Then nothing of that batch is visible, and the store still takes writes
    assert store.get(first.id) == first and store.count(TaskFilter()) == 1
    assert store.read_log(first.id).text == "" and store.get_blob(first.id, "result") is None
    put(store, dataclasses.replace(first, state=State.RUNNING))
    assert store.get(first.id) == dataclasses.replace(first, state=State.RUNNING)


def test_sqlite_rolls_back_a_batch_that_fails_inside_the_database(sql_store: SQLiteStore) -> None:
    # Given a trigger that makes the database itself refuse a blob named "boom"
    with sqlite3.connect(sql_store.path) as conn:
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON blobs WHEN NEW.name = 'boom' "
                     "BEGIN SELECT RAISE(ABORT, 'boom'); END")
    task = make()
    # When a batch writes a task, a log, and then that blob
    with pytest.raises(sqlite3.IntegrityError):
        sql_store.write([PutTask(task), AppendLog(task.id, "x", 10), PutBlob(task.id, "boom", b"")])
    # Then the rows written before the failure were rolled back
    assert sql_store.get(task.id) is None and sql_store.read_log(task.id).text == ""
    put(sql_store, task)
    assert sql_store.get(task.id) == task


def test_readers_on_other_threads_see_consistent_pages_while_writing(store: Store) -> None:
    # Given readers listing in threads
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                got = ids(store.list(TaskFilter(), 50).tasks)
                assert got == sorted(got, reverse=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    # When the writer commits batches meanwhile
    for _ in range(30):
        put(store, *[make() for _ in range(20)])
    stop.set()
    for t in threads:
        t.join()
    # Then no reader failed and every row is there
    assert errors == [] and store.count(TaskFilter()) == 600


def test_a_closed_store_refuses_use(store: Store) -> None:
    # Given a closed store, When used, Then it says so (and closing again is fine)
    store.close()
    store.close()
    with pytest.raises(BgTasksError):
        store.get("x")
    with pytest.raises(BgTasksError):
        put(store, make())
