"""The Dask worker's side of the ``dask`` executor: what a Dask task of ours runs.

:func:`run_job` is the function the server submits (by reference: ``bgtasks_ext`` must be
importable on the workers, the same version as the server's). It does not run the task's
code in the Dask worker's thread, where nothing could stop it (Python cannot kill a
thread): it hands the job to a warm pool of bgtasks worker processes kept inside the Dask
worker process, the very :class:`~.process.ProcessExecutor` the server uses on one machine.
So a task runs in a child of the Dask worker with the same protocol, the same cooperative
cancel, SIGTERM then SIGKILL of its whole process tree, the same ``run_attempt``; its
payload (the code kind's pickled cell and inputs) is loaded only in that child.

While it runs, the Dask thread relays what the child reports as events on the server's
topic (``Worker.log_event``: the scheduler forwards them to the server's client, which
subscribed to it), coalesced to one message per :data:`RELAY_INTERVAL` per task
(``started`` only for a job still running after the first interval):

    {"op": "started",  "task_id", "attempt", "worker", "key"}
    {"op": "progress", "task_id", "attempt", "current", "total", "message"}
    {"op": "log",      "task_id", "attempt", "text"}
    {"op": "done",     "task_id", "attempt", "status", "preview", "error", "result"}

``done`` is sent only when the Dask task was cancelled (its return value is then dropped
by Dask); otherwise the outcome is the Dask task's return value (:func:`reply`), which
follows the events on the same ordered streams.

Cancel: the server cancels the Dask future; the scheduler releases the key and the
worker marks the running task ``cancelled``, which the relay loop sees locally within
:data:`RELAY_INTERVAL` (no message of ours crosses the network for it), and it cancels the
child with the grace the server sent along with the job.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..core.models import TaskError
from ..core.ports import Job, Outcome, OutcomeStatus
from .process import ProcessExecutor

RELAY_INTERVAL = 0.05
"""Seconds between two relayed messages of one task (progress coalesced, log joined)."""
LOG_EVENT_CHARS = 16 * 1024
"""Largest log text in one event. The scheduler keeps the last events of every topic
(``distributed.admin.low-level-log-length``: 1,000) as long as it runs, so this bounds
what a server's tasks leave there (~16 MiB per server start; 256 KiB events made it
256 MiB, held after one task printed that much)."""
_LIVE = ("executing", "long-running")
"""The Dask worker's states of a task it is running (anything else: released, cancelled)."""


class _Slot:
    """What the child reported for one job and the relay has not sent yet."""

    __slots__ = ("lock", "progress", "log", "outcome", "ended", "claimed", "cancelled")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.claimed = False
        self.cancelled = False
        self.progress: tuple[float, float | None, str | None] | None = None
        self.log: list[str] = []
        self.outcome: Outcome | None = None
        self.ended = threading.Event()


class _Relay:
    """The local pool's :class:`~bgtasks_ext.core.ports.ExecutorCallbacks`: each report
    lands in its job's slot, read by the Dask thread that waits for that job."""

    def __init__(self) -> None:
        self.slots: dict[str, _Slot] = {}

    def claim(self, task_id: str, where: str | None = None) -> bool:
        slot = self.slots.get(task_id)
        if slot is None:
            return False
        with slot.lock:
            slot.claimed = not slot.cancelled
            return slot.claimed

    def cancel(self, task_id: str) -> bool:
        """Mark the job cancelled; ``True`` when it had started (the pool stops it and
        reports), ``False`` when it had not (the pool drops it: it ends here)."""
        slot = self.slots[task_id]
        with slot.lock:
            slot.cancelled = True
            if slot.claimed:
                return True
        slot.outcome = Outcome(OutcomeStatus.CANCELLED)
        slot.ended.set()
        return False

    def progress(self, task_id: str, current: float, total: float | None, message: str | None) -> None:
        slot = self.slots.get(task_id)
        if slot is not None:
            with slot.lock:
                slot.progress = (current, total, message)

    def log(self, task_id: str, text: str) -> None:
        slot = self.slots.get(task_id)
        if slot is not None:
            with slot.lock:
                slot.log.append(text)

    def done(self, task_id: str, outcome: Outcome) -> None:
        slot = self.slots.get(task_id)
        if slot is not None:
            slot.outcome = outcome
            slot.ended.set()


_lock = threading.Lock()
_pool: ProcessExecutor | None = None
_relay = _Relay()


