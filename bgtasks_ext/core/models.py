"""Records and events: frozen dataclasses, changed only by ``dataclasses.replace``."""

from __future__ import annotations

import math
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Mapping

from .states import Category, State


class Scope(str, Enum):
    """How long a task may live."""

    SERVER = "server"
    """Until it ends (the default)."""
    KERNEL = "kernel"
    """Cancelled when the kernel that launched it shuts down or restarts."""


@dataclass(frozen=True, slots=True)
class Progress:
    current: float = 0.0
    total: float | None = None
    message: str = ""

    @classmethod
    def of(cls, current: Any, total: Any = None, message: Any = "") -> Progress:
        """A clean record from whatever a task reported: numbers as finite floats (a
        non-finite or non-numeric ``current`` counts as 0, such a ``total`` as unknown),
        the message as text of at most :data:`MESSAGE_LIMIT` characters. Every record
        the engine keeps is made here, so none can make a reply invalid JSON."""
        cur = finite(current)
        text = message if isinstance(message, str) else ("" if message is None else str(message))
        return cls(0.0 if cur is None else cur, finite(total), text[:MESSAGE_LIMIT])

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.current / self.total))

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "total": self.total,
            "fraction": self.fraction,
            "message": self.message,
        }


MESSAGE_LIMIT = 1000
"""Characters of a progress message kept (it is copied into every listing)."""


