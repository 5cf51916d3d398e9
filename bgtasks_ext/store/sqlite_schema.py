"""The SQLite store's schema and its migrations, versioned by ``PRAGMA user_version``.

A file's ``user_version`` says which steps of :data:`MIGRATIONS` it has had. Each step
is a function run in its own transaction together with the version bump, so a failing
step leaves the file exactly at the previous version, and a file from a newer release
is refused with its version named rather than misread.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Sequence

from ..core.errors import BgTasksError

Migration = Callable[[sqlite3.Connection], None]

_SCHEMA_V1 = (
    """CREATE TABLE tasks (
        id TEXT NOT NULL PRIMARY KEY, state TEXT NOT NULL, kind TEXT NOT NULL,
        key TEXT, kernel_id TEXT, schedule_id TEXT, finished_at REAL,
        record TEXT NOT NULL)""",
    # Every filtered index ends in (state, id): within one state the rows are in id
    # order, so a newest-first page is an index range read, never a sort.
    "CREATE INDEX tasks_state ON tasks (state, id)",
    "CREATE INDEX tasks_kind ON tasks (kind, state, id)",
    # Partial: most tasks have no key/kernel/schedule and then cost these indexes nothing.
    # (key, state, id) also answers "the live task with this key" in one probe per state.
    "CREATE INDEX tasks_key ON tasks (key, state, id) WHERE key IS NOT NULL",
    "CREATE INDEX tasks_kernel ON tasks (kernel_id, state, id) WHERE kernel_id IS NOT NULL",
    "CREATE INDEX tasks_schedule ON tasks (schedule_id, state, id) WHERE schedule_id IS NOT NULL",
    "CREATE INDEX tasks_finished ON tasks (finished_at) WHERE finished_at IS NOT NULL",
    # Log rows are chunks of one task's log, keyed by their absolute start offset.
    """CREATE TABLE logs (task_id TEXT NOT NULL, start INTEGER NOT NULL, text TEXT NOT NULL,
        PRIMARY KEY (task_id, start))""",
    """CREATE TABLE blobs (task_id TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (task_id, name))""",
)


def _v1(conn: sqlite3.Connection) -> None:
    for stmt in _SCHEMA_V1:
        conn.execute(stmt)


_SCHEMA_V2 = (
    # Which server's engine holds a live task, and the fire time of a schedule's run.
    # Plain columns added at the end: rows written before have NULL, which is right
    # (a task of no known server is an orphan; an old task is no schedule's run).
    "ALTER TABLE tasks ADD COLUMN server_id TEXT",
    "ALTER TABLE tasks ADD COLUMN scheduled_for REAL",
    "CREATE INDEX tasks_server ON tasks (server_id, state) WHERE server_id IS NOT NULL",
    "CREATE INDEX tasks_scheduled ON tasks (schedule_id, scheduled_for)"
    " WHERE scheduled_for IS NOT NULL",
    "CREATE TABLE schedules (id TEXT NOT NULL PRIMARY KEY, record TEXT NOT NULL)",
    # One row per fire time that got a run: the UNIQUE constraint is what keeps two
    # servers on one file from both running it (store.insert_run).
    """CREATE TABLE fires (schedule_id TEXT NOT NULL, fire_time REAL NOT NULL,
        task_id TEXT NOT NULL, UNIQUE (schedule_id, fire_time))""",
    "CREATE INDEX fires_task ON fires (task_id)",
    # host and pid of the process that took the lease: on this host, a dead holder's
    # lease is free at once instead of at its expiry (sqlite_leases.py).
    """CREATE TABLE leases (name TEXT NOT NULL PRIMARY KEY, holder TEXT NOT NULL,
        expires_at REAL NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL)""",
)


def _v2(conn: sqlite3.Connection) -> None:
    for stmt in _SCHEMA_V2:
        conn.execute(stmt)


MIGRATIONS: tuple[Migration, ...] = (_v1, _v2)
"""Step ``i`` takes a file from ``user_version`` i to i + 1. Append; never edit a step
that has shipped, since files in the wild already ran it."""


def migrate(conn: sqlite3.Connection, path: str, migrations: Sequence[Migration]) -> int:
    """Bring the file behind ``conn`` (autocommit mode) to ``len(migrations)``; return
    the version it had. Raises :class:`BgTasksError` for a file newer than we know."""
    latest = len(migrations)
    found: int | None = None
    while True:
        # IMMEDIATE, then read the version: two servers opening one file at once take
        # turns, and the second finds the work done instead of redoing it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            found = version if found is None else found
            if version > latest:
                raise BgTasksError(
                    f"the task store {path} has schema version {version}, newer than this "
                    f"jupyter-bgtasks knows (up to {latest}): upgrade jupyter-bgtasks, or "
                    "configure another store path"
                )
            if version == latest:
                conn.execute("COMMIT")
                return found
            migrations[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
