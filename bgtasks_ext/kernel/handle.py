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
from .units import human_bytes

if TYPE_CHECKING:
    from .widgets import TaskWidget

_MISSING: Any = object()


def _nothing() -> None:
    pass


def _sending_progress(sent: int, size: int) -> dict[str, Any]:
    return {"current": None, "total": None, "fraction": sent / size if size else None,
            "message": f"sending inputs: {human_bytes(sent)} of {human_bytes(size)}"}


class TaskHandle:
    """``h.id``, ``h.state``, ``h.progress``, ``h.result()``, ``h.cancel()``, ``h.log()``;
    displayed in a notebook, it is its widget.

    ``on_finish(handle, task)`` is called once, in the events thread, when the task
    ends (how ``%%bgtask`` sets outputs in the user namespace without blocking a cell).
    """

    def __init__(self, task_id: str, client: Client, on_finish: Callable[[TaskHandle, TaskDict], Any] | None = None,
                 task: TaskDict | None = None) -> None:
        self._setup(client, on_finish)
        self._bind(task if task is not None else client.get(task_id))

    def _setup(self, client: Client, on_finish: Callable[[TaskHandle, TaskDict], Any] | None) -> None:
        self.client = client
        self._id = ""
        self.task: TaskDict = {}
        self.sent_bytes = 0
        """Bytes of input sent with the task (its pickled job), shown by the widget."""
        self._sent = threading.Event()
        self._send_error: BaseException | None = None
        self._cancel_asked = False
        self._on_finish = on_finish
        self._listeners: list[Callable[[TaskDict], None]] = []
        self._done = threading.Event()
        self._finish_lock = threading.Lock()
        self._finished_called = False
        self._result: Any = _MISSING
        self._widget: TaskWidget | None = None
        self._unwatch: Callable[[], None] = _nothing

    @classmethod
    def sending(cls, client: Client, create: Callable[[Callable[[int], None]], TaskDict], *,
                size: int, name: str, on_finish: Callable[[TaskHandle, TaskDict], Any] | None = None
                ) -> TaskHandle:
        """A handle whose task is still being sent: ``create(on_sent)`` (the ``POST tasks``
        of a big payload) runs in a thread, so the cell returns at once.

        Until the server answers, the record is a local one that shows how much of the
        input has gone; :attr:`id` waits for the answer. If the server refuses the task,
        the handle ends ``failed`` with the server's message (``result()`` raises it)."""
        self = cls.__new__(cls)
        self._setup(client, on_finish)
        self.sent_bytes = size
        self.task = {"id": None, "name": name, "kind": "code", "state": "pending",
                     "progress": _sending_progress(0, size)}

        def run() -> None:
            try:
                task = create(self._sending)
            except Exception as exc:
                self._send_error = exc
                self._sent.set()
                self._update({**self.task, "state": "failed", "progress": _sending_progress(0, size),
                              "error": {"type": type(exc).__name__, "message": str(exc),
                                        "traceback": "", "reason": "send"}})
                return
            self._bind(task)
            if self._cancel_asked:
                self.cancel()

        threading.Thread(target=run, name="bgtasks-send", daemon=True).start()
        return self

    def _sending(self, sent: int) -> None:
        if not self._sent.is_set():
            self._update({**self.task, "progress": _sending_progress(sent, self.sent_bytes)})

    @property
    def id(self) -> str:
        """The task's id (for a task still being sent: once the server has it)."""
        if not self._sent.is_set():
            self._sent.wait()
        if self._send_error is not None and not self._id:
            raise self._send_error
        return self._id

    @property
    def sending_now(self) -> bool:
        """True while the task's input is still on its way to the server."""
        return not self._sent.is_set()

    def _bind(self, task: TaskDict) -> None:
        """Follow the server's record of ``task`` from now on."""
        self._id = task_id = str(task["id"])
        self.task = task
        self._sent.set()
        for listener in list(self._listeners):
            try:
                listener(task)
            except Exception:  # noqa: S110 - a broken view must not stop the others
                pass
        client = self.client
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
        return str(self.task.get("name") or self.task.get("kind") or self._id)

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
        if self._sent.is_set() and self._id:
            self._update(self.client.get(self._id))
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
            raise TimeoutError(f"task {self._id or '(being sent)'} ({self.name}) is still {self.state} after {timeout} s")
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
        """Ask the server to cancel (a no-op reply for a task that already ended; a task
        still being sent is cancelled as soon as the server has it)."""
        if self.done:
            return self.task
        if not self._sent.is_set():
            self._cancel_asked = True
            if not self._sent.is_set():
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
        return f"<TaskHandle {self._id or '(being sent)'} {self.name!r} {self.state}{pct}>"
