"""The store plug point: where task records, logs and opaque payloads live.

A store is synchronous and thread-safe. The engine sends every write through one
writer thread (:mod:`bgtasks_ext.core.writer`) that hands a batch of operations to
:meth:`Store.write`, applied in one transaction; reads may come from any thread.
The event loop never calls a store directly.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence, Union

from ..core.models import LogChunk, Page, Task, TaskFilter


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


Op = Union[PutTask, DeleteTask, AppendLog, PutBlob, Prune]


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
