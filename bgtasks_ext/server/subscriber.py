"""One events websocket subscriber and its flow control (the hub is in :mod:`.event_hub`).

Tornado queues whatever is written to a socket without bound. A client that reads
slowly must not make the server hold a backlog, so each client counts the bytes
written but not yet sent: above :data:`BEHIND_BYTES` it gets no more progress messages
(only the latest per task is kept, sent when it catches up); if it stays above
``max_buffer`` for ``slow_grace`` seconds it is closed with a reason, to reconnect for
a fresh snapshot. State changes are never dropped: they are the stream's truth.
Followed logs (:mod:`.log_feed`) are read for a client only while it has room, and resume
from its offset once it catches up (``on_room``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, NamedTuple

from tornado.websocket import WebSocketClosedError, WebSocketHandler

from ..core.jsontext import dumps as json_dumps
from ..core.models import Task

log = logging.getLogger(__name__)

BEHIND_BYTES = 256 * 1024
"""Unsent bytes above which a client gets no more progress until it catches up."""
CLOSE_TOO_SLOW = 1013  # "try again later"


class Msg(NamedTuple):
    """One message, serialized once and written to every client."""

    seq: int
    task_id: str
    text: str


def frame_of(msgs: list[Msg]) -> bytes:
    """One message as itself, several as a JSON array: one frame per flush, not per event.
    UTF-8 once here, not once per client (a text frame may be written as bytes)."""
    text = msgs[0].text if len(msgs) == 1 else "[" + ",".join(m.text for m in msgs) + "]"
    return text.encode()


class Subscriber:
    """What one socket has seen (``since``), the progress it could not take yet (latest
    per task) and how many bytes written to it are still unsent."""

    def __init__(self, handler: WebSocketHandler, gone: Callable[[Subscriber], None],
                 max_buffer: int, slow_grace: float,
                 on_room: Callable[[Subscriber], None] | None = None) -> None:
        self.handler = handler
        self._gone = gone
        self._on_room = on_room
        self.max_buffer = max_buffer
        self.slow_grace = slow_grace
        self.since = 0
        self.pending: dict[str, Msg] = {}
        self.unsent = 0
        self.over_since: float | None = None
        self.closed = False
        self.follows: dict[str, int] = {}
        """Followed logs: task id -> the offset this client has read up to."""
        self.log_waiting = False
        """A log read skipped this client for want of room: ``on_room`` once it has some."""

    def has_room(self) -> bool:
        return self.unsent <= BEHIND_BYTES

    def snapshot(self, seq: int, tasks: list[Task],
                 schedules: list[dict[str, Any]] | None = None) -> None:
        self.since = seq
        msg: dict[str, Any] = {"type": "snapshot", "seq": seq, "tasks": [t.to_json() for t in tasks]}
        if schedules is not None:
            msg["schedules"] = schedules
        self.write(json_dumps(msg).encode())

    def send(self, msgs: list[Msg], frame: bytes, progress: bool) -> None:
        """Write ``frame`` (the messages ``msgs``, by seq), minus what the snapshot held."""
        if msgs[0].seq <= self.since:  # only just after the snapshot
            msgs = [m for m in msgs if m.seq > self.since]
            if not msgs:
                return
            frame = frame_of(msgs)
        if progress:
            if self.pending or self.unsent > BEHIND_BYTES:
                self.pending.update((m.task_id, m) for m in msgs)
                self.catch_up()
                return
        elif self.pending:
            for m in msgs:  # this change carries the task's latest progress
                self.pending.pop(m.task_id, None)
        self.write(frame)

    def catch_up(self) -> None:
        """Send the progress held back while the socket was slow, once it has room."""
        if self.pending and self.unsent <= BEHIND_BYTES:
            msgs = sorted(self.pending.values())
            self.pending.clear()
            self.write(frame_of(msgs))

    def write(self, frame: bytes) -> None:
        try:
            fut = self.handler.write_message(frame, binary=False)
        except WebSocketClosedError:
            self.close()
            return
        size = len(frame)
        self.unsent += size
        fut.add_done_callback(lambda f: self._written(f, size))
        if self.unsent > self.max_buffer and self.over_since is None:
            self.over_since = time.monotonic()
            asyncio.get_running_loop().call_later(self.slow_grace, self._check_slow)

    def _written(self, fut: asyncio.Future[None], size: int) -> None:
        self.unsent -= size
        if fut.cancelled() or fut.exception() is not None:
            return  # the socket closed (retrieving the error keeps asyncio quiet)
        if self.unsent <= self.max_buffer:
            self.over_since = None
        self.catch_up()
        if self.log_waiting and self.has_room() and not self.closed:
            self.log_waiting = False
            if self._on_room is not None:
                self._on_room(self)

    def _check_slow(self) -> None:
        """Drop the client if it stayed over ``max_buffer`` for ``slow_grace``; look again
        later if it dipped under and went back over meanwhile."""
        if self.over_since is None or self.closed:
            return
        left = self.over_since + self.slow_grace - time.monotonic()
        if left > 0:
            asyncio.get_running_loop().call_later(left, self._check_slow)
            return
        mb = self.unsent / 2**20
        log.warning("bgtasks: closing an events client %.1f MB behind", mb)
        self.close()
        self.handler.close(CLOSE_TOO_SLOW, f"bgtasks: too slow ({mb:.0f} MB unsent); reconnect for a new snapshot")

    def close(self) -> None:
        """Forget this client (idempotent): nothing more is written to it."""
        if not self.closed:
            self.closed = True
            self.pending.clear()
            self.log_waiting = False
            self._gone(self)
