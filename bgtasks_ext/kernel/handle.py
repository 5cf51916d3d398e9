"""A task as the notebook sees it: a live view of the server's record.

A :class:`TaskHandle` holds the latest record, kept current by the client's events
thread (pushed, not polled); :meth:`TaskHandle.wait` falls back to reading the record
over REST every second, so ``result()`` is right even if the websocket is down. The
result is fetched once, as the pickled bytes the task produced, and loaded here: the
server never unpickles user objects.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from ..core.errors import TaskCancelled
from ..core.states import TERMINAL_NAMES as TERMINAL
from .client import Client, RemoteTraceback, TaskDict, TaskFailed, TaskNotFound

if TYPE_CHECKING:
    from .widgets import TaskWidget

_MISSING: Any = object()


def _nothing() -> None:
    pass


class TaskHandle:
    """``h.id``, ``h.state``, ``h.progress``, ``h.result()``, ``h.cancel()``, ``h.log()``;
    displayed in a notebook, it is its widget.

    ``on_finish(handle, task)`` is called once, in the events thread, when the task
    ends (how ``%%bgtask`` sets outputs in the user namespace without blocking a cell).
    """

    def __init__(self, task_id: str, client: Client, on_finish: Callable[[TaskHandle, TaskDict], Any] | None = None,
                 task: TaskDict | None = None) -> None:
        self.id = task_id
        self.client = client
        self.task: TaskDict = task if task is not None else client.get(task_id)
        self._on_finish = on_finish
        self._listeners: list[Callable[[TaskDict], None]] = []
        self._done = threading.Event()
        self._finish_lock = threading.Lock()
        self._finished_called = False
        self._result: Any = _MISSING
        self._widget: TaskWidget | None = None
        self._unwatch: Callable[[], None] = _nothing
        # The events thread may deliver the end before watch() returns: unwatch then.
        unwatch = client.watch(task_id, self._update)
        with self._finish_lock:
            self._unwatch = unwatch
            finished = self._finished_called
        if finished:
            unwatch()
        elif self.task.get("state") in TERMINAL:
            self._finish()

    # -- the record --------------------------------------------------------------------
    @property
    def state(self) -> str:
        return str(self.task.get("state", ""))

    @property
    def progress(self) -> dict[str, Any]:
        progress: dict[str, Any] = self.task.get("progress") or {}
        return progress

    @property
    def name(self) -> str:
        return str(self.task.get("name") or self.task.get("kind") or self.id)

    @property
    def error(self) -> dict[str, Any] | None:
        error: dict[str, Any] | None = self.task.get("error")
        return error

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    def add_listener(self, callback: Callable[[TaskDict], None]) -> None:
        """Call ``callback(task)`` on every later change (in the events thread)."""
        self._listeners.append(callback)

    def _update(self, task: TaskDict) -> None:
        if self.done and task.get("state") not in TERMINAL:
            return  # a late non-terminal record (a REST read racing the stream)
        self.task = task
        for listener in list(self._listeners):
            try:
                listener(task)
            except Exception:  # noqa: S110 - a broken view must not stop the others
                pass
        if task.get("state") in TERMINAL:
            self._finish()

    def _finish(self) -> None:
        with self._finish_lock:
            if self._finished_called:
                return
            self._finished_called = True
            unwatch = self._unwatch
        unwatch()
        if self._on_finish is not None:
            try:
                self._on_finish(self, self.task)
            except Exception:  # noqa: S110 - the caller's hook; never print from this thread
                pass
        # Only now: whoever waits (h.wait(), h.result()) may rely on what the hook did,
        # e.g. %%bgtask's outputs being in the user namespace.
        self._done.set()

    def refresh(self) -> TaskDict:
        """Read the record over REST now (the events stream does this by itself)."""
        self._update(self.client.get(self.id))
        return self.task

    # -- waiting and results ---------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends; False if ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            if not self._done.wait(left):
                self.refresh()  # the safety net: the stream may be down
        return True

    def result(self, timeout: float | None = None) -> Any:
        """The task's return value (for code tasks: the function's or the cell's value).

        Raises :class:`TaskFailed` (remote type, message and traceback) for a failed
        task, :class:`~bgtasks_ext.TaskCancelled` for a cancelled one, and
        :class:`TimeoutError` when ``timeout`` seconds pass first."""
        if not self.wait(timeout):
            raise TimeoutError(f"task {self.id} ({self.name}) is still {self.state} after {timeout} s")
        if self.state == "failed":
            exc = TaskFailed(self.error)
            raise exc from RemoteTraceback(exc.traceback) if exc.traceback else None
        if self.state == "cancelled":
            raise TaskCancelled(f"task {self.id} ({self.name}) was cancelled")
        if self._result is _MISSING:
            self._result = self._load_result()
        return self._result

    def _load_result(self) -> Any:
        import cloudpickle

        from ..kinds.code import CodeResult

        try:
            raw = self.client.result_bytes(self.id)
        except TaskNotFound:
            return self.task.get("result_preview")
        value = cloudpickle.loads(raw)
        return value.value if isinstance(value, CodeResult) else value

    def result_object(self) -> Any:
        """The unpickled result as it came back (a ``CodeResult`` for code tasks)."""
        import cloudpickle

        return cloudpickle.loads(self.client.result_bytes(self.id))

    # -- actions -----------------------------------------------------------------------------
    def cancel(self) -> TaskDict:
        """Ask the server to cancel (a no-op reply for a task that already ended)."""
        if self.done:
            return self.task
        from .client import TaskConflict

        try:
            self._update(self.client.cancel(self.id))
        except TaskConflict:
            self.refresh()
        return self.task

    def log(self, offset: int = 0) -> str:
        """The task's captured output (from ``offset``)."""
        return str(self.client.log(self.id, offset)["text"])

    # -- display -------------------------------------------------------------------------------
    @property
    def widget(self) -> TaskWidget:
        if self._widget is None:
            from .widgets import TaskWidget

            self._widget = TaskWidget(self)
        return self._widget

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        fraction = self.progress.get("fraction")
        pct = f" {fraction:.0%}" if isinstance(fraction, (int, float)) else ""
        return f"<TaskHandle {self.id} {self.name!r} {self.state}{pct}>"
