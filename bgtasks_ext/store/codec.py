"""Storage encodings shared by every store: the task record, cursors, limits, log text.

A stored task is one JSON object (its *record*) holding every field of
:class:`~bgtasks_ext.core.models.Task`; stores copy a few fields into indexed columns to
find rows, but always rebuild the task from the record, so the columns can never drift
from what is served. Enums are stored as their values, times as epoch floats (JSON keeps
a float exactly), and a record missing a field (written by an older version) decodes
with that field's default, so adding a field to ``Task`` needs no data migration.

Both stores share this module so that they behave alike down to the edge cases: the
in-memory store round-trips each task through the record too, which is what makes it a
faithful stand-in for SQLite in tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Mapping

import orjson

from ..core.errors import InvalidInput
from ..core.jsontext import dumps as json_dumps
from ..core.models import Origin, Progress, Scope, Task, TaskError
from ..core.schedules import Schedule
from ..core.states import State

MAX_LIMIT = 1000
"""Largest page a listing serves: bounds the work and memory of one request."""

LIVE_STATES: tuple[State, ...] = tuple(s for s in State if not s.terminal)
TERMINAL_STATES: tuple[State, ...] = tuple(s for s in State if s.terminal)

_CURSOR_PREFIX = "c1:"
"""Versions the cursor format so a later change can still refuse old cursors cleanly."""

def to_record(task: Task) -> dict[str, Any]:
    """The task as a JSON-able dict with every field (enums as values)."""
    p = task.progress
    o = task.origin
    return {
        "id": task.id,
        "kind": task.kind,
        "name": task.name,
        "params": dict(task.params),
        "state": task.state.value,
        "created_at": task.created_at,
        "executor": task.executor,
        "progress": {"current": p.current, "total": p.total, "message": p.message},
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "run_on": task.run_on,
        "owner": task.owner,
        "origin": {"kernel_id": o.kernel_id, "path": o.path, "retry_of": o.retry_of},
        "key": task.key,
        "scope": task.scope.value,
        "schedule_id": task.schedule_id,
        "attempt": task.attempt,
        "retries": task.retries,
        "timeout": task.timeout,
        "error": task.error.to_json() if task.error is not None else None,
        "result_preview": task.result_preview,
        "python": task.python,
        "cwd": task.cwd,
        "has_payload": task.has_payload,
        "cancel_reason": task.cancel_reason,
        "note": task.note,
        "scheduled_for": task.scheduled_for,
        "server_id": task.server_id,
        "placement": task.placement,
    }


def from_record(rec: Mapping[str, Any]) -> Task:
    """Rebuild a task from :func:`to_record`'s output (or an older, shorter record)."""
    p = rec.get("progress") or {}
    o = rec.get("origin") or {}
    return Task(
        id=rec["id"],
        kind=rec["kind"],
        name=rec["name"],
        params=rec.get("params") or {},
        state=State(rec["state"]),
        created_at=rec["created_at"],
        executor=rec["executor"],
        progress=Progress.of(p.get("current"), p.get("total"), p.get("message") or ""),
        started_at=rec.get("started_at"),
        finished_at=rec.get("finished_at"),
        run_on=rec.get("run_on"),
        owner=rec.get("owner", ""),
        origin=Origin(o.get("kernel_id"), o.get("path"), o.get("retry_of")),
        key=rec.get("key"),
        scope=Scope(rec.get("scope", Scope.SERVER.value)),
        schedule_id=rec.get("schedule_id"),
        attempt=rec.get("attempt", 1),
        retries=rec.get("retries", 0),
        timeout=rec.get("timeout"),
        error=TaskError.from_json(rec.get("error")),
        result_preview=rec.get("result_preview"),
        python=rec.get("python"),
        cwd=rec.get("cwd"),
        has_payload=rec.get("has_payload", False),
        cancel_reason=rec.get("cancel_reason"),
        note=rec.get("note"),
        scheduled_for=rec.get("scheduled_for"),
        server_id=rec.get("server_id"),
        placement=rec.get("placement"),
    )


