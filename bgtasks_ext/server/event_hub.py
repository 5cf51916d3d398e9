"""Live task events: ``GET {base_url}bgtasks/api/events`` (websocket).

Frames are JSON text. A frame holds one message object or, when several are ready at
once, a JSON array of them in order (clients: ``Array.isArray(m) ? m : [m]``):

- ``{"type": "snapshot", "seq": N, "tasks": [task, ...]}`` — first, once: every live
  task as of engine change ``N``.
- ``{"type": "task", "seq": n, "change": "created" | "state" | "progress" | "note" |
  "deleted", "task": task}`` — every later change (``n > N``); ``task`` is the full task
  JSON (for ``deleted``, the record as it was when it was removed from history).
- ``{"type": "schedule", "change": "created" | "updated" | "deleted", "schedule":
  schedule}`` — every change of a schedule (also by firing: its next fire time, last
  run); the snapshot also carries ``"schedules": [schedule, ...]``, all of them.

``created``, ``state`` and ``deleted`` arrive at once and in engine order. ``progress`` is
coalesced (latest per task, at most one per ``progress_interval`` for all tasks), and a
task's ``state`` message replaces its pending progress, so the ``seq`` of one task's
messages only increases; a progress message may follow a later-numbered change of
*another* task. A client that falls ``max_buffer`` bytes behind for ``slow_grace``
seconds is closed (code 1013) and should reconnect for a fresh snapshot.

Live logs (:mod:`.log_feed`): a client sends ``{"type": "follow_log", "id": ID,
"offset": n}`` (``offset`` optional, default 0) and gets

- ``{"type": "log", "id": ID, "offset": o, "next_offset": m, "text": ..., "end": bool}``
  — the text from ``o`` to ``m``, first what is there now, then as the log grows
  (coalesced: at most one message per task every ``log_interval``; a long log in chunks).
  ``o`` is above the offset asked for when the head was trimmed by the log cap. ``end`` is
  true on the last message, once the task has ended and all its log was sent; the follow
  ends with it. Follow again from ``m`` after a reconnect.
- ``{"type": "unfollow_log", "id": ID}`` stops it.

A message the server cannot take gets ``{"type": "error", "field": ..., "message": ...,
"id"?: ID}`` (an unknown task: ``field`` ``id``); the socket stays open.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.auth.identity import User
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado import web
from tornado.websocket import WebSocketHandler

from ..core.engine import Engine
from ..core.errors import InvalidInput
from ..core.jsontext import dumps as json_dumps
from ..core.models import TaskEvent
from .handlers import AUTH_RESOURCE, kernel_secret_ok
from .log_feed import LogFeed, error_msg, parse_client_message
from .subscriber import Msg, Subscriber, frame_of

CLOSE_GOING_AWAY = 1001


def task_msg(event: TaskEvent) -> Msg:
    text = json_dumps({"type": "task", "seq": event.seq, "change": event.change,
                       "task": event.task.to_json()})
    return Msg(event.seq, event.task.id, text)


class EventHub:
    """Fans engine events out to websocket clients, on the event loop.

    The engine calls :meth:`_on_event` under its lock from its own threads, up to tens of
    thousands of times a second: it only queues the event and wakes the loop once per
    batch. The loop serializes each message once, for every client.
    """

    def __init__(self, engine: Engine, progress_interval: float = 0.05,
                 max_buffer: int = 16 * 2**20, slow_grace: float = 5.0,
                 log_interval: float = 0.1) -> None:
        self.engine = engine
        self.logs = LogFeed(engine, log_interval)
        self.progress_interval = progress_interval
        self.max_buffer = max_buffer
        self.slow_grace = slow_grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._unsubscribe: Any = None
        self._clients: dict[Subscriber, None] = {}  # insertion-ordered set
        self._queue: deque[TaskEvent] = deque()
        self._woken = False
        self._progress: dict[str, TaskEvent] = {}
        self._progress_timer: asyncio.TimerHandle | None = None
        self._progress_sent_at = 0.0
        self._scheduler: Any = None
        self._unwatch_schedules: Any = None
        self._schedule_lock = threading.Lock()
        self._schedule_events: dict[str, Any] = {}
        self._schedules_woken = False

    @property
    def running(self) -> bool:
        return self._unsubscribe is not None

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def start(self) -> None:
        """Subscribe to the engine; call on the event loop that serves the clients."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._unsubscribe = self.engine.subscribe(self._on_event)
        self.logs.start(self._loop)

    def stop(self) -> None:
        """Unsubscribe and close every client (they reconnect to the next server)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._unwatch_schedules is not None:
            self._unwatch_schedules()
            self._unwatch_schedules = None
        self.logs.stop()
        if self._progress_timer is not None:
            self._progress_timer.cancel()
            self._progress_timer = None
        for client in list(self._clients):
            client.close()
            client.handler.close(CLOSE_GOING_AWAY, "bgtasks: server stopping")
        self._queue.clear()
        self._progress.clear()

    def add(self, handler: WebSocketHandler) -> Subscriber:
        """Register a client and send its snapshot. Registered first, so that the listener
        queues every event from here on; the snapshot's ``seq`` then tells the client which
        of the queued events it already holds. Both happen in one loop step: no flush between."""
        client = Subscriber(handler, self._forget, self.max_buffer, self.slow_grace,
                            on_room=self.logs.room)
        self._clients[client] = None
        seq, tasks = self.engine.snapshot()
        client.snapshot(seq, tasks, None if self._scheduler is None else self._schedules_json())
        return client

    # -- schedules ---------------------------------------------------------------------
    def watch_schedules(self, scheduler: Any) -> None:
        """Send every change of a schedule (a :class:`~bgtasks_ext.scheduling.service.
        Scheduler`'s events) as ``{"type": "schedule", "change", "schedule"}``, and the
        schedules in each snapshot.

        The scheduler calls its listeners from the thread that fires (a hundred schedules
        due at once are a hundred events): the listener only queues and wakes the loop
        once per burst, and only while a client listens. The JSON (next fire times, last
        run) is made on the loop, once per schedule per burst, off the firing thread."""
        self._scheduler = scheduler
        self._unwatch_schedules = scheduler.subscribe(self._on_schedule)

    def _schedules_json(self) -> list[dict[str, Any]]:
        """Every schedule, for a snapshot (read on the loop when a client connects)."""
        return [self._scheduler.to_json(s) for s in self._scheduler.list()]

    def _on_schedule(self, event: Any) -> None:
        if not self._clients or self._loop is None:
            return  # a client that joins later reads them in its snapshot
        with self._schedule_lock:
            self._schedule_events[event.schedule.id] = event  # the latest per schedule
            if self._schedules_woken:
                return
            self._schedules_woken = True
        try:
            self._loop.call_soon_threadsafe(self._flush_schedules)
        except RuntimeError:  # the loop closed under a late change
            pass

    def _flush_schedules(self) -> None:
        with self._schedule_lock:
            events, self._schedule_events = self._schedule_events, {}
            self._schedules_woken = False
        if not events or not self._clients:
            return
        msgs = [{"type": "schedule", "change": e.change,
                 "schedule": e.schedule.to_json() if e.change == "deleted"
                 else self._scheduler.to_json(e.schedule)} for e in events.values()]
        frame = json_dumps(msgs[0] if len(msgs) == 1 else msgs).encode()
        for client in list(self._clients):
            client.write(frame)

    def _forget(self, client: Subscriber) -> None:
        self._clients.pop(client, None)
        self.logs.forget(client)

    def receive(self, client: Subscriber, raw: str | bytes) -> None:
        """A client's message: follow or unfollow a log. A bad one is answered with an
        error message naming the field; the socket stays open."""
        try:
            msg = parse_client_message(raw)
        except InvalidInput as exc:
            client.write(error_msg(exc.field, exc.reason))
            return
        if msg.type == "follow_log":
            self.logs.follow(client, msg.id, msg.offset)
        else:
            self.logs.unfollow(client, msg.id)

    # -- engine threads, under the engine lock: queue and wake, nothing more ----------
    def _on_event(self, event: TaskEvent) -> None:
        if not self._clients:
            return  # a client that joins later reads it from its snapshot
        self._queue.append(event)
        if not self._woken:
            self._woken = True
            assert self._loop is not None
            if threading.get_ident() == self._loop_thread:
                self._loop.call_soon(self._flush)  # e.g. `created`: no self-pipe write
                return
            try:
                self._loop.call_soon_threadsafe(self._flush)
            except RuntimeError:  # the loop closed under a late engine event
                pass

    # -- the loop ------------------------------------------------------------------------
    def _flush(self) -> None:
        # Cleared before draining: an event queued from now on wakes another flush.
        self._woken = False
        queue = self._queue
        if not self._clients:
            queue.clear()
            self._progress.clear()
            return
        now: list[Msg] = []
        progress = self._progress
        while queue:
            event = queue.popleft()
            if event.change == "progress":
                progress[event.task.id] = event
            else:
                progress.pop(event.task.id, None)
                now.append(task_msg(event))
                self.logs.task_changed(event.task.id)
        if now:
            self._send(now, progress=False)
        if progress and self._progress_timer is None:
            assert self._loop is not None
            wait = self._progress_sent_at + self.progress_interval - self._loop.time()
            if wait <= 0:
                self._send_progress()
            else:
                self._progress_timer = self._loop.call_later(wait, self._send_progress)

    def _send_progress(self) -> None:
        assert self._loop is not None
        self._progress_timer = None
        self._progress_sent_at = self._loop.time()
        events = sorted(self._progress.values(), key=lambda e: e.seq)
        self._progress.clear()
        if events:
            self._send([task_msg(e) for e in events], progress=True)

    def _send(self, msgs: list[Msg], progress: bool) -> None:
        frame = frame_of(msgs)
        for client in list(self._clients):
            client.send(msgs, frame, progress)


class EventsHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):  # type: ignore[misc]
    """The websocket. Jupyter auth as for every websocket of the server (no upgrade
    without a user: 403), or the kernel secret, as on the REST routes."""

    auth_resource = AUTH_RESOURCE
    client: Subscriber | None = None

    @property
    def hub(self) -> EventHub:
        return self.settings["bgtasks_events"]  # type: ignore[no-any-return]

    def set_default_headers(self) -> None:
        """None of JupyterHandler's page headers make sense on an upgrade."""

    def get_compression_options(self) -> dict[str, Any] | None:
        return self.settings.get("websocket_compression_options", None)  # type: ignore[no-any-return]

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        # The same check as the REST routes, so the secret opens the same doors.
        if kernel_secret_ok(self):
            CallContext.set(CallContext.JUPYTER_HANDLER, self)
            if not self.check_host():
                raise web.HTTPError(403)
            self.current_user = self._jupyter_current_user = User(
                username="kernel", name="kernel", display_name="kernel"
            )
            return
        await super().prepare(*args, **kwargs)

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        allowed = await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)
        )
        if not allowed:
            raise web.HTTPError(403)
        if not self.hub.running:
            raise web.HTTPError(503, "bgtasks: the task engine is not running")
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)  # starts the keep-alive pings
        self.client = self.hub.add(self)

    def on_message(self, message: str | bytes) -> None:
        """``follow_log`` / ``unfollow_log`` (see the module docstring)."""
        if self.client is not None:
            self.hub.receive(self.client, message)

    def on_close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