def finite(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (for ``None``, NaN, infinities, non-numbers)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why a task failed. ``reason`` is a machine-readable cause for failures the
    engine itself decides: ``interrupted``, ``timeout``, ``worker_died``, ``input``."""

    type: str
    message: str
    traceback: str = ""
    reason: str | None = None
    data: dict[str, Any] | None = None
    """What the task's code adds for clients (JSON values): a notebook job's executed
    copy and failing cell. Set from an exception's ``bgtasks_data`` (:func:`.results.error_from`)."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.data is None:
            del out["data"]  # as before the field existed: older readers forbid extra keys
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> TaskError | None:
        if not data:
            return None
        return cls(
            type=str(data.get("type", "")),
            message=str(data.get("message", "")),
            traceback=str(data.get("traceback", "")),
            reason=data.get("reason"),
            data=extra if isinstance(extra := data.get("data"), dict) else None,
        )


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a task was launched from: the kernel and notebook, when there is one, and
    the task it runs again when it was made by a retry (set by the server only)."""

    kernel_id: str | None = None
    path: str | None = None
    retry_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kernel_id": self.kernel_id, "path": self.path, "retry_of": self.retry_of}


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What a caller asks for. The engine validates it and turns it into a :class:`Task`."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    key: str | None = None
    executor: str | None = None
    scope: Scope = Scope.SERVER
    run_on: float | None = None
    timeout: float | None = None
    retries: int = 0
    owner: str = ""
    origin: Origin = Origin()
    schedule_id: str | None = None
    scheduled_for: float | None = None
    """The fire time a schedule's run is for (set with ``schedule_id``): how late the run
    started is ``started_at - scheduled_for``."""
    payload: bytes | None = None
    """Opaque input bytes (a pickled cell, say). The engine stores and forwards them;
    only a worker or kernel ever loads them."""
    python: str | None = None
    """The interpreter a process worker should run under (a kernel's ``sys.executable``)."""
    cwd: str | None = None
    """Working directory for the task in its worker."""


@dataclass(frozen=True)
class Task:
    """The record of one run of work, as stored and as served.

    Not slotted, so that :meth:`evolve` can copy it by its ``__dict__``: the engine
    makes a new record for every change, and ``dataclasses.replace`` costs several
    times more on this hot path."""

    id: str
    kind: str
    name: str
    params: Mapping[str, Any]
    state: State
    created_at: float
    executor: str
    progress: Progress = Progress()
    started_at: float | None = None
    finished_at: float | None = None
    run_on: float | None = None
    owner: str = ""
    origin: Origin = Origin()
    key: str | None = None
    scope: Scope = Scope.SERVER
    schedule_id: str | None = None
    attempt: int = 1
    retries: int = 0
    timeout: float | None = None
    error: TaskError | None = None
    result_preview: Any = None
    python: str | None = None
    cwd: str | None = None
    has_payload: bool = False
    cancel_reason: str | None = None
    """Why a ``cancelling`` task is being stopped (``cancelled``: a user asked;
    ``timeout``), stored so that a start after a crash ends it as a stop would
    (:mod:`.policy`). Not part of the wire form."""
    note: str | None = None
    """What the notebook that launched it says about it (``outputs set: a, b``), set by
    :meth:`.engine.Engine.set_note` in any state and carried through every later change."""
    scheduled_for: float | None = None
    """The fire time of the schedule run this task is (``None``: not a schedule's run)."""
    placement: str | None = None
    """Where its latest attempt runs or ran, for an executor with more than one place (the
    ``dask`` executor: the Dask worker's address); set when the attempt is claimed."""
    server_id: str | None = None
    """The server whose engine holds the task while it is live (it created or adopted
    it). Several servers may share one store: a server recovers only the live tasks of
    servers whose lease has lapsed (:meth:`.ports.Store.adopt_orphans`)."""

    @property
    def category(self) -> Category:
        return self.state.category

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def evolve(self, **changes: Any) -> Task:
        """A copy with ``changes`` applied (field names are checked)."""
        unknown = changes.keys() - _TASK_FIELDS
        if unknown:
            raise TypeError(f"Task has no field {sorted(unknown)[0]!r}")
        new = object.__new__(Task)
        d = new.__dict__
        d.update(self.__dict__)
        d.update(changes)
        return new

    def to_json(self) -> dict[str, Any]:
        """The wire form (SPEC §5): ISO 8601 UTC times, enums as strings."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "params": dict(self.params),
            "state": self.state.value,
            "category": self.category.value,
            "progress": self.progress.to_json(),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "run_on": iso(self.run_on),
            "owner": self.owner,
            "origin": self.origin.to_json(),
            "key": self.key,
            "scope": self.scope.value,
            "executor": self.executor,
            "schedule_id": self.schedule_id,
            "attempt": self.attempt,
            "retries": self.retries,
            "timeout": self.timeout,
            "error": self.error.to_json() if self.error else None,
            "result_preview": self.result_preview,
            "note": self.note,
            "scheduled_for": iso(self.scheduled_for),
            "server_id": self.server_id,
            "placement": self.placement,
        }


_TASK_FIELDS = frozenset(f.name for f in fields(Task))


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What a listing selects. Every field left ``None`` matches everything."""

    states: frozenset[State] | None = None
    kind: str | None = None
    key: str | None = None
    kernel_id: str | None = None
    schedule_id: str | None = None

    @classmethod
    def of(
        cls,
        *,
        state: State | str | None = None,
        category: Category | str | None = None,
        kind: str | None = None,
        key: str | None = None,
        kernel_id: str | None = None,
        schedule_id: str | None = None,
    ) -> TaskFilter:
        states: frozenset[State] | None = None
        if category is not None:
            states = Category(category).states
        if state is not None:
            one = frozenset({State(state)})
            states = one if states is None else states & one
        return cls(states, kind, key, kernel_id, schedule_id)

    def matches(self, task: Task) -> bool:
        return (
            (self.states is None or task.state in self.states)
            and (self.kind is None or task.kind == self.kind)
            and (self.key is None or task.key == self.key)
            and (self.kernel_id is None or task.origin.kernel_id == self.kernel_id)
            and (self.schedule_id is None or task.schedule_id == self.schedule_id)
        )


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, newest first. ``next_cursor`` is ``None`` on the last page."""

    tasks: list[Task]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class LogChunk:
    """Log text from ``offset`` on; read again from ``next_offset`` for more."""

    text: str
    offset: int
    next_offset: int


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One change of one task, numbered in the order the engine made the changes."""

    seq: int
    change: str
    """``created``, ``state``, ``progress``, ``note`` or ``deleted``."""
    task: Task


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


_id_lock = threading.Lock()
_last_ms = 0
_seq = 0
_rand = random.Random(os.urandom(16))  # ids need uniqueness, not secrecy; urandom per id is slow


def new_id() -> str:
    """A 32-hex-digit id whose order is creation order (ms time, then a counter,
    then randomness), so "newest first" is simply "largest id first"."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    with _id_lock:
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFFF:
                ms += 1
                _seq = 0
        else:
            _seq = 0
        _last_ms = ms
        seq = _seq
        tail = _rand.getrandbits(64)
    return f"{ms:012x}{seq:04x}{tail:016x}"