def dumps(task: Task) -> str:
    """The record as compact JSON. A value JSON cannot hold raises ``InvalidInput``
    naming the field, so one bad task fails its batch with a message, not a crash."""
    rec = to_record(task)
    try:
        return json_dumps(rec)
    except (TypeError, ValueError) as exc:
        bad = next((k for k, v in rec.items() if not _jsonable(v)), "task")
        raise InvalidInput(bad, f"task {task.id}: not JSON-serializable ({exc})") from None


_LONG_DIGITS = re.compile(rb"\d{20,}")
"""A run of 20 digits or more: maybe an integer beyond 64 bits (2**64 has 20)."""


def _parse(text: str | bytes) -> Any:
    """JSON text read back: by orjson, unless it may hold an integer beyond 64 bits (which
    :func:`dumps` writes through the standard encoder, say a task's result ``int('9' *
    400)``): orjson reads 2**70 as a float without a word, and refuses bigger ones (that
    made every page holding the record a 500). The standard decoder reads them exactly;
    a false alarm (20 digits inside a string) only costs that record some speed."""
    raw = text.encode() if isinstance(text, str) else text
    if _LONG_DIGITS.search(raw):
        return json.loads(raw)
    return orjson.loads(raw)


def loads(text: str | bytes) -> Task:
    """The task stored as ``text`` by :func:`dumps`."""
    return from_record(_parse(text))


def dumps_schedule(schedule: Schedule) -> str:
    """A schedule's record as compact JSON (``InvalidInput`` naming a field JSON cannot
    hold, as for tasks)."""
    rec = schedule.to_record()
    try:
        return json_dumps(rec)
    except (TypeError, ValueError) as exc:
        bad = next((k for k, v in rec.items() if not _jsonable(v)), "schedule")
        raise InvalidInput(bad, f"schedule {schedule.id}: not JSON-serializable ({exc})") from None


def loads_schedule(text: str | bytes) -> Schedule:
    """The schedule stored as ``text`` by :func:`dumps_schedule`."""
    return Schedule.from_record(_parse(text))


def row(task: Task) -> tuple[Any, ...]:
    """The SQLite ``tasks`` row: the indexed columns, then the record."""
    return (
        task.id,
        task.state.value,
        task.kind,
        task.key,
        task.origin.kernel_id,
        task.schedule_id,
        task.finished_at,
        dumps(task),
        task.server_id,
        task.scheduled_for,
    )


def _jsonable(value: Any) -> bool:
    try:
        json_dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def encode_cursor(last_id: str) -> str:
    """An opaque cursor that resumes a listing after ``last_id``."""
    raw = (_CURSOR_PREFIX + last_id).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The id a cursor resumes after; ``InvalidInput("cursor")`` if we did not make it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raw = ""
    if not raw.startswith(_CURSOR_PREFIX) or len(raw) == len(_CURSOR_PREFIX):
        raise InvalidInput("cursor", "not a cursor from a previous page of this listing")
    return raw[len(_CURSOR_PREFIX) :]


def check_limit(limit: int) -> int:
    """``limit`` if it is a page size we serve, else ``InvalidInput("limit")``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def check_log_read(offset: int, limit: int | None) -> None:
    """Refuse a log read no client could mean, before touching storage."""
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset", f"must be an integer >= 0, not {offset!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInput("limit", f"must be an integer >= 0, not {limit!r}")


def check_cap(cap: int) -> None:
    """Refuse a negative log cap: it has no meaning, and slicing would invent one."""
    if cap < 0:
        raise InvalidInput("cap", f"a log cap must be >= 0, not {cap}")


def check_keep(keep: int | None) -> None:
    """Refuse a negative ``Prune.keep`` for the same reason."""
    if keep is not None and keep < 0:
        raise InvalidInput("keep", f"must be >= 0, not {keep}")


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes a process printed) made ``?``.

    SQLite stores UTF-8, which cannot hold them; one odd byte must not fail a whole
    batch. The length is unchanged, so log offsets stay true."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
