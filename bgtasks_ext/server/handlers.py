"""REST handlers under ``{base_url}bgtasks/api/``: parse, one engine call, serialize.

Every method is ``@authorized`` on the ``bgtasks`` resource. Errors from the engine
(:class:`~bgtasks_ext.core.errors.BgTasksError`) become 400/404/409 (503 while the
engine is not running) in :meth:`BgTasksHandler.write_error`, the one place that maps
them; nothing a client sends can produce a 500. ``openapi.json`` documents every route
served under the prefix, generated from this table (see :mod:`.openapi`).
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any, Callable, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import User
from jupyter_server.base.call_context import CallContext
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..core.constants import PICKLE_TYPE
from ..core.engine import Engine
from ..core.errors import BgTasksError, Conflict, EngineClosed, InvalidInput, NotFound
from ..core.jsontext import dumps as json_dumps
from ..core.models import Task, TaskSpec
from ..core.states import State
from ..executors.kernel import KernelExecutor
from . import openapi
from .owner import Owners
from .reservations import Reservations
from .upload import TaskUpload
from .requests import (
    flag,
    parse_create,
    parse_done,
    parse_list_query,
    parse_log,
    parse_note,
    parse_progress,
    whole_number,
)

AUTH_RESOURCE = "bgtasks"
KERNEL_AUTH_SCHEME = "bgtasks"
"""``Authorization: bgtasks <secret>``: how kernels started by this server authenticate."""

T = TypeVar("T")


def kernel_secret_ok(handler: web.RequestHandler) -> bool:
    """Whether the request carries this server's kernel secret (``Authorization: bgtasks
    <secret>``). Shared by the REST handlers and the events websocket."""
    header = handler.request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    secret: str = handler.settings.get("bgtasks_kernel_secret") or ""
    return (
        bool(secret)
        and scheme.lower() == KERNEL_AUTH_SCHEME
        and hmac.compare_digest(value.strip().encode(), secret.encode())
    )


class BgTasksHandler(APIHandler):
    """Base of every route: the engine, the kernel secret, the error map."""

    auth_resource = AUTH_RESOURCE

    @property
    def engine(self) -> Engine:
        engine: Engine = self.settings["bgtasks_engine"]
        if not engine.running:
            # The server answers HTTP before its extensions start (and while they stop):
            # a 503 then, not whatever an unopened store would raise.
            raise EngineClosed()
        return engine

    # -- auth: the per-server kernel secret opens these routes and nothing else ------
    def _kernel_secret_ok(self) -> bool:
        return kernel_secret_ok(self)

    async def prepare(self) -> None:  # type: ignore[override]
        if self._kernel_secret_ok():
            CallContext.set(CallContext.JUPYTER_HANDLER, self)
            if not self.check_host():
                raise web.HTTPError(403)
            self.current_user = self._jupyter_current_user = User(
                username="kernel", name="kernel", display_name="kernel"
            )
            self.set_cors_headers()
            return
        await super().prepare()

    @property
    def reservations(self) -> Reservations:
        """This server process's reserved ids (one table, made on first use)."""
        table: Reservations = self.settings.setdefault("bgtasks_reservations", Reservations())
        return table

    @property
    def owner(self) -> str:
        """Who the request's task belongs to: the server's user (see :mod:`.owner`)."""
        owners: Owners = self.settings["bgtasks_owners"]
        if self.kernel_authenticated:
            return owners.of_kernel()
        return owners.of_user(self.current_user)

    @property
    def kernel_authenticated(self) -> bool:
        user = getattr(self, "_jupyter_current_user", None)
        return bool(user is not None and user.username == "kernel" and self._kernel_secret_ok())

    def check_xsrf_cookie(self) -> None:
        # A kernel presents a header no browser can forge cross-site: no XSRF check.
        if self._kernel_secret_ok():
            return None
        return super().check_xsrf_cookie()

    # -- errors ---------------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            # RFC 9110: a 405 names the methods that would work (OPTIONS: CORS preflight).
            allowed = [m.upper() for m in openapi.implemented_methods(type(self))]
            self.set_header("Allow", ", ".join([*allowed, "OPTIONS"]))
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, BgTasksError):
            self.set_status(exc.status)
            reply: dict[str, Any] = {"message": exc.message}
            field = getattr(exc, "field", None)
            if field is not None:
                reply["field"] = field
            if isinstance(exc, NotCreatedYet):
                reply["reserved"] = True
            self.finish(json_dumps(reply))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, BgTasksError):
            self.log.info("bgtasks: %s %s -> %s %s", self.request.method, self.request.path,
                          value.status, value.message)
            return
        super().log_exception(typ, value, tb)

    # -- helpers --------------------------------------------------------------------
    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Store reads run on a thread: the event loop never waits on SQLite."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json_dumps(data))


