"""The kernel's HTTP client for the bgtasks REST API, and how a kernel finds its server.

A kernel started by a Jupyter server running this extension gets ``BGTASKS_URL`` and
``BGTASKS_TOKEN`` in its environment (see :mod:`bgtasks_ext.server.app`);
:func:`connect` overrides them. Requests are plain synchronous ``urllib`` calls with
timeouts: they are few (create, cancel, one result) and must work from any thread,
including one without an event loop. Live updates come from :attr:`Client.events`,
one websocket per kernel (see :mod:`.events`), not from polling.

This module imports only the standard library and :mod:`bgtasks_ext.core`, so that
importing it (or ``bgtasks_ext``) stays light.
"""

from __future__ import annotations

import base64
import builtins
import http.client
import json
import os
import re
import select
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Callable, Iterator

from ..core.constants import ENV_TOKEN, ENV_URL, PICKLE_TYPE
from ..core.errors import BgTasksError
from .event_stream import Callback, EventStream, ScheduleCallback, TaskDict

HTTP_TIMEOUT = 10.0
"""Seconds an HTTP request may take: the server is local and answers in milliseconds,
so anything slower means it is stuck or gone."""

NO_SERVER = ("no bgtasks server: this kernel was not started by a Jupyter server running "
             "jupyter-bgtasks; call bgtasks_ext.connect(url, token)")

CHECK_SCHEDULE_FROM = 1 << 20
"""Bytes of frozen input from which a new schedule's body is first checked against the
server's ``max_body_size`` (see :meth:`Client.create_schedule`)."""
RUNS_PAGE = 1000
"""Tasks asked for per page when listing a schedule's runs (the server's most)."""


class NoServer(BgTasksError):
    """The kernel has no bgtasks server to talk to (or it does not answer)."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(NO_SERVER + (f" ({detail})" if detail else ""))


class ServerError(BgTasksError):
    """The server refused a request; ``status`` is its HTTP code, ``field`` the input
    it names (400s), and the message is the server's own."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class TaskNotFound(ServerError):
    """404: no task with that id (or no result for it)."""


class TaskConflict(ServerError):
    """409: the request clashes with the task's state (e.g. cancelling a finished task)."""


class TaskFailed(BgTasksError):
    """Raised by ``handle.result()`` for a failed task. ``type``, ``message`` and
    ``traceback`` are the remote error's; the traceback is also the ``__cause__``, so a
    notebook shows where the task failed, not only where ``result()`` was called."""

    def __init__(self, error: dict[str, Any] | None) -> None:
        error = error or {}
        self.type = str(error.get("type") or "Error")
        self.remote_message = str(error.get("message") or "")
        self.traceback = str(error.get("traceback") or "")
        self.reason = error.get("reason")
        super().__init__(f"{self.type}: {self.remote_message}")


class RemoteTraceback(Exception):
    """Carries a task's traceback text as an exception cause (as multiprocessing does)."""

    def __str__(self) -> str:
        return "\n\n" + str(self.args[0]) if self.args else ""


class Multipart:
    """A ``multipart/form-data`` body of two parts, the JSON ``spec`` and the raw
    ``payload``, iterated in slices of the payload (views, not copies), so that
    ``http.client`` sends it as it goes and ``on_sent`` can tell how far it got."""

    SLICE = 1 << 20

    def __init__(self, spec: bytes, payload: bytes, on_sent: Callable[[int], None] | None = None) -> None:
        self.boundary = f"bgtasks-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        sep = f"--{self.boundary}\r\n".encode()
        self.head = (sep + b'Content-Disposition: form-data; name="spec"\r\n'
                     b"Content-Type: application/json\r\n\r\n" + spec + b"\r\n" + sep
                     + b'Content-Disposition: form-data; name="payload"; filename="payload"\r\n'
                     + f"Content-Type: {PICKLE_TYPE}\r\n\r\n".encode())
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.payload = memoryview(payload).cast("B")
        self.on_sent = on_sent

    def __len__(self) -> int:
        return len(self.head) + len(self.payload) + len(self.tail)

    def __iter__(self) -> Iterator[bytes | memoryview]:
        yield self.head
        for start in range(0, len(self.payload), self.SLICE):
            yield self.payload[start:start + self.SLICE]
            if self.on_sent is not None:
                self.on_sent(min(start + self.SLICE, len(self.payload)))
        yield self.tail


