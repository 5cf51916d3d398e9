"""A running server's lease in the store, and the heartbeat that keeps it.

Several servers may share one store (two ``jupyter lab`` in one home, JupyterHub named
servers). Each engine holds the lease ``server:<server_id>`` while it runs: as long as
it is current, no other server touches that server's live tasks. The heartbeat renews
it every ``ttl / 3`` on the engine's timers and, at each beat, lets the engine adopt
the tasks of servers whose lease has lapsed (they died without stopping).

A beat that comes late (this process was suspended, say a laptop asleep, for longer
than the lease) renews and adopts nothing: every other server on the store has slept
too, and must get its own beat in before anyone takes its tasks for orphans.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from .errors import BgTasksError, EngineClosed
from .ports import Store, server_lease
from .timers import Timer, Timers

log = logging.getLogger(__name__)


class Heartbeat:
    """The lease of server ``server_id`` (``take`` / ``start`` / ``stop``)."""

    def __init__(self, store: Store, server_id: str, ttl: float, clock: Callable[[], float],
                 on_beat: Callable[[], None]) -> None:
        if not ttl > 0:
            raise BgTasksError(f"the lease time must be above 0 seconds, not {ttl!r}")
        self.store = store
        self.server_id = server_id
        self.name = server_lease(server_id)
        self.ttl = ttl
        self._clock = clock
        self._on_beat = on_beat
        self._lock = threading.Lock()
        self._timers: Timers | None = None
        self._timer: Timer | None = None
        self._renewed_at = 0.0

    def take(self) -> None:
        """Take the lease, before this server looks at any task. (Server ids are fresh
        per start: two running servers configured with one id would share it.)"""
        now = self._clock()
        if not self.store.lease(self.name, self.server_id, self.ttl, now):
            raise BgTasksError(f"the lease of server {self.server_id!r} is held by another")
        self._renewed_at = now

    def start(self, timers: Timers) -> None:
        """Beat every ``ttl / 3`` on ``timers`` from now on."""
        with self._lock:
            self._timers = timers
            self._next()

    def beat(self, reschedule: bool = True) -> None:
        """Renew the lease; unless this beat is late, then call ``on_beat``.
        ``reschedule``: a timer's beat sets the next one (a beat asked for directly
        does not add a second series)."""
        now = self._clock()
        late = now - self._renewed_at > self.ttl
        try:
            renewed = self.store.lease(self.name, self.server_id, self.ttl, now)
        except Exception:  # the store is busy or gone: the next beat tries again
            log.exception("bgtasks: could not renew this server's lease")
            renewed = False
        if renewed:
            self._renewed_at = now
        if renewed and not late:
            self._on_beat()
        if reschedule:
            with self._lock:
                self._next()

    def _next(self) -> None:
        if self._timers is None:
            return
        try:
            self._timer = self._timers.after(self.ttl / 3, self.beat, True)
        except EngineClosed:
            self._timer = None

    def stop(self) -> None:
        """Stop beating and give the lease up: this server's tasks that are still live
        (pending ones) are another server's to adopt at once."""
        with self._lock:
            self._timers = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        try:
            self.store.release(self.name, self.server_id)
        except Exception:  # it lapses by itself
            log.exception("bgtasks: could not release this server's lease")