class NotCreatedYet(NotFound):
    """A 404 for an id reserved here whose task does not exist yet: its inputs are still on
    their way from a kernel. The reply says ``"reserved": true``, so a view can wait for
    the task instead of saying it is gone (once the reservation lapses, a plain 404)."""

    def __init__(self, task_id: str) -> None:
        super().__init__("task", task_id)
        self.message = (f"task {task_id!r} does not exist yet: its id is reserved and its "
                        "inputs are still being sent")


class PayloadTooLarge(BgTasksError):
    status = 413

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"the request is {length} bytes, over this server's limit of {limit} "
                         "(c.ServerApp.max_body_size)")
        self.field = "payload"


@web.stream_request_body
class TasksHandler(BgTasksHandler):
    """``GET`` lists, ``POST`` creates; a ``POST`` body streams into a
    :class:`~.upload.TaskUpload` as it arrives (a payload may be hundreds of MB)."""

    upload: TaskUpload | None = None
    checking = reserve = False
    reserved: str | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        if self.request.method == "POST":
            self._check_length()
            self._check_query()
            self.upload = TaskUpload(self.request.headers.get("Content-Type", ""))

    def _check_query(self) -> None:
        """``check_only``, ``reserve`` and ``reserved``, refused before the body streams in
        (a big upload for a reservation that cannot be used is not read at all)."""
        self.checking = flag("check_only", self.get_query_argument("check_only", None))
        self.reserve = flag("reserve", self.get_query_argument("reserve", None))
        self.reserved = self.get_query_argument("reserved", None)
        if self.reserve and not self.checking:
            raise InvalidInput("reserve", "goes with check_only=true: a check that passes "
                               "reserves the new task's id")
        if self.reserved is not None:
            if self.checking:
                raise InvalidInput("reserved", "creates the task: not with check_only=true")
            if not self.reservations.valid(self.reserved):
                raise _not_reserved(self.reserved)

    def _check_length(self) -> None:
        """Refuse a body over the server's ``max_body_size`` before it is read, with a
        message (tornado itself would answer a bare 400 and drop the connection)."""
        limit = getattr(self.serverapp, "max_body_size", None)
        length = self.request.headers.get("Content-Length", "")
        if limit and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(int(length), int(limit))

    def data_received(self, chunk: bytes) -> None:
        if self.upload is not None:
            self.upload.feed(chunk)

    @authorized
    async def get(self) -> None:
        flt, limit, cursor = parse_list_query(self.get_query_argument)
        page = await self.off_loop(self.engine.list, flt, limit, cursor)
        self.reply({"tasks": [t.to_json() for t in page.tasks], "next_cursor": page.next_cursor})

    @authorized
    async def post(self) -> None:
        assert self.upload is not None, "prepare() makes it for every POST"
        body, payload = await self.off_loop(self.upload.finish)
        checking = self.checking
        if checking:
            # Would this task be accepted with a payload of payload_size bytes? A kernel
            # asks before it sends big inputs from a thread, so that a refusal stops the
            # cell (and Run All) at once instead of failing its handle later.
            size = whole_number("payload_size", self.get_query_argument("payload_size", "0"))
            limit = getattr(self.serverapp, "max_body_size", None)
            if limit and size > limit:
                raise PayloadTooLarge(size, int(limit))
            payload = payload if payload is not None or not size else bytearray()
        spec = parse_create(body, owner=self.owner, payload=payload)
        if checking:
            self.engine.check(spec)
            if self.reserve:
                self.reply({"id": self.reservations.reserve()})
                return
            self.set_status(204)
            self.finish()
            return
        if self.reserved is None:
            task, created = await self.engine.acreate(spec)
        else:
            task, created = await self._create_reserved(spec, self.reserved)
        self.reply(task.to_json(), 201 if created else 200)

    async def _create_reserved(self, spec: TaskSpec, task_id: str) -> tuple[Task, bool]:
        """Create the task with the id reserved for it; the reservation is used up
        (a live holder of the spec's ``key`` answering too), or given back when the
        create is refused, so the client can send the request again, corrected."""
        expires = self.reservations.take(task_id)
        if expires is None:  # taken meanwhile by a request sent twice, or just expired
            raise _not_reserved(task_id)
        try:
            return await self.engine.acreate(spec, task_id)
        except BgTasksError:
            self.reservations.give_back(task_id, expires)
            raise


