"""A cell's note, kept with its task on the server.

The widget's note line (``outputs set: a, b``, ``superseded task ...``) is known only in
the kernel that launched the cell, but the browser's view of the cell reads the server's
record alone (it must work while this kernel is busy, restarting or gone). So each note
is also sent as the task's ``note`` (``PUT tasks/{id}/note``), from one daemon thread:
the notebook's own thread never waits on the network for it, and a burst of notes for
one task sends only the last.
"""

from __future__ import annotations

import threading
from typing import Any


class NotePoster:
    """Send the newest note of each task, in order, from one background thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: dict[int, tuple[Any, str]] = {}
        self._sent: dict[int, str] = {}
        self._thread: threading.Thread | None = None

    def post(self, handle: Any, text: str) -> None:
        """Queue ``text`` as the note of ``handle``'s task (a :class:`~.handle.TaskHandle`:
        its id may still be on its way, for inputs sent by a thread)."""
        key = id(handle)
        with self._cond:
            if self._sent.get(key) == text and key not in self._queue:
                return
            self._queue[key] = (handle, text)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bgtasks-notes", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                key = next(iter(self._queue))
                handle, text = self._queue.pop(key)
            try:
                task_id = handle.id  # waits while its inputs are being sent
                handle.client.set_note(task_id, text)
            except Exception:  # noqa: S110 - never print from a background thread; the
                continue       # kernel widget still shows the note
            with self._cond:
                self._sent[key] = text

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued note was sent (tests); False on timeout."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._queue:
                    return True
            time.sleep(0.01)
        return False


notes = NotePoster()
"""The kernel's one poster."""
