"""One events websocket per kernel, in a background thread, fanned out to callbacks.

Why a thread with its own event loop: the kernel's own loop is busy while a cell runs,
and widgets must keep moving then. The thread holds ONE connection to ``GET events``
however many widgets watch, reconnects with backoff, and on every (re)connect reads
the snapshot: tasks that ended while it was away (absent from the snapshot, which only
holds live tasks) are read once over REST, so no watcher misses its task's end.

Schedules too: ``schedule`` messages (and each snapshot's ``schedules``) go to
``watch_schedules`` callbacks, which keep schedule handles and widgets current.

Logs come the same way (``follow_log``: the server pushes what a task prints, coalesced),
so an open log in a widget costs no request per second. Each follower has its own offset;
the server follows from the smallest, and a reconnect follows again from there.

Callbacks run in this thread. They must not print (ipykernel 7 routes a thread's output
to whichever cell is current) and their errors are kept in :attr:`EventStream.errors`
rather than logged, for the same reason.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from typing import Any, Callable, Protocol

from ..core.states import TERMINAL_NAMES as TERMINAL

TaskDict = dict[str, Any]
"""A task's JSON record, as the server sends it."""
Callback = Callable[[TaskDict], None]
ScheduleCallback = Callable[[str, TaskDict], None]
"""Gets ``(change, schedule)``: ``snapshot`` (each schedule, on every (re)connect),
``created``, ``updated`` or ``deleted``, and the schedule's JSON."""
LogCallback = Callable[[dict[str, Any]], None]
"""Gets ``{"text", "offset", "next_offset", "end"}`` (``offset`` above the follower's own
when the log's head was trimmed), or ``{"error": message, "end": True}``."""


class _LogFollower:
    __slots__ = ("callback", "offset")

    def __init__(self, callback: LogCallback, offset: int) -> None:
        self.callback = callback
        self.offset = offset


class Source(Protocol):
    """What the stream needs of its REST client (:class:`~.client.Client`)."""

    url: str

    @property
    def headers(self) -> dict[str, str]: ...

    def get(self, task_id: str) -> TaskDict: ...


