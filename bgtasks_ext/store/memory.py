"""In-memory store: the real thing for pure core tests, and a no-disk option for servers.

It keeps exactly the semantics of :class:`~bgtasks_ext.store.sqlite.SQLiteStore` (the
shared test suite runs against both): every task goes through the storage record, so a
caller mutating its params after a write changes nothing stored, and values JSON cannot
hold fail the same way. Nothing survives :meth:`close`.
"""

from __future__ import annotations

import bisect
import builtins
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Sequence

from ..core.errors import BgTasksError
from ..core.models import LogChunk, Page, Task, TaskFilter
from ..core.ports import (
    AppendLog,
    DeleteSchedule,
    DeleteTask,
    DropInputs,
    Op,
    Prune,
    PutBlob,
    PutSchedule,
    PutTask,
    Store,
    server_lease,
)
from ..core.schedules import Schedule
from . import codec


@dataclass(slots=True)
class _Log:
    """The kept tail of one task's log: ``parts`` joined start at offset ``start``."""

    start: int = 0
    size: int = 0
    parts: deque[str] = field(default_factory=deque)

    @property
    def end(self) -> int:
        return self.start + self.size

    def append(self, text: str, cap: int) -> None:
        if text:
            self.parts.append(text)
            self.size += len(text)
        drop = self.size - cap
        while drop > 0:
            head = self.parts[0]
            if len(head) <= drop:
                self.parts.popleft()
                cut = len(head)
            else:
                self.parts[0] = head[drop:]
                cut = drop
            self.start += cut
            self.size -= cut
            drop -= cut
        if len(self.parts) > 64:
            # Many tiny writes (a progress print per line) would make reads join thousands.
            self.parts = deque(["".join(self.parts)])

    def read(self, offset: int, limit: int | None) -> LogChunk:
        begin = min(max(offset, self.start), self.end)
        text = "".join(self.parts)[begin - self.start :]
        if limit is not None:
            text = text[:limit]
        return LogChunk(text, begin, begin + len(text))


