"""The interfaces the engine calls, and the records that cross them.

The engine (this package) depends only on what is declared here; the plug points
implement it: :mod:`bgtasks_ext.store` (where history lives) and
:mod:`bgtasks_ext.executors` (where a task's code runs). Nothing in ``core`` imports
those packages, so a new store or executor is a new module beside the others that
subclasses :class:`Store` or :class:`Executor`, and nothing here changes.

**Store.** Synchronous and thread-safe. The engine sends every write through one
writer thread (:mod:`.writer`) that hands a batch of operations to
:meth:`Store.write`, applied in one transaction; reads may come from any thread.
The event loop never calls a store directly.

**Executor.** The engine hands an executor a :class:`Job` and is told, through
:class:`ExecutorCallbacks`, when the job is claimed, how it progresses, what it logs
and how it ended (an :class:`Outcome`, built by :func:`.attempt.run_attempt` where the
code ran). Executors may call back from any thread.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Mapping, Protocol, Sequence, Union

from .models import LogChunk, Page, Task, TaskError, TaskFilter
from .schedules import Schedule


# -- the store -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PutTask:
    """Insert or replace the whole record."""

    task: Task


@dataclass(frozen=True, slots=True)
class DeleteTask:
    """Remove a task with its log and blobs. No error if it is gone already."""

    task_id: str


@dataclass(frozen=True, slots=True)
class AppendLog:
    """Append text to a task's log, then keep only the newest ``cap`` characters.

    Offsets are absolute character positions and never move: after trimming, a read
    from an offset that was dropped starts at the oldest text still kept."""

    task_id: str
    text: str
    cap: int


@dataclass(frozen=True, slots=True)
class PutBlob:
    """Store opaque bytes under (task, name): ``input`` and ``result`` so far."""

    task_id: str
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Prune:
    """Delete terminal tasks beyond the newest ``keep`` ones, and terminal tasks that
    finished before ``before`` (epoch seconds). ``None`` disables either rule."""

    keep: int | None
    before: float | None


@dataclass(frozen=True, slots=True)
class DropInputs:
    """Delete the ``input`` blob of terminal tasks that finished at or before ``before``
    (epoch seconds); only of ``task_id`` when given. The record, log and result stay.

    Inputs (a cell's pickled variables: possibly hundreds of MB) are kept after a task
    ends only so that it can be retried; this is how the engine lets them go. A live
    task's input is never touched: the store checks the state, not the caller."""

    before: float
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class PutSchedule:
    """Insert or replace a schedule's record. Its frozen inputs, if any, are a
    :class:`PutBlob` under (schedule id, ``input``): ids never collide with tasks'."""

    schedule: Schedule


@dataclass(frozen=True, slots=True)
class DeleteSchedule:
    """Remove a schedule and its blobs (its runs stay in history). No error if gone."""

    schedule_id: str


def server_lease(server_id: str) -> str:
    """The name of the lease a running server renews: while it is current, no other
    server touches that server's live tasks."""
    return f"server:{server_id}"


Op = Union[PutTask, DeleteTask, AppendLog, PutBlob, Prune, DropInputs, PutSchedule, DeleteSchedule]


class Store(ABC):
    """Persistent (or, for tests, in-memory) home of the task history."""

    @abstractmethod
    def open(self) -> None:
        """Create or migrate the schema. Called once before anything else."""

    @abstractmethod
    def close(self) -> None:
        """Release files and connections. Idempotent."""

    @abstractmethod
    def write(self, ops: Sequence[Op]) -> None:
        """Apply all ``ops`` in order, atomically and durably (one transaction)."""

    @abstractmethod
    def get(self, task_id: str) -> Task | None:
        """One task, or ``None``."""

    @abstractmethod
    def list(self, flt: TaskFilter, limit: int = 100, cursor: str | None = None) -> Page:
        """Tasks matching ``flt``, newest first (largest id first), at most ``limit``;
        ``cursor`` is a previous page's ``next_cursor``. Raises ``InvalidInput("cursor")``
        for a cursor it did not make."""

    @abstractmethod
    def count(self, flt: TaskFilter) -> int:
        """How many tasks match ``flt``."""

    @abstractmethod
    def live(self) -> builtins.list[Task]:
        """Every non-terminal task, oldest first: what recovery looks at on start."""

    @abstractmethod
    def read_log(self, task_id: str, offset: int = 0, limit: int | None = None) -> LogChunk:
        """Log text from ``offset`` (at most ``limit`` characters when given)."""

    @abstractmethod
    def get_blob(self, task_id: str, name: str) -> bytes | None:
        """Bytes stored by :class:`PutBlob`, or ``None``."""

    @abstractmethod
    def get_schedule(self, schedule_id: str) -> Schedule | None:
        """One schedule, or ``None``."""

    @abstractmethod
    def list_schedules(self) -> builtins.list[Schedule]:
        """Every schedule, oldest first."""

    # -- several servers on one store ----------------------------------------------------
    # Each of these is its own short transaction, callable from any thread while the
    # writer runs; with two processes on one file they are what keeps them apart.
    @abstractmethod
    def lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        """Take or renew lease ``name`` for ``holder``: ``True`` when it was free,
        expired (``expires_at <= now``) or already ``holder``'s; its expiry is then
        ``now + ttl``. ``False`` (nothing changed) while another holder has it."""

    @abstractmethod
    def release(self, name: str, holder: str) -> None:
        """Give lease ``name`` up, if ``holder`` holds it (else nothing happens)."""

    @abstractmethod
    def lease_holder(self, name: str, now: float) -> str | None:
        """Who holds lease ``name`` at ``now`` (``None``: nobody, or it expired)."""

    @abstractmethod
    def insert_run(self, task: Task, payload: bytes | None, schedule_id: str,
                   fire_time: float) -> bool:
        """Create ``task``, the run of ``schedule_id`` for ``fire_time``, unless that
        fire time has a run already (made by any server on this store): in one
        transaction, record the fire time (unique per schedule), the task and its
        ``input`` blob (when ``payload`` is not ``None``). ``False``: it had a run,
        nothing changed."""

    def insert_runs(self, runs: Sequence[tuple[Task, bytes | None, str, float]]
                    ) -> builtins.list[bool]:
        """:meth:`insert_run` for each ``(task, payload, schedule_id, fire_time)``, in one
        transaction where the store can (the scheduler fires every schedule due at one
        instant together: one commit, not one per schedule)."""
        return [self.insert_run(*run) for run in runs]

    @abstractmethod
    def adopt_orphans(self, server_id: str, now: float) -> builtins.list[Task]:
        """In one transaction: every live task (pending, running, cancelling) whose
        ``server_id`` is ``None`` or whose server's lease ``server:<its server_id>`` is
        missing or expired, now recorded as ``server_id``'s and returned (oldest first).
        A live task of a server whose lease is current is never returned."""

    # A task run in the server's own process may take it down before its ``running``
    # record is committed; these keep, cheaply and outside the transactions, which
    # attempts began, so the next start does not run them again. A store that does not
    # outlive its process needs none of it (these defaults).
    def note_started(self, task_id: str, attempt: int) -> None:
        """Attempt ``attempt`` of ``task_id`` is about to run: remember it, durably
        against the death of this process, before returning."""

    def started(self) -> builtins.set[tuple[str, int]]:
        """Every (task id, attempt) noted since :meth:`clear_started`."""
        return set()

    def clear_started(self) -> None:
        """Forget the notes (a start has settled what they spoke for)."""


# -- the executor ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Job:
    """Everything an executor needs to run one attempt of one task."""

    task_id: str
    kind: str
    """The kind's registered name."""
    ref: str
    """``module:qualname`` of the kind, importable where the job runs."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters already validated against the kind's schema (JSON values)."""
    payload: bytes | None = None
    """Opaque input bytes; only the process that runs the job loads them."""
    python: str | None = None
    """Interpreter to run under (process executor); ``None`` is the server's own."""
    cwd: str | None = None
    attempt: int = 1
    max_result_bytes: int | None = None
    """The largest pickled result kept; a bigger one fails the attempt (``result_too_large``)."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """The kind's settings (``EngineConfig.kind_settings``; JSON values): ``ctx.settings``.
    Shared by every job of the kind: read, never changed."""
    warm: str | None = None
    """The kind's ``warm`` function (``module:function``): a process executor has each
    worker of the job's pool call it once (see :func:`~.registry.kind`)."""


class OutcomeStatus(str, Enum):
    """How an attempt of a task ended, as seen where its code ran."""

    FINISHED = "finished"
    """The code returned; its value was pickled (``Outcome.result``)."""
    FAILED = "failed"
    """The code raised (or its value could not be pickled): ``Outcome.error`` says why."""
    CANCELLED = "cancelled"
    """The code stopped on a cancel request (``TaskCancelled``)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended."""

    status: OutcomeStatus
    result: bytes | None = None
    """The return value, cloudpickled where it ran: opaque to the server."""
    preview: Any = None
    """A small JSON-able view of the result (the value itself when it is small and
    JSON-native, else a truncated ``repr``)."""
    error: TaskError | None = None


class ExecutorCallbacks(Protocol):
    """What the engine offers executors. Every method is thread-safe and cheap."""

    def claim(self, task_id: str, where: str | None = None) -> bool:
        """Called just before the job's code starts. ``False`` means the task was
        cancelled meanwhile: drop the job without running it or calling :meth:`done`.
        ``where``: the place the attempt runs, when the executor has more than one (the
        ``dask`` executor's worker address): ``Task.placement``."""

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        """Latest progress (already coalesced by the task's context)."""

    def log(self, task_id: str, text: str) -> None:
        """Captured stdout/stderr text."""

    def done(self, task_id: str, outcome: Outcome) -> None:
        """The attempt ended. Called exactly once per claimed job."""


class Executor(ABC):
    """Runs jobs somewhere. Subclasses set :attr:`name` (the ``executor`` field)."""

    name: ClassVar[str]
    in_server_process: ClassVar[bool] = False
    """Runs task code in the server's own process. Then the engine (1) refuses tasks
    that carry a payload (user data, pickled: the server never loads it), and (2) makes
    a task's start durable before its code runs, so that a task that takes the server
    down is found ``running`` by the next start and not run again beyond its retries."""
    in_kernel: ClassVar[bool] = False
    """Runs tasks inside the kernel that launched them (it claims them itself): such a
    task needs ``origin.kernel_id``, runs once (no retries; the kernel cannot run it
    again) and carries no payload (the kernel holds the job). The engine enforces it."""

    @abstractmethod
    def start(self, callbacks: ExecutorCallbacks) -> None:
        """Get ready (warm the pool); called once by the engine."""

    def unavailable(self) -> str | None:
        """Why this executor cannot take new tasks now (say, a cluster it cannot reach),
        naming the setting to fix; ``None`` (the default): it can. New tasks for it are
        refused with this message (field ``executor``); the other executors go on."""
        return None

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Queue the job and return at once; it runs when a slot is free."""

    @abstractmethod
    def cancel(self, task_id: str, grace: float) -> None:
        """Ask a running job to stop, escalating if it has not within ``grace`` seconds.

        Returns at once. The job ends with ``done(cancelled)``, or with what really
        happened if it finished first. A job not claimed yet is dropped."""

    @abstractmethod
    def shutdown(self, grace: float) -> None:
        """Cancel everything still running, wait at most ``grace`` seconds for it to
        end (calling :meth:`ExecutorCallbacks.done` for each), then release every
        thread and process."""
