"""What keeps several servers on one SQLite file apart: leases, schedule runs, orphans.

Each function here is one short ``BEGIN IMMEDIATE`` transaction on the connection it
is given: the file's write lock makes it atomic against every other process on the
file, so "is the lease free? then take it" and "has this fire time run? then insert the
run" cannot interleave between two servers.

A lease row also names the process that took it (host and pid). A lease expires at its
``expires_at`` (the rule that holds across hosts); on this host it is also free as soon
as that process is gone, so a server restarted after a crash does not wait out its dead
predecessor's lease. "This host" includes the pid namespace, so two containers that
share a hostname never judge each other's pids.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from typing import Any, Callable, Sequence, TypeVar

from ..core.models import Task
from ..core.ports import server_lease
from ..core.states import State
from . import codec
from .sqlite_queries import PUT_BLOB, UPSERT

T = TypeVar("T")

_SERVER = server_lease("")
LIVE = tuple(s.value for s in State if not s.terminal)


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


HOST = f"{socket.gethostname()}|{_pid_namespace()}"
"""This process's host, as lease rows record it."""


def process_gone(host: str, pid: int) -> bool:
    """Whether the process that took a lease is known dead: only answerable on its own
    host, and never for this very process (engines in one process judge by expiry)."""
    if host != HOST or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    try:  # a zombie (killed, not yet reaped) answers the signal but runs nothing
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def _held(row: tuple[Any, ...] | None, now: float) -> str | None:
    """The holder of a lease row at ``now``, or ``None`` when the lease is free."""
    if row is None:
        return None
    holder, expires_at, host, pid = row
    if expires_at <= now or process_gone(host, pid):
        return None
    return str(holder)


def _transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        out = body(conn)
        conn.execute("COMMIT")
        return out
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _row(conn: sqlite3.Connection, name: str) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = conn.execute(
        "SELECT holder, expires_at, host, pid FROM leases WHERE name = ?", (name,)).fetchone()
    return row


def lease(conn: sqlite3.Connection, name: str, holder: str, ttl: float, now: float) -> bool:
    def body(c: sqlite3.Connection) -> bool:
        current = _held(_row(c, name), now)
        if current is not None and current != holder:
            return False
        c.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                  (name, holder, now + ttl, HOST, os.getpid()))
        return True

    return _transaction(conn, body)


def release(conn: sqlite3.Connection, name: str, holder: str) -> None:
    _transaction(conn, lambda c: c.execute(
        "DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder)))


def lease_holder(conn: sqlite3.Connection, name: str, now: float) -> str | None:
    return _held(_row(conn, name), now)


def insert_run(conn: sqlite3.Connection, task: Task, payload: bytes | None,
               schedule_id: str, fire_time: float) -> bool:
    row = codec.row(task)  # encoded (and checked) before the file is locked

    def body(c: sqlite3.Connection) -> bool:
        fired = c.execute("INSERT OR IGNORE INTO fires VALUES (?, ?, ?)",
                          (schedule_id, fire_time, task.id))
        if fired.rowcount == 0:
            return False
        c.execute(UPSERT, row)
        if payload is not None:
            c.execute(PUT_BLOB, (task.id, "input", payload))
        return True

    return _transaction(conn, body)


def insert_runs(conn: sqlite3.Connection,
                runs: Sequence[tuple[Task, bytes | None, str, float]]) -> list[bool]:
    """:func:`insert_run` for many runs, in one transaction."""
    rows = [codec.row(task) for task, *_ in runs]

    def body(c: sqlite3.Connection) -> list[bool]:
        done = []
        for (task, payload, schedule_id, fire_time), row in zip(runs, rows):
            fired = c.execute("INSERT OR IGNORE INTO fires VALUES (?, ?, ?)",
                              (schedule_id, fire_time, task.id))
            if fired.rowcount == 0:
                done.append(False)
                continue
            c.execute(UPSERT, row)
            if payload is not None:
                c.execute(PUT_BLOB, (task.id, "input", payload))
            done.append(True)
        return done

    return _transaction(conn, body)


def adopt_orphans(conn: sqlite3.Connection, server_id: str, now: float) -> list[Task]:
    def body(c: sqlite3.Connection) -> list[Task]:
        held = {name[len(_SERVER):] for name, *rest in c.execute(
            "SELECT name, holder, expires_at, host, pid FROM leases WHERE name LIKE ?",
            (_SERVER + "%",)) if _held(tuple(rest), now) is not None}
        marks = ", ".join("?" * len(LIVE))
        rows = c.execute(f"SELECT record, server_id FROM tasks WHERE state IN ({marks}) ORDER BY id",
                         LIVE).fetchall()
        adopted = [codec.loads(rec).evolve(server_id=server_id)
                   for rec, owner in rows if owner is None or owner not in held]
        c.executemany("UPDATE tasks SET server_id = ?, record = ? WHERE id = ?",
                      [(server_id, codec.dumps(t), t.id) for t in adopted])
        return adopted

    return _transaction(conn, body)
