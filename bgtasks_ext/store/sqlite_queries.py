"""The SQL of the SQLite store: listing queries and the steps a write batch runs.

Kept apart from the connection handling in :mod:`.sqlite` so that each query can be
read (and ``EXPLAIN``-ed by tests) on its own. A set of states is turned into a
``UNION ALL`` of one ``state = ?`` range per state, which SQLite merges in id order;
``state IN (...)`` would make it scan the primary key or sort.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any, Callable

from ..core.models import TaskFilter
from ..core.ports import (
    AppendLog,
    DeleteSchedule,
    DeleteTask,
    DropInputs,
    Prune,
    PutBlob,
    PutSchedule,
    PutTask,
)
from ..core.states import State
from . import codec

Step = Callable[[sqlite3.Connection], None]

LOG_CHUNK = 16384
"""Appends go into the newest log row until it holds this many characters: few rows
for chatty tasks, and a bounded rewrite per append."""

# An upsert, not INSERT OR REPLACE: REPLACE deletes and re-inserts the row, touching
# every index twice; DO UPDATE rewrites the row in place (updates cost ~40% less).
UPSERT = (
    "INSERT INTO tasks (id, state, kind, key, kernel_id, schedule_id, finished_at, record,"
    " server_id, scheduled_for) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
    "state = excluded.state, kind = excluded.kind, key = excluded.key, "
    "kernel_id = excluded.kernel_id, schedule_id = excluded.schedule_id, "
    "finished_at = excluded.finished_at, record = excluded.record, "
    "server_id = excluded.server_id, scheduled_for = excluded.scheduled_for"
)
PUT_BLOB = "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?)"
_PUT_SCHEDULE = "INSERT OR REPLACE INTO schedules VALUES (?, ?)"
_DELETE_SCHEDULE = (
    "DELETE FROM schedules WHERE id = ?",
    "DELETE FROM blobs WHERE task_id = ?",
)
_DELETE = (
    "DELETE FROM tasks WHERE id = ?",
    "DELETE FROM logs WHERE task_id = ?",
    "DELETE FROM blobs WHERE task_id = ?",
)
_EQ_COLUMNS = ("kind", "key", "kernel_id", "schedule_id")


def _equalities(flt: TaskFilter) -> list[tuple[str, str]]:
    values = (flt.kind, flt.key, flt.kernel_id, flt.schedule_id)
    return [(c, v) for c, v in zip(_EQ_COLUMNS, values) if v is not None]


def list_query(
    flt: TaskFilter,
    after: str | None = None,
    limit: int | None = None,
    newest_first: bool = True,
    columns: str = "id, record",
) -> tuple[str, list[Any]]:
    """The SQL and parameters selecting ``columns`` of tasks matching ``flt``, ordered
    by id, ids below ``after`` only, at most ``limit`` rows. ``flt.states`` must not be
    an empty set (which matches nothing: callers answer it without SQL)."""
    eq = _equalities(flt)
    terms = [f"{c} = ?" for c, _ in eq] + (["id < ?"] if after is not None else [])
    args: list[Any] = [v for _, v in eq] + ([after] if after is not None else [])
    states: list[State] | None = sorted(flt.states) if flt.states is not None else None
    if states is None and eq:
        states = list(State)  # the filtered indexes are in id order only within a state
    if states is None:
        legs, params = [_leg(columns, terms)], args
    else:
        legs = [_leg(columns, ["state = ?", *terms]) for _ in states]
        params = [a for s in states for a in (s.value, *args)]
    sql = " UNION ALL ".join(legs) + f" ORDER BY id {'DESC' if newest_first else 'ASC'}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _leg(columns: str, terms: list[str]) -> str:
    return f"SELECT {columns} FROM tasks" + (" WHERE " + " AND ".join(terms) if terms else "")


def count_query(flt: TaskFilter) -> tuple[str, list[Any]]:
    """SQL counting the tasks matching ``flt``: no order needed, so ``IN`` is fine here."""
    eq = _equalities(flt)
    terms = [f"{c} = ?" for c, _ in eq]
    args: list[Any] = [v for _, v in eq]
    if flt.states is not None:
        terms.append(f"state IN ({', '.join('?' * len(flt.states))})")
        args += [s.value for s in flt.states]
    where = " WHERE " + " AND ".join(terms) if terms else ""
    return f"SELECT count(*) FROM tasks{where}", args


def plan(cls: type, ops: list[Any]) -> list[Step]:
    """Steps applying a run of same-typed ops: one ``executemany`` where SQL allows.

    Encoding and validation happen here, before the transaction starts, so the write
    lock on the file is held only for the SQL itself."""
    if cls is PutTask:
        # Only a task's last version in a run matters: progress snapshots collapse.
        latest = {op.task.id: op.task for op in ops}
        return [partial(_many, UPSERT, [codec.row(t) for t in latest.values()])]
    if cls is DeleteTask:
        ids = [(op.task_id,) for op in ops]
        return [partial(_many, sql, ids) for sql in _DELETE]
    if cls is PutBlob:
        return [partial(_many, PUT_BLOB, [(op.task_id, op.name, op.data) for op in ops])]
    if cls is AppendLog:
        for op in ops:
            codec.check_cap(op.cap)
        return [partial(_append_log, op.task_id, codec.clean_text(op.text), op.cap) for op in ops]
    if cls is Prune:
        for op in ops:
            codec.check_keep(op.keep)
        return [partial(_prune, op.keep, op.before) for op in ops]
    if cls is DropInputs:
        return [partial(_drop_inputs, op.before, op.task_id) for op in ops]
    if cls is PutSchedule:
        latest = {op.schedule.id: op.schedule for op in ops}
        rows = [(sid, codec.dumps_schedule(s)) for sid, s in latest.items()]
        return [partial(_many, _PUT_SCHEDULE, rows)]
    if cls is DeleteSchedule:
        ids = [(op.schedule_id,) for op in ops]
        return [partial(_many, sql, ids) for sql in _DELETE_SCHEDULE]
    raise TypeError(f"not a store operation: {cls.__name__}")


def _many(sql: str, rows: list[tuple[Any, ...]], conn: sqlite3.Connection) -> None:
    conn.executemany(sql, rows)


def _append_log(task_id: str, text: str, cap: int, conn: sqlite3.Connection) -> None:
    """Append, then keep the newest ``cap`` characters. Lengths are taken in Python:
    SQLite's ``length()`` stops at a NUL, which a process may well print."""
    last = conn.execute(
        "SELECT start, text FROM logs WHERE task_id = ? ORDER BY start DESC LIMIT 1", (task_id,)
    ).fetchone()
    start, old = last if last else (0, "")
    end = start + len(old) + len(text)
    if len(text) >= cap:
        # Nothing older survives. An empty row at the end (cap 0) remembers the offset.
        conn.execute("DELETE FROM logs WHERE task_id = ?", (task_id,))
        kept = text[len(text) - cap :]
        conn.execute("INSERT INTO logs VALUES (?, ?, ?)", (task_id, end - cap, kept))
        return
    if last is None or len(old) + len(text) <= LOG_CHUNK:
        conn.execute("INSERT OR REPLACE INTO logs VALUES (?, ?, ?)", (task_id, start, old + text))
    elif text:
        conn.execute("INSERT INTO logs VALUES (?, ?, ?)", (task_id, start + len(old), text))
    keep_from = end - cap
    if keep_from <= 0:
        return
    dropped = conn.execute(
        "SELECT start, text FROM logs WHERE task_id = ? AND start < ? ORDER BY start",
        (task_id, keep_from),
    ).fetchall()
    for first, chunk in dropped:
        conn.execute("DELETE FROM logs WHERE task_id = ? AND start = ?", (task_id, first))
        if first + len(chunk) > keep_from:  # straddles the cut: keep its tail
            tail = chunk[keep_from - first :]
            conn.execute("INSERT INTO logs VALUES (?, ?, ?)", (task_id, keep_from, tail))


