"""The one writer thread: batches store writes into few transactions.

Callers enqueue operations and, when they need durability (an acknowledged submit),
a future that resolves once the batch holding them has committed. Under load many
callers share one commit, which is how persisted throughput stays near the raw
executor's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Sequence, Union

from .errors import EngineClosed, StoreError
from .ports import Op, PutTask, Store

log = logging.getLogger(__name__)

MAX_BATCH = 5000

_Waiter = Union["Future[None]", "asyncio.Future[None]", None]
_Item = tuple[Sequence[Op], _Waiter, Any]


class Writer:
    """``after_commit(notes)`` is called on the writer thread once per committed batch
    with the ``note`` of each item in it (those not ``None``), in order: one call, so the
    engine takes its lock once per batch rather than once per task.

    A group of ops that the store refuses (each group is retried alone first, so one
    bad group sinks no other) is reported to ``on_failure(note, task_ids, error)``: its
    note and the tasks whose records it held, so that memory and store never disagree
    unseen. Waiters of the group get a :class:`StoreError`."""

    def __init__(
        self,
        store: Store,
        after_commit: Callable[[list[Any]], None] | None = None,
        on_failure: Callable[[Any, set[str], BaseException], None] | None = None,
    ) -> None:
        self._store = store
        self._after_commit = after_commit
        self._on_failure = on_failure
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._idle = True
        self._thread = threading.Thread(target=self._loop, name="bgtasks-writer", daemon=True)
        self._thread.start()

    def put(
        self,
        ops: Sequence[Op],
        *,
        durable: bool = False,
        note: Any = None,
    ) -> Future[None] | None:
        """Queue ``ops``; with ``durable`` return a future set once they are committed.
        ``note`` goes to ``after_commit`` after the commit."""
        fut: Future[None] | None = Future() if durable else None
        with self._cond:
            if self._closed:
                raise EngineClosed()
            self._queue.append((ops, fut, note))
            if self._idle:
                self._cond.notify()
        return fut

    def put_async(self, ops: Sequence[Op], note: Any = None) -> asyncio.Future[None]:
        """Like ``put(durable=True)`` for a caller on an asyncio loop. The futures of one
        loop are resolved together, with one wake-up of that loop per commit."""
        fut = asyncio.get_running_loop().create_future()
        with self._cond:
            if self._closed:
                raise EngineClosed()
            self._queue.append((ops, fut, note))
            if self._idle:
                self._cond.notify()
        return fut

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is committed."""
        fut = self.put((), durable=True)
        assert fut is not None
        fut.result(timeout)

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._idle = True
                    self._cond.wait()
                self._idle = False
                if not self._queue and self._closed:
                    return
                items = []
                n = 0
                while self._queue and n < MAX_BATCH:
                    item = self._queue.popleft()
                    items.append(item)
                    n += len(item[0]) or 1
            self._commit(items)

    def _commit(self, items: list[_Item]) -> None:
        ops = _coalesce([op for item in items for op in item[0]])
        try:
            self._store.write(ops)
        except Exception as exc:
            if len(items) > 1:
                # One bad group must not sink the others: retry them one by one.
                for item in items:
                    self._commit([item])
                return
            log.exception("store write failed")
            ops_failed, waiter, note = items[0]
            _settle(waiter, StoreError(f"the task store could not write: {exc}"))
            if self._on_failure is not None:
                ids = {op.task.id for op in ops_failed if isinstance(op, PutTask)}
                try:
                    self._on_failure(note, ids, exc)
                except Exception:
                    log.exception("store-failure hook failed")
            return
        # Acknowledge first: a caller waits only for durability, not for what the engine
        # does next with the batch (starting tasks), which would add to every round trip.
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, waiter, _ in items:
            if isinstance(waiter, asyncio.Future):
                by_loop.setdefault(waiter.get_loop(), []).append(waiter)
            elif waiter is not None:
                waiter.set_result(None)
        for loop, futures in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, futures, None)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass
        notes = [note for _, _, note in items if note is not None]
        if notes and self._after_commit is not None:
            try:
                self._after_commit(notes)
            except Exception:
                log.exception("after-commit hook failed")


def _resolve(futures: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for fut in futures:
        if not fut.done():
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)


def _settle(waiter: _Waiter, exc: BaseException) -> None:
    if isinstance(waiter, asyncio.Future):
        try:
            waiter.get_loop().call_soon_threadsafe(_resolve, [waiter], exc)
        except RuntimeError:
            pass
    elif waiter is not None:
        waiter.set_exception(exc)


def _coalesce(ops: list[Op]) -> list[Op]:
    """Write each task's record once per batch: its latest version, at the place of its
    first write (so a blob or log written after the first put still follows it)."""
    latest: dict[str, PutTask] = {}
    for op in ops:
        if isinstance(op, PutTask):
            latest[op.task.id] = op
    if len(latest) == sum(isinstance(op, PutTask) for op in ops):
        return ops
    out: list[Op] = []
    for op in ops:
        if isinstance(op, PutTask):
            newest = latest.pop(op.task.id, None)
            if newest is not None:
                out.append(newest)
        else:
            out.append(op)
    return out