def local_pool(workers: int, max_tasks_per_worker: int = 0,
               task_memory_limit: int | None = None) -> ProcessExecutor:
    """This Dask worker process's pool of bgtasks workers, started on first use and kept
    (its processes die with the Dask worker: socket EOF, and ``PR_SET_PDEATHSIG``). The
    limits are the first job's (its server's settings)."""
    global _pool
    with _lock:
        if _pool is None:
            pool = ProcessExecutor(workers=max(1, workers), max_tasks_per_worker=max_tasks_per_worker,
                                   task_memory_limit=task_memory_limit)
            pool.start(_relay)
            _pool = pool
        return _pool


def _still_running(worker: Any, key: Any) -> bool:
    if getattr(worker.status, "name", "running") not in ("running", "paused"):
        return False
    ts = worker.state.tasks.get(key)
    return ts is not None and ts.state in _LIVE


def _flush(worker: Any, topic: str, task_id: str, attempt: int, slot: _Slot) -> None:
    with slot.lock:
        progress, slot.progress = slot.progress, None
        text = "".join(slot.log)
        slot.log.clear()
    # Log before progress: a bar that reaches 100% never runs ahead of its text.
    for start in range(0, len(text), LOG_EVENT_CHARS):
        worker.log_event(topic, {"op": "log", "task_id": task_id, "attempt": attempt,
                                 "text": text[start:start + LOG_EVENT_CHARS]})
    if progress is not None:
        current, total, message = progress
        worker.log_event(topic, {"op": "progress", "task_id": task_id, "attempt": attempt,
                                 "current": current, "total": total, "message": message})


def reply(outcome: Outcome, worker: str) -> dict[str, Any]:
    """The Dask task's return value: JSON values and the result's opaque bytes (the
    server never unpickles them; only the kernel that asks for the result does)."""
    return {
        "status": outcome.status.value,
        "result": outcome.result,
        "preview": outcome.preview,
        "error": None if outcome.error is None else outcome.error.to_json(),
        "worker": worker,
    }


def outcome_of(msg: dict[str, Any]) -> Outcome:
    """The :class:`Outcome` a :func:`reply` (or a ``done`` event) describes."""
    return Outcome(OutcomeStatus(msg["status"]), result=msg.get("result"),
                   preview=msg.get("preview"), error=TaskError.from_json(msg.get("error")))


def run_job(topic: str, spec: dict[str, Any], payload: bytes | None, grace: float) -> dict[str, Any]:
    """Run one attempt in a child of this Dask worker; relay its reports on ``topic``.
    ``spec``: the :class:`Job`'s JSON fields. ``grace``: the cancel's, per step."""
    from distributed import get_worker

    worker = get_worker()
    key = worker.get_current_task()
    task_id, attempt = spec["task_id"], spec["attempt"]
    cwd = spec.get("cwd")
    job = Job(
        task_id=task_id, kind=spec["kind"], ref=spec["ref"], params=spec.get("params") or {},
        payload=payload, python=None,
        # The server's folder may not exist here (another machine): then the worker's own.
        cwd=cwd if cwd and os.path.isdir(cwd) else None,
        attempt=attempt, max_result_bytes=spec.get("max_result_bytes"),
        settings=spec.get("settings") or {}, warm=spec.get("warm"),
    )
    pool = local_pool(worker.state.nthreads, spec.get("max_tasks_per_worker") or 0,
                      spec.get("task_memory_limit"))
    slot = _relay.slots[task_id] = _Slot()
    cancelled = announced = False
    try:
        pool.submit(job)
        while not slot.ended.wait(RELAY_INTERVAL):
            if not announced:
                # Only a job still running after one interval is announced: a shorter one
                # is claimed by its reply, which spares the scheduler and the server a
                # message (and the store a write) per task.
                announced = True
                worker.log_event(topic, {"op": "started", "task_id": task_id, "attempt": attempt,
                                         "worker": worker.address, "key": str(key)})
            _flush(worker, topic, task_id, attempt, slot)
            if not cancelled and not _still_running(worker, key):
                cancelled = True
                _relay.cancel(task_id)
                pool.cancel(task_id, grace)  # stops it, or drops it from the pool's queue
        if announced:
            _flush(worker, topic, task_id, attempt, slot)
    finally:
        _relay.slots.pop(task_id, None)
    assert slot.outcome is not None
    out = reply(slot.outcome, worker.address)
    if not announced:
        # Never announced, so not claimed yet: what it reported comes with its outcome.
        out["log"] = "".join(slot.log)
        out["progress"] = slot.progress
    if cancelled or not _still_running(worker, key):
        # Dask drops the return value of a released task: the outcome goes as an event.
        worker.log_event(topic, {"op": "done", "task_id": task_id, "attempt": attempt, **out})
    return out