def _prune(keep: int | None, before: float | None, conn: sqlite3.Connection) -> None:
    ended = TaskFilter(states=frozenset(codec.TERMINAL_STATES))
    doomed: set[str] = set()
    if keep is not None:
        sql, params = list_query(ended, columns="id")
        rows = conn.execute(sql + " LIMIT -1 OFFSET ?", (*params, keep))
        doomed.update(r[0] for r in rows)
    if before is not None:
        # Without statistics SQLite would walk every ended task by state; the old ones
        # are one range of the finished_at index.
        marks = ", ".join("?" * len(codec.TERMINAL_STATES))
        rows = conn.execute(
            "SELECT id FROM tasks INDEXED BY tasks_finished"
            f" WHERE finished_at < ? AND state IN ({marks})",
            (before, *(s.value for s in codec.TERMINAL_STATES)),
        )
        doomed.update(r[0] for r in rows)
    ids = [(i,) for i in doomed]
    for sql in _DELETE:
        conn.executemany(sql, ids)
    # The fire times of pruned runs are long past: nothing fires them again (a schedule
    # fires only after its last_fired_at). A run a user deletes keeps its fire time.
    conn.executemany("DELETE FROM fires WHERE task_id = ?", ids)


def _drop_inputs(before: float, task_id: str | None, conn: sqlite3.Connection) -> None:
    """Delete the ``input`` blobs of terminal tasks finished at or before ``before``.
    A sweep walks the (few) input blobs, not the history: most tasks have no input."""
    marks = ", ".join("?" * len(codec.TERMINAL_STATES))
    states = [s.value for s in codec.TERMINAL_STATES]
    which, args = ("AND b.task_id = ?", [task_id]) if task_id is not None else ("", [])
    conn.execute(
        "DELETE FROM blobs WHERE name = 'input' AND task_id IN ("
        " SELECT b.task_id FROM blobs b JOIN tasks t ON t.id = b.task_id"
        f" WHERE b.name = 'input' {which} AND t.finished_at <= ? AND t.state IN ({marks}))",
        (*args, before, *states),
    )
