"""What only the SQLite store has: a file that persists, pragmas, schema migrations, and
query plans that stay index-only at 100,000 rows. The shared contract is in
test_store.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Iterator

import pytest

from bgtasks_ext.core.errors import BgTasksError
from bgtasks_ext.core.models import Origin, Task, TaskFilter
from bgtasks_ext.core.ports import AppendLog, PutBlob, PutTask
from bgtasks_ext.core.states import State
from bgtasks_ext.store.sqlite import SQLiteStore
from bgtasks_ext.store.sqlite_schema import MIGRATIONS


def make(n: int, **fields: Any) -> Task:
    base: dict[str, Any] = dict(
        id=f"{n:032x}", kind="count", name=f"t{n}", params={}, state=State.PENDING,
        created_at=1_700_000_000.0 + n, executor="thread",
    )
    base.update(fields)
    return Task(**base)


def pragma(path: Path, name: str) -> Any:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(path)
    s.open()
    yield s
    s.close()


def test_history_survives_a_reopen(path: Path, store: SQLiteStore) -> None:
    # Given a task with a log and a blob, written and the store closed
    task = make(1, state=State.FINISHED, finished_at=5.0)
    store.write([PutTask(task), AppendLog(task.id, "out", 100), PutBlob(task.id, "result", b"r")])
    store.close()
    # When the file is opened by a new store
    again = SQLiteStore(path)
    again.open()
    # Then everything is there
    assert again.get(task.id) == task
    assert again.read_log(task.id).text == "out" and again.get_blob(task.id, "result") == b"r"
    again.close()


def test_file_is_wal_with_normal_sync_at_the_latest_schema(path: Path, store: SQLiteStore) -> None:
    # Given an open store, When its file and connection are inspected
    conn = store._reader()  # the store's own connection: synchronous is per connection
    # Then the file is in WAL mode at the newest schema, and commits do not fsync
    assert pragma(path, "journal_mode") == "wal"
    assert pragma(path, "user_version") == len(MIGRATIONS) >= 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_an_empty_v0_file_is_migrated(path: Path) -> None:
    # Given an existing, empty SQLite file (user_version 0)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    assert pragma(path, "user_version") == 0
    store = SQLiteStore(path)
    # When the store opens it
    store.open()
    # Then it is at the latest version and works
    assert pragma(path, "user_version") == len(MIGRATIONS)
    store.write([PutTask(make(1))])
    assert store.get(make(1).id) == make(1)
    store.close()


def test_a_file_from_a_newer_version_is_refused_by_name(path: Path) -> None:
    # Given a file whose schema is newer than this code knows
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    # When a store opens it, Then a clear error names the file and both versions
    with pytest.raises(BgTasksError, match=rf"schema version 99, newer .* \(up to {len(MIGRATIONS)}\)") as info:
        SQLiteStore(path).open()
    assert str(path) in str(info.value)
    # And the file is left alone
    assert pragma(path, "user_version") == 99


def test_a_new_migration_step_runs_on_an_existing_file(path: Path, store: SQLiteStore) -> None:
    # Given a v1 file holding a task, and a release that adds a step
    store.write([PutTask(make(1))])
    store.close()

    def add_note(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE tasks ADD COLUMN note TEXT")

    class Newer(SQLiteStore):
        migrations = (*MIGRATIONS, add_note)

    newer = Newer(path)
    # When the newer release opens the file
    newer.open()
    # Then the step ran, the version moved on, and the data is intact
    assert pragma(path, "user_version") == len(MIGRATIONS) + 1
    assert newer.get(make(1).id) == make(1)
    assert "note" in [r[1] for r in newer._reader().execute("PRAGMA table_info(tasks)")]
    newer.close()


def test_a_file_of_the_first_release_migrates_and_its_live_tasks_are_orphans(path: Path) -> None:
    from bgtasks_ext.core.ports import PutSchedule, server_lease
    from bgtasks_ext.core.schedules import Schedule

    from bgtasks_ext.store import codec
    from bgtasks_ext.store.sqlite_schema import migrate

    # Given a file of the first schema (no servers, no schedules) holding history, as
    # that release wrote it
    running = make(1, state=State.RUNNING, schedule_id="s")
    done = make(2, state=State.FINISHED, finished_at=5.0)
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), MIGRATIONS[:1])
    for task in (running, done):
        conn.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)", codec.row(task)[:8])
    conn.execute("INSERT INTO logs VALUES (?, 0, 'out')", (done.id,))
    conn.close()
    assert pragma(path, "user_version") == 1
    # When this release opens it
    store = SQLiteStore(path)
    store.open()
    try:
        # Then it is migrated, its history intact, and the new parts work on it
        assert pragma(path, "user_version") == len(MIGRATIONS)
        assert store.get(done.id) == done and store.read_log(done.id).text == "out"
        assert store.list(TaskFilter(schedule_id="s")).tasks == [running]
        assert store.lease(server_lease("n"), "n", 10, 100.0)
        assert store.adopt_orphans("n", 100.0) == [running.evolve(server_id="n")]
        assert store.insert_run(make(3, schedule_id="s", scheduled_for=7.0), None, "s", 7.0)
        store.write([PutSchedule(Schedule("s", "n", "count", {}, 1.0, every=1.0))])
        assert [s.id for s in store.list_schedules()] == ["s"]
    finally:
        store.close()


def test_a_failing_migration_step_leaves_the_file_at_its_version(path: Path, store: SQLiteStore) -> None:
    # Given a v1 file and a release whose new step fails half way
    store.close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("step failed")

    class Broken(SQLiteStore):
        migrations = (*MIGRATIONS, broken)

    # When that release opens the file, Then it fails
    with pytest.raises(RuntimeError):
        Broken(path).open()
    # And the file is still a clean v1 that the current release opens
    assert pragma(path, "user_version") == len(MIGRATIONS)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0
    store.open()


def test_a_file_that_is_not_a_database_gives_a_clear_error(path: Path) -> None:
    # Given a file with other content, When opened, Then a BgTasksError names it
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BgTasksError, match="cannot open the task store"):
        SQLiteStore(path).open()


# -- 100,000 rows: every filtered page is an index range, never a scan or a sort ------

N = 100_000
STATES = [State.FINISHED] * 60 + [State.FAILED] * 25 + [State.CANCELLED] * 12 + [
    State.PENDING, State.RUNNING, State.CANCELLING]


def big_task(i: int) -> Task:
    state = STATES[i % len(STATES)]
    return make(
        i, state=state, kind=f"kind{i % 5}",
        key=f"key{i % 50}" if i % 10 == 0 else None,
        origin=Origin(f"kernel{i % 20}" if i % 2 == 0 else None, None),
        schedule_id=f"s{i % 3}" if i % 7 == 0 else None,
        finished_at=float(i) if state.terminal else None,
    )


BIG_FILTERS = [
    TaskFilter.of(state="running"),
    TaskFilter.of(category="pending"),
    TaskFilter.of(category="failed"),
    TaskFilter.of(category="finished"),
    TaskFilter.of(kind="kind3"),
    TaskFilter.of(key="key20"),
    TaskFilter.of(kernel_id="kernel4"),
    TaskFilter.of(schedule_id="s1"),
    TaskFilter.of(category="failed", kind="kind1"),
    TaskFilter.of(category="pending", key="key30"),  # the live-task-by-key lookup
    TaskFilter.of(state="finished", kernel_id="kernel6", schedule_id="s2"),
    TaskFilter(),
]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SQLiteStore, list[Task]]]:
    store = SQLiteStore(tmp_path_factory.mktemp("big") / "big.db")
    store.open()
    tasks = [big_task(i) for i in range(1, N + 1)]
    for i in range(0, N, 5000):
        store.write([PutTask(t) for t in tasks[i : i + 5000]])
    yield store, tasks
    store.close()


def plan_of_list(store: SQLiteStore, flt: TaskFilter, cursor: str | None) -> list[str]:
    """EXPLAIN QUERY PLAN of the very statement ``list()`` ran (traced, parameters bound)."""
    conn = store._reader()
    ran: list[str] = []
    conn.set_trace_callback(ran.append)
    try:
        store.list(flt, 100, cursor)
    finally:
        conn.set_trace_callback(None)
    (sql,) = ran
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]


def _filter_id(flt: TaskFilter) -> str:
    """A stable test id (a frozenset's repr follows the hash seed, which differs between
    xdist workers: their collections must match)."""
    states = "|".join(sorted(s.value for s in flt.states)) if flt.states else "any"
    rest = [f"{k}={v}" for k in ("kind", "key", "kernel_id", "schedule_id") if (v := getattr(flt, k))]
    return ",".join([states, *rest])


@pytest.mark.parametrize("flt", BIG_FILTERS, ids=_filter_id)
def test_listing_at_100k_rows_reads_index_ranges_in_order(
    big: tuple[SQLiteStore, list[Task]], flt: TaskFilter
) -> None:
    # Given 100,000 tasks in a file
    store, tasks = big
    expected = [t.id for t in reversed(tasks) if flt.matches(t)][:300]
    # When three pages are listed
    pages, cursor, plans = [], None, []
    for _ in range(3):
        plans.append(plan_of_list(store, flt, cursor))
        page = store.list(flt, 100, cursor)
        pages += [t.id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            break
    # Then the rows are right: newest first, no gap, no repeat
    assert pages == expected
    # And every query read index ranges in id order: no sort, no table scan
    for plan in plans:
        assert not any("TEMP B-TREE" in line for line in plan), plan
        reads = [line for line in plan if line.startswith(("SCAN", "SEARCH"))]
        assert reads and all("USING" in line and "INDEX" in line for line in reads), plan
        if flt != TaskFilter():
            assert all(line.startswith("SEARCH") for line in reads), plan


def test_live_and_count_at_100k_rows(big: tuple[SQLiteStore, list[Task]]) -> None:
    # Given 100,000 tasks, When live tasks and a category are counted
    store, tasks = big
    live = store.live()
    # Then they match the data
    assert [t.id for t in live] == [t.id for t in tasks if not t.terminal]
    assert store.count(TaskFilter.of(category="failed", kind="kind2")) == sum(
        1 for t in tasks if t.category.value == "failed" and t.kind == "kind2")


MOUNTS = (
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "40 27 0:50 / /home rw,relatime - nfs4 server:/export/home rw,vers=4.2\n"
    "41 40 0:51 / /home/alice/my\\040disk rw - fuse.sshfs alice@box: rw\n"
    "42 27 8:17 / /mnt/usb rw - fuseblk /dev/sdb1 rw\n"
)


@pytest.mark.parametrize("path,fstype,network", [
    ("/home/alice/.local/share/jupyter/bgtasks/tasks.sqlite", "nfs4", True),
    ("/home/alice/my disk/tasks.sqlite", "fuse.sshfs", True),
    ("/mnt/usb/tasks.sqlite", "fuseblk", False),
    ("/var/tmp/tasks.sqlite", "ext4", False),
])
def test_the_filesystem_of_a_path_is_read_from_the_mount_table(path: str, fstype: str, network: bool) -> None:
    from bgtasks_ext.store.localfs import filesystem_type, is_network

    assert filesystem_type(path, MOUNTS) == fstype
    assert is_network(fstype) is network


def test_a_store_on_a_network_filesystem_refuses_to_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bgtasks_ext.store import localfs

    # Given a mount table in which the store's folder is an NFS mount
    table = tmp_path / "mountinfo"
    table.write_text(MOUNTS + f"50 27 0:60 / {tmp_path / 'nfs'} rw - nfs4 server:/x rw\n")
    monkeypatch.setattr(localfs, "MOUNTINFO", str(table))
    store = SQLiteStore(str(tmp_path / "nfs" / "tasks.sqlite"))
    # When it is opened / Then it refuses, saying why and which setting to change
    with pytest.raises(BgTasksError) as exc:
        store.open()
    assert "network filesystem (nfs4)" in str(exc.value) and "c.BgTasks.store_path" in str(exc.value)
    assert not (tmp_path / "nfs" / "tasks.sqlite").exists()


def test_a_store_on_a_local_disk_opens(tmp_path: Path) -> None:
    from bgtasks_ext.store.localfs import filesystem_type, is_network

    assert not is_network(filesystem_type(str(tmp_path)))
    store = SQLiteStore(str(tmp_path / "tasks.sqlite"))
    store.open()
    store.close()


def test_an_integer_beyond_64_bits_reads_back_as_it_is(path: Path, store: SQLiteStore) -> None:
    # Given a finished task whose result preview is int('9' * 400) (a kernel's `%bgtask
    # int('9' * 400)`), and params holding 2**70
    huge = int("9" * 400)
    task = make(1, state=State.FINISHED, finished_at=5.0, result_preview=huge, params={"n": 2**70})
    store.write([PutTask(task)])
    # When the history is read, one task and a page of them (also after a reopen)
    store.close()
    again = SQLiteStore(path)
    again.open()
    # Then it comes back exactly, and the page holding it is read (it was a 500 for good)
    assert again.get(task.id) == task
    assert again.list(TaskFilter()).tasks == [task]
    again.close()


def test_an_integer_just_beyond_64_bits_is_not_read_back_as_a_float(path: Path, store: SQLiteStore) -> None:
    # Given a task whose params and result hold 2**70 (orjson alone reads it as 1.18e21)
    task = make(1, state=State.FINISHED, finished_at=5.0, result_preview=2**70, params={"n": -(2**70)})
    store.write([PutTask(task)])
    # When it is read back / Then the integers are exact
    got = store.get(task.id)
    assert got is not None and got.result_preview == 2**70 and got.params == {"n": -(2**70)}
    assert isinstance(got.result_preview, int)