def _not_reserved(task_id: str) -> InvalidInput:
    return InvalidInput("reserved", f"{task_id[:64]!r} is not reserved here, already used, or "
                        "expired (ids come from POST tasks?check_only=true&reserve=true)")


class TaskHandler(BgTasksHandler):
    @authorized
    async def get(self, task_id: str) -> None:
        task = self.engine.get_live(task_id)
        if task is None:  # not live: ask the store, off the loop
            try:
                task = await self.off_loop(self.engine.get, task_id)
            except NotFound:
                if self.reservations.valid(task_id):
                    raise NotCreatedYet(task_id) from None
                raise
        self.reply(task.to_json())

    @authorized
    async def delete(self, task_id: str) -> None:
        task = await self.off_loop(self.engine.delete, task_id)
        if task is None:
            self.set_status(204)
            self.finish()
        else:
            self.reply(task.to_json(), 202)


class CancelHandler(BgTasksHandler):
    @authorized
    async def post(self, task_id: str) -> None:
        task = await self.off_loop(self.engine.cancel, task_id)
        self.reply(task.to_json(), 202)


class RetryHandler(BgTasksHandler):
    """A new task from an ended one's stored spec and input, any kind (``code`` too): no
    kernel is needed. The rules (409 live or kernel-executor, 410 input gone) are
    :mod:`bgtasks_ext.core.retry`'s; the create is the engine's, as for ``POST tasks``."""

    @authorized
    async def post(self, task_id: str) -> None:
        old = self.engine.get_live(task_id)
        if old is None:
            old = await self.off_loop(self.engine.get, task_id)
        kernel_id = old.origin.kernel_id
        kernel_alive = bool(kernel_id) and kernel_id in self.kernel_manager.list_kernel_ids()
        spec = await self.off_loop(self.engine.retry_spec, task_id, self.owner, kernel_alive)
        task, created = await self.engine.acreate(spec)
        self.reply(task.to_json(), 201 if created else 200)


class NoteHandler(BgTasksHandler):
    """What the notebook says about a task (``outputs set: a, b``), in any state; the
    kernel sets it, views that read only the server show it."""

    @authorized
    async def put(self, task_id: str) -> None:
        note = parse_note(self.request.body)
        task = await self.off_loop(self.engine.set_note, task_id, note)
        self.reply(task.to_json())


class ResultHandler(BgTasksHandler):
    """The JSON preview; with ``Accept: application/vnd.bgtasks.pickle`` the pickled
    payload itself, for the kernel client (the server only passes the bytes on)."""

    @authorized
    async def get(self, task_id: str) -> None:
        payload = await self.off_loop(self.engine.result_payload, task_id)
        if PICKLE_TYPE in self.request.headers.get("Accept", ""):
            if payload is None:
                raise NotFound("result of task", task_id)
            self.set_header("Content-Type", PICKLE_TYPE)
            self.finish(payload, set_content_type=PICKLE_TYPE)
            return
        task = await self.off_loop(self.engine.get, task_id)
        self.reply({"id": task.id, "preview": task.result_preview, "size": len(payload or b"")})


class KernelTaskHandler(BgTasksHandler):
    """Base of the routes a kernel uses to run one of its ``executor: kernel`` tasks."""

    async def kernel_task(self, task_id: str) -> tuple[KernelExecutor, Task]:
        """The kernel executor and the task, or 404 / 409 (not a kernel-executor task)."""
        task = self.engine.get_live(task_id)
        if task is None:
            task = await self.off_loop(self.engine.get, task_id)
        executor = self.engine.executors.get(task.executor)
        if not isinstance(executor, KernelExecutor):
            raise Conflict(f"task {task_id} runs on the {task.executor!r} executor, not in a kernel")
        return executor, task


