"""SQLite store: the default home of task history, one file that outlives the server.

WAL lets readers (REST handlers on their threads) run while the engine's single writer
thread commits, and ``synchronous=NORMAL`` makes a commit cost no fsync: a crash of the
process loses nothing, a power cut may lose the last moments. One connection writes
(under a lock, though the engine only writes from one thread); each reading thread gets
its own connection, since a shared one would serialize all reads.

Listing is keyset pagination (``id < cursor``) served from indexes in id order; the SQL
lives in :mod:`.sqlite_queries` and the schema in :mod:`.sqlite_schema`.
"""

from __future__ import annotations

import builtins
import itertools
import os
import sqlite3
import threading
import weakref
from typing import Any, Callable, Sequence, TypeVar

from ..core.errors import BgTasksError
from ..core.models import LogChunk, Page, Task, TaskFilter
from ..core.ports import Op, Store
from ..core.schedules import Schedule
from . import codec, sqlite_leases
from .journal import StartJournal
from .localfs import filesystem_type, is_network
from .sqlite_queries import count_query, list_query, plan
from .sqlite_schema import MIGRATIONS, Migration, migrate


T = TypeVar("T")


class _Holder:
    """Owns one thread's read connection; when the thread ends, it is closed."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn


def _drop_reader(readers: dict[int, sqlite3.Connection], lock: threading.Lock, key: int) -> None:
    with lock:
        conn = readers.pop(key, None)
    if conn is not None:
        conn.close()


class SQLiteStore(Store):
    """A :class:`Store` in one SQLite file at ``path`` (its folder is created)."""

    migrations: Sequence[Migration] = MIGRATIONS
    """The schema steps this class applies; a subclass may extend them (tests do)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self.path = os.fspath(path)
        self.busy_timeout = busy_timeout
        self._wlock = threading.Lock()
        self._journal = StartJournal(str(self.path))
        self._rlock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._readers: dict[int, sqlite3.Connection] = {}
        self._reader_ids = itertools.count()
        self._local = threading.local()

    # -- lifecycle ------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode (isolation_level=None): transactions are ours, explicit.
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def open(self) -> None:
        if self._writer is not None:
            return
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        fstype = filesystem_type(folder)
        if is_network(fstype):
            raise BgTasksError(
                f"the task store {self.path} is on a network filesystem ({fstype}): SQLite needs "
                "a disk local to this host; set c.BgTasks.store_path to a local path "
                "(for example under /tmp or /var/tmp on JupyterHub)")
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            conn.execute("PRAGMA journal_mode = WAL")
            migrate(conn, self.path, self.migrations)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise BgTasksError(f"cannot open the task store {self.path}: {exc}") from exc
            raise
        with self._wlock:
            self._writer = conn
            self._local = threading.local()
        self._journal.open()

    def close(self) -> None:
        self._journal.close()
        with self._wlock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._rlock:
            for conn in self._readers.values():
                conn.close()
            self._readers.clear()

    def _reader(self) -> sqlite3.Connection:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is None or self._writer is None:
            with self._rlock:
                if self._writer is None:
                    raise BgTasksError(f"the task store {self.path} is not open")
                conn = self._connect()
                conn.execute("PRAGMA query_only = 1")
                key = next(self._reader_ids)
                self._readers[key] = conn
            holder = _Holder(conn)
            # Not a bound method: the finalizer must not keep the store alive.
            weakref.finalize(holder, _drop_reader, self._readers, self._rlock, key)
            self._local.holder = holder
        return holder.conn

    # -- writes ---------------------------------------------------------------------

    def write(self, ops: Sequence[Op]) -> None:
        steps = [s for cls, run in itertools.groupby(ops, type) for s in plan(cls, list(run))]
        if not steps:
            return
        with self._wlock:
            conn = self._writer
            if conn is None:
                raise BgTasksError(f"the task store {self.path} is not open")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for step in steps:
                    step(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _direct(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one of :mod:`.sqlite_leases`' transactions on the writing connection
        (between the writer's batches: one lock, one connection per process)."""
        with self._wlock:
            conn = self._writer
            if conn is None:
                raise BgTasksError(f"the task store {self.path} is not open")
            return fn(conn, *args)

    def lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        return self._direct(sqlite_leases.lease, name, holder, ttl, now)

    def release(self, name: str, holder: str) -> None:
        self._direct(sqlite_leases.release, name, holder)

    def lease_holder(self, name: str, now: float) -> str | None:
        return sqlite_leases.lease_holder(self._reader(), name, now)

    def insert_run(self, task: Task, payload: bytes | None, schedule_id: str,
                   fire_time: float) -> bool:
        return self._direct(sqlite_leases.insert_run, task, payload, schedule_id, fire_time)

    def insert_runs(self, runs: Sequence[tuple[Task, bytes | None, str, float]]
                    ) -> builtins.list[bool]:
        return self._direct(sqlite_leases.insert_runs, runs)

    def adopt_orphans(self, server_id: str, now: float) -> builtins.list[Task]:
        return self._direct(sqlite_leases.adopt_orphans, server_id, now)

    # -- the start journal (see journal.py) -------------------------------------------
    def note_started(self, task_id: str, attempt: int) -> None:
        self._journal.note(task_id, attempt)

    def started(self) -> set[tuple[str, int]]:
        return self._journal.started()

    def clear_started(self) -> None:
        self._journal.clear()

    # -- reads ----------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        row = self._reader().execute("SELECT record FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return codec.loads(row[0]) if row else None

    def list(self, flt: TaskFilter, limit: int = 100, cursor: str | None = None) -> Page:
        codec.check_limit(limit)
        after = codec.decode_cursor(cursor) if cursor is not None else None
        if flt.states is not None and not flt.states:
            return Page([], None)
        # One row more than asked tells whether there is a next page.
        sql, params = list_query(flt, after, limit + 1)
        rows = self._reader().execute(sql, params).fetchall()
        tasks = [codec.loads(r[1]) for r in rows[:limit]]
        return Page(tasks, codec.encode_cursor(tasks[-1].id) if len(rows) > limit else None)

    def count(self, flt: TaskFilter) -> int:
        if flt.states is not None and not flt.states:
            return 0
        sql, params = count_query(flt)
        return int(self._reader().execute(sql, params).fetchone()[0])

    def live(self) -> builtins.list[Task]:
        flt = TaskFilter(states=frozenset(codec.LIVE_STATES))
        sql, params = list_query(flt, newest_first=False)
        return [codec.loads(r[1]) for r in self._reader().execute(sql, params)]

    def read_log(self, task_id: str, offset: int = 0, limit: int | None = None) -> LogChunk:
        codec.check_log_read(offset, limit)
        # From the row holding ``offset`` (or the oldest kept row, if it was dropped) on;
        # one statement, so one consistent snapshot.
        rows = self._reader().execute(
            "SELECT start, text FROM logs WHERE task_id = ? AND start >= coalesce("
            "(SELECT max(start) FROM logs WHERE task_id = ? AND start <= ?), 0) ORDER BY start",
            (task_id, task_id, offset),
        )
        begin: int | None = None
        pieces: builtins.list[str] = []
        size = 0
        for start, text in rows:
            if begin is None:
                begin = min(max(offset, start), start + len(text))
                text = text[begin - start :]
            pieces.append(text)
            size += len(text)
            if limit is not None and size >= limit:
                break
        out = "".join(pieces)
        if limit is not None:
            out = out[:limit]
        begin = begin or 0
        return LogChunk(out, begin, begin + len(out))

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        row = self._reader().execute(
            "SELECT record FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
        return codec.loads_schedule(row[0]) if row else None

    def list_schedules(self) -> builtins.list[Schedule]:
        rows = self._reader().execute("SELECT record FROM schedules ORDER BY id")
        return [codec.loads_schedule(r[0]) for r in rows]

    def get_blob(self, task_id: str, name: str) -> bytes | None:
        row = self._reader().execute(
            "SELECT data FROM blobs WHERE task_id = ? AND name = ?", (task_id, name)
        ).fetchone()
        return bytes(row[0]) if row else None