UPLOAD_RATE_FLOOR = 20e6
"""Bytes per second an upload is given at least (sent, parsed and stored) before its
request times out."""
CONTINUE_WAIT = 5.0
"""Seconds to wait for ``100 Continue`` before sending the body anyway (RFC 9110 §10.1.1)."""
_CONTINUE = re.compile(rb"HTTP/1\.[01] 100\b[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n")


def _continue(conn: http.client.HTTPConnection) -> bool:
    """After the headers of an ``Expect: 100-continue`` request: True to send the body
    (the server said ``100 Continue``, which is consumed, or said nothing in time),
    False when its final answer came first (left for ``getresponse``)."""
    sock = conn.sock
    if sock is None or not select.select([sock], [], [], CONTINUE_WAIT)[0]:
        return True
    head = sock.recv(4096, socket.MSG_PEEK)
    match = _CONTINUE.match(head)
    if match is None:
        return not head.startswith(b"HTTP/")
    sock.recv(match.end())
    return True


def _error_for(status: int, body: bytes) -> ServerError:
    try:
        data = json.loads(body or b"{}")
        message = str(data.get("message") or body.decode(errors="replace"))
        field = data.get("field")
    except ValueError:
        message, field = body.decode(errors="replace")[:500] or f"HTTP {status}", None
    cls = {404: TaskNotFound, 409: TaskConflict}.get(status, ServerError)
    return cls(status, message, field)


