"""Asynchronous cancel of a task's thread, only while the task's code runs in it.

A thread cannot be killed; the most Python offers is an exception raised in it at its
next bytecode (``PyThreadState_SetAsyncExc``), which does not land inside a blocking C
call. Runners that use it (the thread executor, a kernel running a task) open a
:class:`CodeWindow` around the task's code only (it is the ``window`` of
:func:`.attempt.run_attempt`): outside the window — while the result is pickled, after
the task ended, or once the thread runs something else — :meth:`CodeWindow.interrupt`
does nothing, so the exception never reaches code that is not the task's.
"""

from __future__ import annotations

import ctypes
import threading

from .errors import TaskCancelled


class CodeWindow:
    """Open (a context manager) while one task's code runs in the entering thread."""

    __slots__ = ("_lock", "_ident")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ident: int | None = None

    def __enter__(self) -> CodeWindow:
        with self._lock:
            self._ident = threading.get_ident()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._ident = None

    @property
    def open(self) -> bool:
        return self._ident is not None

    def interrupt(self) -> bool:
        """Raise :class:`TaskCancelled` in the task's thread if its code still runs;
        returns whether it was raised."""
        with self._lock:  # held so the window cannot close between the check and the raise
            if self._ident is None:
                return False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._ident), ctypes.py_object(TaskCancelled)
            )
            return True