BACKOFF = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class EventStream:
    """The websocket reader thread of one :class:`~.client.Client` (started lazily)."""

    def __init__(self, client: Source) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._watchers: dict[str, list[Callback]] = {}
        self._all: list[Callback] = []
        self._schedules: list[ScheduleCallback] = []
        self.latest: dict[str, TaskDict] = {}
        """The newest record seen of each watched task."""
        self.errors: deque[str] = deque(maxlen=50)
        self.connected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._main_task: asyncio.Task[None] | None = None
        self._logs: dict[str, list[_LogFollower]] = {}
        self._conn: Any = None
        """The open websocket (used on the loop only)."""

    # -- subscribing -----------------------------------------------------------------
    def watch(self, task_id: str, callback: Callback) -> Callable[[], None]:
        with self._lock:
            self._watchers.setdefault(task_id, []).append(callback)
        self._ensure_started()
        # The record as of now, from this thread: the stream may have passed it already.
        self.call_soon(self._refresh, [task_id])

        def unwatch() -> None:
            with self._lock:
                callbacks = self._watchers.get(task_id, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks:
                    self._watchers.pop(task_id, None)
                    self.latest.pop(task_id, None)
        return unwatch

    def watch_all(self, callback: Callback) -> Callable[[], None]:
        with self._lock:
            self._all.append(callback)
        self._ensure_started()

        def unwatch() -> None:
            with self._lock:
                if callback in self._all:
                    self._all.remove(callback)
        return unwatch

    def watch_schedules(self, callback: ScheduleCallback) -> Callable[[], None]:
        """Call ``callback(change, schedule)`` on every schedule message."""
        with self._lock:
            self._schedules.append(callback)
        self._ensure_started()

        def unwatch() -> None:
            with self._lock:
                if callback in self._schedules:
                    self._schedules.remove(callback)
        return unwatch

    def follow_log(self, task_id: str, callback: LogCallback, offset: int = 0) -> Callable[[], None]:
        """Call ``callback`` (in the events thread) with the log of ``task_id`` from
        ``offset`` on, pushed by the server as it grows, until a message with ``end``;
        returns the function that stops it."""
        follower = _LogFollower(callback, offset)
        with self._lock:
            self._logs.setdefault(task_id, []).append(follower)
        self._ensure_started()
        self._on_loop(self._send_follow, task_id)

        def unfollow() -> None:
            with self._lock:
                followers = self._logs.get(task_id, [])
                if follower not in followers:
                    return
                followers.remove(follower)
                if followers:
                    return
                del self._logs[task_id]
            self._on_loop(self._send, {"type": "unfollow_log", "id": task_id})
        return unfollow

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:
                pass  # the loop closed meanwhile

    def _send_follow(self, task_id: str) -> None:
        """Follow from the smallest offset any follower still needs (on the loop)."""
        with self._lock:
            offsets = [f.offset for f in self._logs.get(task_id, ())]
        if offsets:
            self._send({"type": "follow_log", "id": task_id, "offset": min(offsets)})

    def _send(self, msg: dict[str, Any]) -> None:
        if self._conn is None:
            return  # the next connect follows every log again
        try:
            self._conn.write_message(json.dumps(msg))
        except Exception as exc:  # closed under us: the reconnect follows again
            self.errors.append(f"send {msg.get('type')}: {exc!r}")

    def _on_log(self, msg: dict[str, Any]) -> None:
        task_id = msg.get("id")
        if not isinstance(task_id, str):
            return
        end = bool(msg.get("end")) or msg.get("type") == "error"
        with self._lock:
            followers = list(self._logs.get(task_id, ()))
            if end:
                self._logs.pop(task_id, None)
        if msg.get("type") == "error":
            for f in followers:
                self._guarded(f.callback, ({"error": str(msg.get("message")), "end": True},))
            return
        start, stop = int(msg.get("offset", 0)), int(msg.get("next_offset", 0))
        text = str(msg.get("text", ""))
        for f in followers:
            # Each follower from its own offset: a follow restarted for another one (or
            # after a reconnect) repeats text it already has.
            begin = max(f.offset, start)
            part = text[begin - start:] if begin < stop else ""
            if not part and not end:
                continue
            f.offset = max(f.offset, stop)
            self._guarded(f.callback, ({"text": part, "offset": min(begin, stop),
                                        "next_offset": stop, "end": end},))

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the events thread (off the loop for blocking I/O)."""
        self._ensure_started()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._in_executor, fn, args)

    def _in_executor(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        assert self._loop is not None
        self._loop.run_in_executor(None, self._guarded, fn, args)

    # -- the thread --------------------------------------------------------------------
    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopping:
                return
            ready = threading.Event()
            self._thread = threading.Thread(target=self._main, args=(ready,),
                                            name="bgtasks-events", daemon=True)
            self._thread.start()
        ready.wait(5)

    def _main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._main_task = loop.create_task(self._run())
        ready.set()
        try:
            loop.run_until_complete(self._main_task)
        except asyncio.CancelledError:
            pass  # stop()
        except Exception as exc:  # pragma: no cover - the loop itself broke
            self.errors.append(f"events thread died: {exc!r}")
        finally:
            loop.close()

    async def _run(self) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        url = "ws" + self.client.url[len("http"):] + "events"
        attempt = 0
        while not self._stopping:
            try:
                request = HTTPRequest(url, headers=self.client.headers, connect_timeout=5)
                conn = await websocket_connect(request, ping_interval=20)
            except Exception as exc:
                self.errors.append(f"connect: {exc!r}")
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1
                continue
            attempt = 0
            self._conn = conn
            with self._lock:
                followed = list(self._logs)
            for task_id in followed:
                self._send_follow(task_id)
            self.connected.set()
            try:
                while not self._stopping:
                    frame = await conn.read_message()
                    if frame is None:
                        break
                    self._on_frame(frame)
            finally:
                self.connected.clear()
                self._conn = None
                conn.close()
            if not self._stopping:
                await asyncio.sleep(BACKOFF[0])

    def _on_frame(self, frame: str | bytes) -> None:
        try:
            data = json.loads(frame)
        except ValueError:
            self.errors.append(f"bad frame {frame[:100]!r}")
            return
        for msg in data if isinstance(data, list) else [data]:
            if msg.get("type") == "snapshot":
                live = {t["id"] for t in msg.get("tasks", [])}
                for task in msg.get("tasks", []):
                    self._dispatch(task)
                with self._lock:
                    gone = [tid for tid in self._watchers if tid not in live]
                if gone:  # they ended (or were never live) while we were not looking
                    self.call_soon(self._refresh, gone)
                for schedule in msg.get("schedules") or []:
                    self._dispatch_schedule("snapshot", schedule)
            elif msg.get("type") == "schedule" and isinstance(msg.get("schedule"), dict):
                self._dispatch_schedule(str(msg.get("change")), msg["schedule"])
            elif msg.get("type") == "task" and isinstance(msg.get("task"), dict):
                self._dispatch(msg["task"])
            elif msg.get("type") == "log" or (msg.get("type") == "error" and "id" in msg):
                self._on_log(msg)

    def _refresh(self, task_ids: list[str]) -> None:
        """Read tasks over REST (in an executor thread) and dispatch them on the loop."""
        for task_id in task_ids:
            try:
                task = self.client.get(task_id)
            except Exception as exc:
                self.errors.append(f"refresh {task_id}: {exc!r}")
                continue
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._dispatch, task)

    def _dispatch(self, task: TaskDict) -> None:
        task_id = task.get("id", "")
        with self._lock:
            callbacks = list(self._watchers.get(task_id, ())) + list(self._all)
            if task_id in self._watchers:
                prev = self.latest.get(task_id)
                # A REST read may race the stream: a terminal record is never undone.
                if prev is not None and prev.get("state") in TERMINAL \
                        and task.get("state") not in TERMINAL:
                    return
                self.latest[task_id] = task
        for callback in callbacks:
            self._guarded(callback, (task,))

    def _dispatch_schedule(self, change: str, schedule: TaskDict) -> None:
        with self._lock:
            callbacks = list(self._schedules)
        for callback in callbacks:
            self._guarded(callback, (change, schedule))

    def _guarded(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.errors.append(f"{getattr(fn, '__qualname__', fn)}: {exc!r}")

    def stop(self) -> None:
        """Close the websocket and end the thread (watchers get nothing more)."""
        self._stopping = True
        loop, task = self._loop, self._main_task
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass  # the loop closed meanwhile