class Client:
    """Synchronous access to one server's bgtasks API (``url`` ends with ``bgtasks/api/``)."""

    def __init__(self, url: str, token: str, timeout: float = HTTP_TIMEOUT,
                 scheme: str = "bgtasks") -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token
        self.scheme = scheme
        """``bgtasks`` for the server's kernel secret, ``token`` for a Jupyter token."""
        self.timeout = timeout
        self._events: EventStream | None = None
        self._lock = threading.Lock()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"{self.scheme} {self.token}"}

    # -- transport -------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
                accept: str = "application/json", content_type: str = "application/json") -> bytes:
        """One request; a non-2xx answer raises a :class:`ServerError`, no answer at all
        raises :class:`NoServer`. ``body`` is sent as JSON, or as it is when it is a
        :class:`Multipart` (with ``content_type``)."""
        url = self.url + path
        if query:
            clean = {k: v for k, v in query.items() if v is not None}
            url += "?" + urllib.parse.urlencode(clean)
        headers = {**self.headers, "Accept": accept}
        data: Any = None
        if isinstance(body, Multipart):
            data = body
            headers["Content-Length"] = str(len(body))
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - our own server
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            raise _error_for(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            raise NoServer(f"{self.url} does not answer: {exc}") from None

    def _json(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        raw = self.request(method, path, body, query or None)
        return json.loads(raw) if raw else None

    # -- tasks -----------------------------------------------------------------------
    def create(self, *, on_sent: Callable[[int], None] | None = None, reserved: str | None = None,
               **body: Any) -> TaskDict:
        """``POST tasks``: the new task, or the live one holding the same ``key``.

        A ``payload`` given as bytes travels raw, as the ``payload`` part of a
        multipart body beside the JSON ``spec`` (no base64, no copy: the bytes are sent
        in slices), and ``on_sent(n)`` is told how many payload bytes have gone.
        ``reserved``: the id :meth:`check` reserved, which the task then gets."""
        payload = body.pop("payload", None)
        body = {k: v for k, v in body.items() if v is not None}
        query = {"reserved": reserved} if reserved else None
        if payload is None:
            result: TaskDict = self._json("POST", "tasks", body, **(query or {}))
            return result
        upload = Multipart(json.dumps(body).encode(), payload, on_sent)
        path = "tasks" + ("?" + urllib.parse.urlencode(query) if query else "")
        result = json.loads(self._post_upload(path, upload))
        return result

    def _post_upload(self, path: str, upload: Multipart) -> bytes:
        """POST a multipart body with ``Expect: 100-continue``: the server answers
        before the body goes (a refusal, say over its ``max_body_size``, arrives as its
        message instead of a connection reset halfway through the bytes)."""
        url = urllib.parse.urlsplit(self.url + path)
        https = url.scheme == "https"
        conn_type = http.client.HTTPSConnection if https else http.client.HTTPConnection
        # The reply comes once the server has stored the bytes: allow for that.
        timeout = self.timeout + len(upload) / UPLOAD_RATE_FLOOR
        conn = conn_type(url.hostname or "localhost", url.port, timeout=timeout)
        try:
            target = url.path + (f"?{url.query}" if url.query else "")
            conn.putrequest("POST", target, skip_accept_encoding=True)
            headers = {**self.headers, "Accept": "application/json", "Content-Type": upload.content_type,
                       "Content-Length": str(len(upload))}
            if not https:  # peeking at the answer needs a plain socket
                headers["Expect"] = "100-continue"
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if https or _continue(conn):
                for chunk in upload:
                    conn.send(chunk)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise NoServer(f"{self.url} does not answer: {exc}") from None
        finally:
            conn.close()
        if resp.status >= 400:
            raise _error_for(resp.status, raw)
        return raw

    def check(self, payload_size: int = 0, *, reserve: bool = False, **body: Any) -> str | None:
        """Raise the :class:`ServerError` ``create(**body)`` with a payload of
        ``payload_size`` bytes would meet (``POST tasks?check_only=true``); create nothing.

        ``reserve``: also reserve the id the task will get (``create(reserved=...)``),
        returned, so the notebook can show the task's id before its inputs have gone."""
        body = {k: v for k, v in body.items() if v is not None}
        query: dict[str, Any] = {"check_only": "true", "payload_size": payload_size}
        if reserve:
            query["reserve"] = "true"
        reply = self._json("POST", "tasks", body, **query)
        return str(reply["id"]) if reserve and isinstance(reply, dict) else None

    def get(self, task_id: str) -> TaskDict:
        result: TaskDict = self._json("GET", f"tasks/{task_id}")
        return result

    def list(self, **query: Any) -> TaskDict:
        """``GET tasks``: ``{"tasks": [...], "next_cursor": ...}``."""
        result: TaskDict = self._json("GET", "tasks", **query)
        return result

    def cancel(self, task_id: str) -> TaskDict:
        result: TaskDict = self._json("POST", f"tasks/{task_id}/cancel")
        return result

    def set_note(self, task_id: str, note: str | None) -> TaskDict:
        """``PUT tasks/{id}/note``: what this notebook says about the task (``outputs set:
        a, b``), kept with the record so the browser's view of the cell can say it too."""
        result: TaskDict = self._json("PUT", f"tasks/{task_id}/note", {"note": note})
        return result

    def delete(self, task_id: str) -> TaskDict | None:
        result: TaskDict | None = self._json("DELETE", f"tasks/{task_id}")
        return result

    def log(self, task_id: str, offset: int = 0) -> TaskDict:
        """``{"text", "offset", "next_offset"}``."""
        result: TaskDict = self._json("GET", f"tasks/{task_id}/log", offset=offset)
        return result

    def result_bytes(self, task_id: str) -> bytes:
        """The pickled result, exactly as the task produced it (the server never loads it)."""
        return self.request("GET", f"tasks/{task_id}/result", accept=PICKLE_TYPE)

    def kinds(self) -> builtins.list[dict[str, Any]]:
        result: builtins.list[dict[str, Any]] = self._json("GET", "kinds")["kinds"]
        return result

    # -- schedules -------------------------------------------------------------------
    def create_schedule(self, **body: Any) -> TaskDict:
        """``POST schedules``: the new schedule's JSON (with ``next_runs``, ``last_run``).

        A ``payload`` given as bytes (the frozen inputs of a ``%%bgtask --every`` cell)
        travels base64 in the JSON body, so the whole body must stay under the server's
        ``max_body_size`` (inputs up to about 3/4 of it). A big body is first measured
        against that limit (``POST tasks?check_only=true``): the server would otherwise
        drop the connection halfway through, with no message."""
        payload = body.pop("payload", None)
        body = {k: v for k, v in body.items() if v is not None}
        if payload is not None:
            body["payload"] = base64.b64encode(payload).decode()
        if payload is not None and len(payload) >= CHECK_SCHEDULE_FROM:
            self.check(payload_size=len(json.dumps(body)), kind=body.get("kind"))
        result: TaskDict = self._json("POST", "schedules", body)
        return result

    def get_schedule(self, schedule_id: str) -> TaskDict:
        result: TaskDict = self._json("GET", f"schedules/{schedule_id}")
        return result

    def list_schedules(self) -> builtins.list[TaskDict]:
        """``GET schedules``: every schedule on the server, oldest first."""
        result: builtins.list[TaskDict] = self._json("GET", "schedules")["schedules"]
        return result

    def patch_schedule(self, schedule_id: str, **changes: Any) -> TaskDict:
        """``PATCH schedules/{id}`` (``enabled=False`` stops its firing at once)."""
        result: TaskDict = self._json("PATCH", f"schedules/{schedule_id}", changes)
        return result

    def delete_schedule(self, schedule_id: str) -> None:
        """``DELETE schedules/{id}``: no more runs; its past runs stay in history."""
        self._json("DELETE", f"schedules/{schedule_id}")

    def schedule_runs(self, schedule_id: str, limit: int | None = None) -> builtins.list[TaskDict]:
        """The tasks ``schedule_id`` made (``GET tasks?schedule_id=``, newest first),
        every page of them, or the first ``limit``."""
        runs: builtins.list[TaskDict] = []
        cursor: str | None = None
        while True:
            page = self.list(schedule_id=schedule_id, limit=RUNS_PAGE, cursor=cursor)
            runs += page.get("tasks", [])
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and len(runs) >= limit):
                return runs if limit is None else runs[:limit]

    # -- the kernel executor's side ---------------------------------------------------
    def claim(self, task_id: str) -> TaskDict:
        result: TaskDict = self._json("POST", f"tasks/{task_id}/claim")
        return result

    def progress(self, task_id: str, current: float, total: float | None,
                 message: str | None) -> None:
        self._json("POST", f"tasks/{task_id}/progress",
                   {"current": current, "total": total, "message": message})

    def log_text(self, task_id: str, text: str) -> None:
        self._json("POST", f"tasks/{task_id}/log", {"text": text})

    def done(self, task_id: str, status: str, preview: Any = None,
             error: dict[str, Any] | None = None, result: bytes | None = None) -> TaskDict:
        encoded = None if result is None else base64.b64encode(result).decode()
        reply: TaskDict = self._json("POST", f"tasks/{task_id}/done", {
            "status": status, "preview": preview, "error": error, "result": encoded})
        return reply

    # -- live updates ----------------------------------------------------------------
    @property
    def events(self) -> EventStream:
        """This client's one events websocket, started on first use."""
        with self._lock:
            if self._events is None:
                self._events = EventStream(self)
            return self._events

    def watch(self, task_id: str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(task)`` (in the events thread) on every change of one task,
        starting with its current record; returns the function that stops it."""
        return self.events.watch(task_id, callback)

    def watch_all(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(task)`` (in the events thread) on every change of any task."""
        return self.events.watch_all(callback)

    def watch_schedules(self, callback: ScheduleCallback) -> Callable[[], None]:
        """Call ``callback(change, schedule)`` (in the events thread) on every change of
        any schedule (``change``: ``snapshot`` for each one on every (re)connect, then
        ``created``, ``updated``, ``deleted``)."""
        return self.events.watch_schedules(callback)

    def close(self) -> None:
        if self._events is not None:
            self._events.stop()


_override: Client | None = None
_checked: Client | None = None
_state_lock = threading.Lock()


def connect(url: str, token: str) -> Client:
    """Talk to the server at ``url`` (its base URL, or its ``bgtasks/api/`` URL) from
    now on, with ``token`` (a Jupyter token, or the server's kernel secret)."""
    global _override, _checked
    if "bgtasks/api" not in url:
        url = url.rstrip("/") + "/bgtasks/api/"
    # A Jupyter API token is sent with the "token" scheme, the kernel secret with "bgtasks".
    client = Client(url, token)
    try:
        client.request("GET", "tasks", query={"limit": 1})
    except ServerError as exc:
        if exc.status in (401, 403):
            client = Client(url, token, scheme="token")
            client.request("GET", "tasks", query={"limit": 1})
        else:
            raise
    with _state_lock:
        old, _override, _checked = _override, client, client
    if old is not None and old is not client:
        old.close()
    return client


def get_client() -> Client:
    """The kernel's client: from :func:`connect`, else from the environment the server
    gave this kernel. Raises :class:`NoServer` when there is none or it does not answer
    (checked once: later failures surface on the request that meets them)."""
    global _checked
    with _state_lock:
        if _override is not None:
            return _override
        if _checked is not None:
            return _checked
    url, token = os.environ.get(ENV_URL), os.environ.get(ENV_TOKEN)
    if not url or not token:
        raise NoServer()
    client = Client(url, token)
    try:
        client.request("GET", "tasks", query={"limit": 1})
    except ServerError as exc:
        raise NoServer(f"{url} answered {exc.status}: {exc.message}") from None
    with _state_lock:
        _checked = client
    return client