class ClaimHandler(KernelTaskHandler):
    @authorized
    async def post(self, task_id: str) -> None:
        executor, _ = await self.kernel_task(task_id)
        executor.claim(task_id)
        self.reply((await self.off_loop(self.engine.get, task_id)).to_json())


class LogHandler(KernelTaskHandler):
    """Read a task's log; a kernel running the task appends to it (``POST``)."""

    @authorized
    async def get(self, task_id: str) -> None:
        offset = whole_number("offset", self.get_query_argument("offset", "0"))
        chunk = await self.off_loop(self.engine.read_log, task_id, offset)
        self.reply({"text": chunk.text, "offset": chunk.offset, "next_offset": chunk.next_offset})

    @authorized
    async def post(self, task_id: str) -> None:
        text = parse_log(self.request.body)
        executor, _ = await self.kernel_task(task_id)
        executor.log(task_id, text)
        self.set_status(204)
        self.finish()


class ProgressHandler(KernelTaskHandler):
    @authorized
    async def post(self, task_id: str) -> None:
        report = parse_progress(self.request.body)
        executor, _ = await self.kernel_task(task_id)
        executor.progress(task_id, report.current, report.total, report.message)
        self.set_status(204)
        self.finish()


class DoneHandler(KernelTaskHandler):
    @authorized
    async def post(self, task_id: str) -> None:
        outcome = parse_done(self.request.body)
        executor, task = await self.kernel_task(task_id)
        if task.state is State.PENDING:
            raise Conflict(f"task {task_id} is pending: claim it before reporting it done")
        executor.done(task_id, outcome)
        # Reply with the final record, once stored (a task that had already ended, say
        # cancelled by the safety timer, is returned as it ended: a late report is moot).
        self.reply((await self.off_loop(self.engine.wait, task_id, 30.0)).to_json())


class KindsHandler(BgTasksHandler):
    @authorized
    async def get(self) -> None:
        self.reply({"kinds": [
            {"name": k.name, "title": k.title, "description": k.description, "schema": k.schema(),
             "needs_payload": k.needs_payload, "needs_kernel": k.needs_kernel}
            for k in self.engine.kinds
        ]})


class OpenApiHandler(BgTasksHandler):
    """The OpenAPI document of every route served under our prefix (built once: the
    routes are fixed once the server has started)."""

    def initialize(self, api_path: str) -> None:
        self.api_path = api_path

    @authorized
    async def get(self) -> None:
        doc = self.settings.get("bgtasks_openapi")
        if doc is None:
            prefix = url_path_join(self.base_url, self.api_path)
            routes = openapi.served_routes(self.application, prefix)
            doc = self.settings["bgtasks_openapi"] = openapi.build(routes, prefix, prefix)
        self.reply(doc)


Route = tuple[str, type[BgTasksHandler]] | tuple[str, type[BgTasksHandler], dict[str, Any]]


def handlers(base: str) -> list[Route]:
    """The URL table, relative to ``{base_url}bgtasks/api/``."""
    task_id = r"(?P<task_id>[^/]+)"
    return [
        (f"{base}/tasks", TasksHandler),
        (f"{base}/tasks/{task_id}", TaskHandler),
        (f"{base}/tasks/{task_id}/cancel", CancelHandler),
        (f"{base}/tasks/{task_id}/retry", RetryHandler),
        (f"{base}/tasks/{task_id}/log", LogHandler),
        (f"{base}/tasks/{task_id}/claim", ClaimHandler),
        (f"{base}/tasks/{task_id}/progress", ProgressHandler),
        (f"{base}/tasks/{task_id}/done", DoneHandler),
        (f"{base}/tasks/{task_id}/result", ResultHandler),
        (f"{base}/tasks/{task_id}/note", NoteHandler),
        (f"{base}/kinds", KindsHandler),
        (rf"{base}/openapi\.json", OpenApiHandler, {"api_path": base}),
    ]