class MemoryStore(Store):
    """A dict-backed :class:`Store`, thread-safe under one lock.

    ``path`` is accepted and ignored so that this class drops in for any store class
    by configuration (``c.BgTasks.store_class``) without a special case."""

    def __init__(self, path: object = None) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, Task] = {}
        self._ids: list[str] = []  # sorted ascending: newest-first is a reverse walk
        self._logs: dict[str, _Log] = {}
        self._blobs: dict[tuple[str, str], bytes] = {}
        self._schedules: dict[str, Schedule] = {}
        self._fires: dict[tuple[str, float], str] = {}
        """(schedule id, fire time) -> the task made for it."""
        self._leases: dict[str, tuple[str, float]] = {}
        """name -> (holder, expires_at)."""
        self._open = False

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        with self._lock:
            self._open = False
            self._tasks.clear()
            self._ids.clear()
            self._logs.clear()
            self._blobs.clear()
            self._schedules.clear()
            self._fires.clear()
            self._leases.clear()

    def _check_open(self) -> None:
        if not self._open:
            raise BgTasksError("the memory store is not open")

    # -- writes ---------------------------------------------------------------------

    def write(self, ops: Sequence[Op]) -> None:
        # Everything that can fail (encoding, validation) happens before the lock is
        # taken and before anything changes: that is what makes a batch atomic here.
        prepared: list[Op] = []
        for op in ops:
            if isinstance(op, PutTask):
                prepared.append(PutTask(codec.loads(codec.dumps(op.task))))
            elif isinstance(op, AppendLog):
                codec.check_cap(op.cap)
                prepared.append(AppendLog(op.task_id, codec.clean_text(op.text), op.cap))
            elif isinstance(op, Prune):
                codec.check_keep(op.keep)
                prepared.append(op)
            elif isinstance(op, PutSchedule):
                prepared.append(PutSchedule(codec.loads_schedule(codec.dumps_schedule(op.schedule))))
            elif isinstance(op, (DeleteTask, PutBlob, DropInputs, DeleteSchedule)):
                prepared.append(op)
            else:
                raise TypeError(f"not a store operation: {op!r}")
        with self._lock:
            self._check_open()
            for op in prepared:
                self._apply(op)

    def _apply(self, op: Op) -> None:
        if isinstance(op, PutTask):
            if op.task.id not in self._tasks:
                bisect.insort(self._ids, op.task.id)
            self._tasks[op.task.id] = op.task
        elif isinstance(op, AppendLog):
            self._logs.setdefault(op.task_id, _Log()).append(op.text, op.cap)
        elif isinstance(op, PutBlob):
            self._blobs[(op.task_id, op.name)] = bytes(op.data)
        elif isinstance(op, DeleteTask):
            self._delete(op.task_id)
        elif isinstance(op, Prune):
            doomed = set(self._prunable(op))
            for task_id in doomed:
                self._delete(task_id)
            # The fire times of pruned runs are long past (see sqlite_queries._prune).
            for fire in [f for f, task_id in self._fires.items() if task_id in doomed]:
                del self._fires[fire]
        elif isinstance(op, PutSchedule):
            self._schedules[op.schedule.id] = op.schedule
        elif isinstance(op, DeleteSchedule):
            self._schedules.pop(op.schedule_id, None)
            for k in [k for k in self._blobs if k[0] == op.schedule_id]:
                del self._blobs[k]
        elif isinstance(op, DropInputs):
            candidates = [op.task_id] if op.task_id is not None else [k[0] for k in self._blobs if k[1] == "input"]
            for task_id in candidates:
                task = self._tasks.get(task_id)
                if task is not None and task.terminal and task.finished_at is not None \
                        and task.finished_at <= op.before:
                    self._blobs.pop((task_id, "input"), None)

    def _delete(self, task_id: str) -> None:
        if self._tasks.pop(task_id, None) is not None:
            i = bisect.bisect_left(self._ids, task_id)
            del self._ids[i]
        self._logs.pop(task_id, None)
        for k in [k for k in self._blobs if k[0] == task_id]:
            del self._blobs[k]

    def _prunable(self, op: Prune) -> list[str]:
        ended = [i for i in reversed(self._ids) if self._tasks[i].terminal]
        doomed = set(ended[op.keep :]) if op.keep is not None else set()
        if op.before is not None:
            for i in ended:
                fin = self._tasks[i].finished_at
                if fin is not None and fin < op.before:
                    doomed.add(i)
        return sorted(doomed)

    # -- reads ----------------------------------------------------------------------

    def get(self, task_id: str) -> Task | None:
        with self._lock:
            self._check_open()
            return self._tasks.get(task_id)

    def list(self, flt: TaskFilter, limit: int = 100, cursor: str | None = None) -> Page:
        codec.check_limit(limit)
        after = codec.decode_cursor(cursor) if cursor is not None else None
        found: list[Task] = []
        with self._lock:
            self._check_open()
            stop = len(self._ids) if after is None else bisect.bisect_left(self._ids, after)
            for i in range(stop - 1, -1, -1):
                task = self._tasks[self._ids[i]]
                if flt.matches(task):
                    found.append(task)
                    if len(found) > limit:
                        break
        if len(found) > limit:
            return Page(found[:limit], codec.encode_cursor(found[limit - 1].id))
        return Page(found, None)

    def count(self, flt: TaskFilter) -> int:
        with self._lock:
            self._check_open()
            return sum(1 for t in self._tasks.values() if flt.matches(t))

    def live(self) -> builtins.list[Task]:
        with self._lock:
            self._check_open()
            return [t for i in self._ids if not (t := self._tasks[i]).terminal]

    def read_log(self, task_id: str, offset: int = 0, limit: int | None = None) -> LogChunk:
        codec.check_log_read(offset, limit)
        with self._lock:
            self._check_open()
            log = self._logs.get(task_id)
            return (log or _Log()).read(offset, limit)

    def get_blob(self, task_id: str, name: str) -> bytes | None:
        with self._lock:
            self._check_open()
            return self._blobs.get((task_id, name))

    # -- schedules ----------------------------------------------------------------------

    def get_schedule(self, schedule_id: str) -> Schedule | None:
        with self._lock:
            self._check_open()
            return self._schedules.get(schedule_id)

    def list_schedules(self) -> builtins.list[Schedule]:
        with self._lock:
            self._check_open()
            return sorted(self._schedules.values(), key=lambda s: s.id)

    # -- several servers (here: several engines in one process) -----------------------

    def lease(self, name: str, holder: str, ttl: float, now: float) -> bool:
        with self._lock:
            self._check_open()
            held = self._leases.get(name)
            if held is not None and held[0] != holder and held[1] > now:
                return False
            self._leases[name] = (holder, now + ttl)
            return True

    def release(self, name: str, holder: str) -> None:
        with self._lock:
            self._check_open()
            held = self._leases.get(name)
            if held is not None and held[0] == holder:
                del self._leases[name]

    def lease_holder(self, name: str, now: float) -> str | None:
        with self._lock:
            self._check_open()
            held = self._leases.get(name)
            return held[0] if held is not None and held[1] > now else None

    def insert_run(self, task: Task, payload: bytes | None, schedule_id: str,
                   fire_time: float) -> bool:
        stored = codec.loads(codec.dumps(task))
        with self._lock:
            self._check_open()
            if (schedule_id, fire_time) in self._fires:
                return False
            self._fires[(schedule_id, fire_time)] = task.id
            self._apply(PutTask(stored))
            if payload is not None:
                self._apply(PutBlob(task.id, "input", payload))
            return True

    def adopt_orphans(self, server_id: str, now: float) -> builtins.list[Task]:
        with self._lock:
            self._check_open()
            adopted = []
            for task_id in self._ids:
                task = self._tasks[task_id]
                if task.terminal or not self._orphaned(task, now):
                    continue
                task = task.evolve(server_id=server_id)
                self._tasks[task_id] = task
                adopted.append(task)
            return adopted

    def _orphaned(self, task: Task, now: float) -> bool:
        if task.server_id is None:
            return True
        held = self._leases.get(server_lease(task.server_id))
        return held is None or held[1] <= now
