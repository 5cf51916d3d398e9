"""Task ids handed out before their task exists, for a client that must show the id at once.

A kernel with big inputs asks ``POST tasks?check_only=true&reserve=true`` first, and sends
the multipart body from a thread afterwards; the notebook must display the task's output
(which carries the id) before that upload ends. So the check answers with a fresh id, and
the upload's ``POST tasks?reserved=<id>`` creates the task with it.

The ids are made here (:func:`~bgtasks_ext.core.models.new_id`, the engine's own kind)
and only an id this table made, not yet used and not expired, is ever handed to the
engine: a client cannot pick an id, nor take one twice. The table lives in this server
process's memory (a restart forgets it: the client then sees a 400 and launches again),
each id for :data:`TTL` seconds, at most :data:`LIMIT` at once (the oldest dropped).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable

from ..core.models import new_id

TTL = 600.0
"""Seconds a reserved id stays usable: a big upload starts right after its check."""
LIMIT = 10_000
"""Reservations kept at once: a client that reserves and never uploads costs no more."""


class Reservations:
    """The ids this server reserved: :meth:`reserve`, then :meth:`take` once (or
    :meth:`give_back` when the create it was taken for failed)."""

    def __init__(self, ttl: float = TTL, limit: int = LIMIT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._expires: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expires)

    def reserve(self) -> str:
        """A new id, usable once within :attr:`ttl` seconds."""
        task_id = new_id()
        with self._lock:
            self._drop_expired()
            while len(self._expires) >= self.limit:
                self._expires.popitem(last=False)
            self._expires[task_id] = self._clock() + self.ttl
        return task_id

    def valid(self, task_id: str) -> bool:
        """Whether ``task_id`` is reserved, unused and unexpired (it stays reserved)."""
        with self._lock:
            expires = self._expires.get(task_id)
            return expires is not None and expires > self._clock()

    def take(self, task_id: str) -> float | None:
        """Use the reservation: its expiry time (for :meth:`give_back`), or ``None`` when
        ``task_id`` is not reserved here, already used, or expired."""
        with self._lock:
            expires = self._expires.pop(task_id, None)
            return expires if expires is not None and expires > self._clock() else None

    def give_back(self, task_id: str, expires: float) -> None:
        """Undo :meth:`take`: the create it was for refused the request (the client may
        send it again, corrected). It keeps its first expiry time."""
        with self._lock:
            self._expires[task_id] = expires

    def _drop_expired(self) -> None:
        now = self._clock()
        while self._expires:
            task_id, expires = next(iter(self._expires.items()))
            if expires > now:
                return
            del self._expires[task_id]
