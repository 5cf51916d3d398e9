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
from .landing import settle
from .units import human_bytes

if TYPE_CHECKING:
    from .widgets import TaskWidget

_MISSING: Any = object()


def _nothing() -> None:
    pass


def _sending_progress(sent: int, size: int) -> dict[str, Any]:
    message = f"sending inputs: {human_bytes(sent)} of {human_bytes(size)}"
    if size and sent >= size:
        message = f"inputs sent ({human_bytes(size)}): the server is storing them"
    return {"current": None, "total": None, "fraction": sent / size if size else None,
            "message": message}


class _Done:
    """``h.done()`` as a future has it, and still truthy like the former ``h.done``
    property, so notebooks written as ``while not h.done:`` keep working."""

    __slots__ = ("_handle",)

    def __init__(self, handle: TaskHandle) -> None:
        self._handle = handle

    def __call__(self) -> bool:
        return self._handle.state in TERMINAL

    def __bool__(self) -> bool:
        return self()

    def __repr__(self) -> str:
        return repr(self())


class TaskHandle:
    """``h.id``, ``h.state``, ``h.progress``, ``h.result()``, ``h.cancel()``, ``h.log()``;
    displayed in a notebook, it is its widget.

    ``on_finish(handle, task)`` is called once, in the events thread, when the task
    ends (how ``%%bgtask`` queues a cell's outputs for the namespace without blocking a
    cell). Like a future: ``done()``, ``cancelled()``, ``exception()``,
    ``add_done_callback(fn)`` and ``await h`` (in the kernel's asyncio loop).
    """

    def __init__(self, task_id: str, client: Client, on_finish: Callable[[TaskHandle, TaskDict], Any] | None = None,
                 task: TaskDict | None = None) -> None:
        self._setup(client, on_finish)
        self._bind(task if task is not None else client.get(task_id))

    def _setup(self, client: Client, on_finish: Callable[[TaskHandle, TaskDict], Any] | None) -> None:
        self.client = client
        self._id = ""
        self._reserved = ""
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
        self._callbacks: list[Callable[[TaskHandle], Any]] = []
        self._object: Any = _MISSING
        self._shown_in: Any = None

    @classmethod
    def sending(cls, client: Client, create: Callable[[Callable[[int], None]], TaskDict], *,
                size: int, name: str, on_finish: Callable[[TaskHandle, TaskDict], Any] | None = None,
                reserved: str | None = None) -> TaskHandle:
        """A handle whose task is still being sent: ``create(on_sent)`` (the ``POST tasks``
        of a big payload) runs in a thread, so the cell returns at once.

        Until the server answers, the record is a local one that shows how much of the
        input has gone; :attr:`id` waits for the answer. If the server refuses the task,
        the handle ends ``failed`` with the server's message (``result()`` raises it).
        ``reserved``: the id the server reserved for the task (:attr:`known_id`), which the
        notebook's output carries at once, before the task exists."""
        self = cls.__new__(cls)
        self._setup(client, on_finish)
        self._reserved = reserved or ""
        self.sent_bytes = size
        self.task = {"id": None, "name": name, "kind": "code", "state": "pending",
                     "progress": _sending_progress(0, size)}

        def run() -> None:
            try:
                task = create(self._sending)
            except Exception as exc:
                self._send_error = exc
                self.sent_bytes = 0  # nothing reached a task: the widget says no size
                self._sent.set()
                self._update({**self.task, "state": "failed",
                              "progress": {"current": None, "total": None, "fraction": None,
                                           "message": f"inputs not sent ({human_bytes(size)})"},
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
    def known_id(self) -> str:
        """The id without waiting: the server's, else the one reserved for a task still
        being sent ("" when neither: an old server, or no reservation)."""
        return self._id or self._reserved

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
    def done(self) -> _Done:
        """``h.done()``: True once the task has ended (finished, failed or cancelled).
        Also truthy by itself, as the property it used to be (``if h.done:``)."""
        return _Done(self)

    def cancelled(self) -> bool:
        """True if the task ended ``cancelled``."""
        return self.state == "cancelled"

    def add_done_callback(self, fn: Callable[[TaskHandle], Any]) -> None:
        """Call ``fn(handle)`` once the task has ended: in the events thread, or at once
        (in the caller's thread) if it already has. Its errors are ignored, as printing
        from the events thread would land in whichever cell runs."""
        with self._finish_lock:
            if not self._done.is_set():
                self._callbacks.append(fn)
                return
        self._call_back(fn)

    def _call_back(self, fn: Callable[[TaskHandle], Any]) -> None:
        try:
            fn(self)
        except Exception:  # noqa: S110 - the caller's callback; never print from this thread
            pass

    def add_listener(self, callback: Callable[[TaskDict], None]) -> None:
        """Call ``callback(task)`` on every later change (in the events thread)."""
        self._listeners.append(callback)

    def _update(self, task: TaskDict) -> None:
        if self.done() and task.get("state") not in TERMINAL:
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
        # e.g. %%bgtask's outputs being queued for the user namespace.
        with self._finish_lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            self._call_back(fn)

    def refresh(self) -> TaskDict:
        """Read the record over REST now (the events stream does this by itself)."""
        if self._sent.is_set() and self._id:
            self._update(self.client.get(self._id))
        return self.task

    # -- waiting and results ---------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends; False if ``timeout`` seconds pass first.

        Called by the notebook's own code (the main thread), it also sets the task's cell
        outputs in the namespace now: waiting is the point the code chose for them."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            if not self._done.wait(left):
                self.refresh()  # the safety net: the stream may be down
        if self._id:
            settle(self._id)
        return True

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's error as :class:`TaskFailed` (None if it finished), after waiting
        for its end; raises :class:`~bgtasks_ext.TaskCancelled` for a cancelled task and
        :class:`TimeoutError` when ``timeout`` seconds pass first, as a future does."""
        try:
            self.result(timeout)
        except TaskFailed as exc:
            return exc
        return None

    def __await__(self) -> Any:
        """``await h``: waits without blocking the kernel's asyncio loop, then gives
        :meth:`result` (its fetch runs in the loop's executor)."""
        return self._await().__await__()

    async def _await(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        if not self._done.is_set():
            ended: asyncio.Future[None] = loop.create_future()

            def end() -> None:
                if not ended.done():
                    ended.set_result(None)

            def wake(_handle: TaskHandle) -> None:
                loop.call_soon_threadsafe(end)

            self.add_done_callback(wake)
            await ended
        value = await loop.run_in_executor(None, self.result)
        if self._id:
            settle(self._id)  # back in the loop's (main) thread: the cell's outputs land
        return value

    def result(self, timeout: float | None = None) -> Any:
        """The task's return value: for ``submit()`` the function's, for ``%bgtask EXPR``
        the expression's, for a ``%%bgtask`` cell its outputs as ``{name: value}``.

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
        from .outputs import value_of

        kept = getattr(self._on_finish, "values", None)
        if isinstance(kept, dict):
            return kept  # a kernel-executor cell's outputs: they live in this namespace
        try:
            return value_of(self.result_object())
        except TaskNotFound:
            return self.task.get("result_preview")

    def result_object(self) -> Any:
        """The unpickled result as it came back (a ``CodeResult`` for code tasks),
        fetched once."""
        import cloudpickle

        if self._object is _MISSING:
            self._object = cloudpickle.loads(self.client.result_bytes(self.id))
        return self._object

    # -- actions -----------------------------------------------------------------------------
    def cancel(self) -> TaskDict:
        """Ask the server to cancel (a no-op reply for a task that already ended; a task
        still being sent is cancelled as soon as the server has it)."""
        if self.done():
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
            show = getattr(self._on_finish, "show", None)
            if show is not None:  # the end hook writes its note on the widget
                show(self._widget)
        return self._widget

    def mark_shown(self) -> None:
        """The widget was shown (or left out on purpose) by this cell: the cell's own
        display of the handle (``%bgtask f(x)`` returns it) shows nothing more."""
        self._shown_in = _cell_number()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        shown, self._shown_in = self._shown_in, None
        if shown is not None and shown == _cell_number():
            return
        display(self.widget)

    def __repr__(self) -> str:
        fraction = self.progress.get("fraction")
        pct = f" {fraction:.0%}" if isinstance(fraction, (int, float)) else ""
        return f"<TaskHandle {self._id or '(being sent)'} {self.name!r} {self.state}{pct}>"


def _cell_number() -> Any:
    """Which cell runs now (IPython's execution count), None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return None if shell is None else shell.execution_count
