"""The executor plug point: where a task's code runs.

The engine hands an executor a :class:`Job` and gets told, through
:class:`ExecutorCallbacks`, when the job is claimed, how it progresses, what it
logs and how it ended. Executors may call back from any thread.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol

from ..core.models import TaskError


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


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended."""

    status: str
    """``finished``, ``failed`` or ``cancelled``."""
    result: bytes | None = None
    """The return value, cloudpickled where it ran: opaque to the server."""
    preview: Any = None
    """A small JSON-able view of the result (the value itself when it is small and
    JSON-native, else a truncated ``repr``)."""
    error: TaskError | None = None


class ExecutorCallbacks(Protocol):
    """What the engine offers executors. Every method is thread-safe and cheap."""

    def claim(self, task_id: str) -> bool:
        """Called just before the job's code starts. ``False`` means the task was
        cancelled meanwhile: drop the job without running it or calling :meth:`done`."""

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        """Latest progress (already coalesced by the task's context)."""

    def log(self, task_id: str, text: str) -> None:
        """Captured stdout/stderr text."""

    def done(self, task_id: str, outcome: Outcome) -> None:
        """The attempt ended. Called exactly once per claimed job."""


class Executor(ABC):
    """Runs jobs somewhere. Subclasses set :attr:`name` (the ``executor`` field)."""

    name: ClassVar[str]

    @abstractmethod
    def start(self, callbacks: ExecutorCallbacks) -> None:
        """Get ready (warm the pool); called once by the engine."""

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
