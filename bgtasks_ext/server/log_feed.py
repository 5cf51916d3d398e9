"""Live logs on the events websocket: ``follow_log`` subscriptions (the protocol is in
:mod:`.event_hub`'s docstring and docs/rest.md).

Why pushed and not polled: a log dialog or widget that asks ``GET log`` every second makes
a request per viewer per second whether or not anything was printed, and shows text up to
a second late. Here the engine's writer says which tasks' logs grew in each committed batch
(:meth:`~bgtasks_ext.core.engine.Engine.subscribe_logs`); the feed reads a grown log once,
off the loop, at most once per ``interval`` per task whatever the number of viewers or
prints, and sends each follower the text after its own offset.

A follower whose socket is behind (its unsent bytes over the subscriber's limit) is not
read for until it catches up: its offset stays put, so it then gets everything at once, and
a slow client never makes the server hold more than one chunk for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, NamedTuple

from ..core.engine import Engine
from ..core.errors import BgTasksError, InvalidInput, NotFound
from ..core.jsontext import dumps as json_dumps
from ..core.models import LogChunk
from .subscriber import Subscriber

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
"""Characters read (and sent) per log message: a long log arrives in several."""
MAX_FOLLOWS = 64
"""Logs one socket may follow at once."""
MAX_CLIENT_MESSAGE = 4096
"""Characters a client message may have (they are a few short fields)."""


class ClientMessage(NamedTuple):
    type: str
    id: str
    offset: int


def parse_client_message(raw: str | bytes) -> ClientMessage:
    """``{"type": "follow_log", "id": ID, "offset": N}`` or ``{"type": "unfollow_log",
    "id": ID}``, strictly; anything else raises :class:`InvalidInput` naming the field."""
    if len(raw) > MAX_CLIENT_MESSAGE:
        raise InvalidInput("body", f"a message has at most {MAX_CLIENT_MESSAGE} characters")
    try:
        msg = json.loads(raw)
    except ValueError:
        raise InvalidInput("body", "not JSON") from None
    if not isinstance(msg, dict):
        raise InvalidInput("body", "must be a JSON object")
    kind = msg.get("type")
    if kind not in ("follow_log", "unfollow_log"):
        raise InvalidInput("type", f"must be 'follow_log' or 'unfollow_log', not {kind!r}")
    task_id = msg.get("id")
    if not isinstance(task_id, str) or not task_id or len(task_id) > 64:
        raise InvalidInput("id", "must be a task id (a string of 1 to 64 characters)")
    offset = msg.get("offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset", f"must be an integer >= 0, not {offset!r}")
    extra = sorted(set(msg) - {"type", "id", "offset"})
    if extra:
        raise InvalidInput(extra[0], "unknown field")
    return ClientMessage(kind, task_id, offset)


def log_msg(task_id: str, offset: int, next_offset: int, text: str, end: bool) -> bytes:
    return json_dumps({"type": "log", "id": task_id, "offset": offset,
                       "next_offset": next_offset, "text": text, "end": end}).encode()


def error_msg(field: str, message: str, task_id: str | None = None) -> bytes:
    msg: dict[str, Any] = {"type": "error", "field": field, "message": message}
    if task_id is not None:
        msg["id"] = task_id
    return json_dumps(msg).encode()


class LogFeed:
    """Which sockets follow which task's log, and the coalesced reads that feed them."""

    def __init__(self, engine: Engine, interval: float = 0.1) -> None:
        self.engine = engine
        self.interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Any = None
        self._followers: dict[str, dict[Subscriber, None]] = {}
        self._followed: frozenset[str] = frozenset()
        """The followed task ids, replaced (never mutated) so the writer thread can read it."""
        self._grown: set[str] = set()
        self._grown_lock = threading.Lock()
        self._woken = False
        self._dirty: set[str] = set()
        self._reading: set[str] = set()
        self._timer: asyncio.Handle | None = None
        self._read_at = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._unsubscribe = self.engine.subscribe_logs(self._on_logged)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._followers.clear()
        self._followed = frozenset()
        self._dirty.clear()

    # -- what clients ask (on the loop) ----------------------------------------------------
    def follow(self, client: Subscriber, task_id: str, offset: int) -> None:
        """Send ``client`` the log of ``task_id`` from ``offset`` on, now and as it grows
        (a second follow of one task restarts it from the new offset)."""
        if task_id not in client.follows and len(client.follows) >= MAX_FOLLOWS:
            client.write(error_msg("id", f"a socket follows at most {MAX_FOLLOWS} logs at once: "
                                   "send unfollow_log for one first", task_id))
            return
        client.follows[task_id] = offset
        self._followers.setdefault(task_id, {})[client] = None
        self._followed = frozenset(self._followers)
        self.mark({task_id}, at_once=True)

    def unfollow(self, client: Subscriber, task_id: str) -> None:
        client.follows.pop(task_id, None)
        followers = self._followers.get(task_id)
        if followers is not None:
            followers.pop(client, None)
            if not followers:
                del self._followers[task_id]
                self._followed = frozenset(self._followers)

    def forget(self, client: Subscriber) -> None:
        """The socket closed."""
        for task_id in list(client.follows):
            self.unfollow(client, task_id)

    def room(self, client: Subscriber) -> None:
        """A socket that was behind caught up: read what it missed."""
        self.mark(set(client.follows))

    def task_changed(self, task_id: str) -> None:
        """A followed task changed state or was deleted: its log may be complete (or
        gone), which its followers are told."""
        if task_id in self._followers:
            self.mark({task_id})

    # -- the writer thread: one hop to the loop per batch ----------------------------------
    def _on_logged(self, task_ids: set[str]) -> None:
        followed = self._followed & task_ids
        if not followed:
            return
        with self._grown_lock:
            self._grown |= followed
            if self._woken:
                return
            self._woken = True
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._take_grown)
        except RuntimeError:  # the loop closed under a late commit
            pass

    def _take_grown(self) -> None:
        with self._grown_lock:
            grown, self._grown, self._woken = self._grown, set(), False
        self.mark(grown)

    # -- the loop ------------------------------------------------------------------------
    def mark(self, task_ids: set[str], at_once: bool = False) -> None:
        """Read these logs soon: at once, or at most once per ``interval``."""
        self._dirty |= task_ids & self._followers.keys()
        if not self._dirty or self._loop is None:
            return
        if at_once:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_soon(self._read_dirty)
        elif self._timer is None:
            wait = self._read_at + self.interval - self._loop.time()
            self._timer = self._loop.call_later(max(0.0, wait), self._read_dirty)

    def _read_dirty(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._read_at = self._loop.time()
        for task_id in list(self._dirty):
            if task_id in self._reading:
                continue  # still dirty: read again when this read ends
            self._dirty.discard(task_id)
            ready = {c: c.follows[task_id] for c in self._followers.get(task_id, ())
                     if not c.closed and c.has_room()}
            for client in self._followers.get(task_id, ()):
                if client not in ready:
                    client.log_waiting = True
            if ready:
                self._reading.add(task_id)
                self._loop.create_task(self._read(task_id, min(ready.values())))

    async def _read(self, task_id: str, offset: int) -> None:
        assert self._loop is not None
        try:
            terminal, chunk = await self._loop.run_in_executor(None, self._read_blocking, task_id, offset)
        except NotFound:
            for client in list(self._followers.get(task_id, ())):
                self.unfollow(client, task_id)
                client.write(error_msg("id", f"no task {task_id}", task_id))
            return
        except (BgTasksError, TimeoutError) as exc:  # the engine stopped, the store failed
            log.debug("bgtasks: reading the log of %s for its followers failed: %s", task_id, exc)
            return
        finally:
            self._reading.discard(task_id)
            if task_id in self._dirty:
                self.mark(set())
        complete = len(chunk.text) < CHUNK
        for client in list(self._followers.get(task_id, ())):
            self._deliver(client, task_id, chunk, terminal and complete)
        if not complete:
            self.mark({task_id}, at_once=True)

    def _read_blocking(self, task_id: str, offset: int) -> tuple[bool, LogChunk]:
        # The state first: a task that had ended by then has all its log stored (read_log
        # waits for its end's commit), so nothing can follow what is read next.
        terminal = self.engine.get(task_id).state.terminal
        return terminal, self.engine.read_log(task_id, offset, CHUNK)

    def _deliver(self, client: Subscriber, task_id: str, chunk: LogChunk, end: bool) -> None:
        offset = client.follows.get(task_id)
        if offset is None:
            return  # unfollowed while the read ran
        # From the follower's own offset; from the oldest text kept if its offset was
        # trimmed away (the message's offset then says where the text starts).
        start = max(offset, chunk.offset)
        text = chunk.text[start - chunk.offset:] if start < chunk.next_offset else ""
        if not text and not end:
            return
        if end:
            self.unfollow(client, task_id)
        else:
            client.follows[task_id] = chunk.next_offset
        client.write(log_msg(task_id, min(start, chunk.next_offset), chunk.next_offset, text, end))
