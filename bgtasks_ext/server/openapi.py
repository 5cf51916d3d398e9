"""The OpenAPI 3.1 document of the REST API, generated from what the server routes.

Paths come from the live URL table (every route under ``{base_url}bgtasks/api``, so a
route added anywhere shows up), methods from what each handler class implements,
bodies and replies from the pydantic models in :mod:`.requests` and :mod:`.replies`. Only prose and status
codes are written here, in :data:`OPERATIONS`, keyed by path and method: a served
route or method without an entry fails the build (:class:`Undocumented`) and an entry
for a method nobody serves is dropped, so the document cannot drift from the server.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pydantic
import pydantic.json_schema
from jupyter_server.base.handlers import APIHandler
from tornado.routing import PathMatches, Router
from tornado.web import Application, RequestHandler
from tornado.websocket import WebSocketHandler

from .._version import __version__
from ..core.constants import PICKLE_TYPE
from ..store.codec import MAX_LIMIT
from . import replies, requests, upload

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_FRAMEWORK = frozenset({getattr(RequestHandler, m) for m in METHODS} | {APIHandler.options})
"""What a handler inherits rather than implements: tornado's 405s, and APIHandler's answer
to CORS preflights."""

_GROUP = re.compile(r"\(\?P<(\w+)>([^()]*)\)")
_MODELS: tuple[type[pydantic.BaseModel], ...] = (
    requests.CreateTask, replies.TaskOut, replies.TaskPage, replies.LogOut, replies.ResultOut,
    replies.KindList, replies.ErrorOut, requests.ProgressIn, requests.LogIn, requests.DoneIn,
    requests.NoteIn, replies.ReservationOut, requests.CreateSchedule, requests.ScheduleFields,
    replies.ScheduleOut, replies.ScheduleList, replies.SchedulePreviewOut,
)


class _WireNames(pydantic.json_schema.GenerateJsonSchema):
    """Components named for what they are on the wire: ``replies.TaskOut`` is ``Task``."""

    def normalize_name(self, name: str) -> str:
        return super().normalize_name(name).removesuffix("Out")


class Undocumented(LookupError):
    """A served route or method has no entry in :data:`OPERATIONS` (a bug: tests catch it)."""


def _schema(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, model: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _schema(model)}}}


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"$ref": f"#/components/responses/E{code}"} for code in codes}


_ERRORS = {
    400: "Bad input; `field` names the culprit.",
    403: "No valid credentials (Jupyter token or kernel secret), or no XSRF token on a browser write.",
    404: "No task (or schedule) with that id.",
    409: "Not allowed in the task's state.",
    410: "Gone: what the request needs of the task is no longer stored.",
    413: "The request (its payload) is over the server's `max_body_size`; `field` is `payload`.",
    503: "The task engine is not running (the server is starting or stopping).",
}


@dataclass(frozen=True)
class Op:
    """The hand-written part of one operation: prose, query parameters, replies."""

    summary: str
    responses: Mapping[str, Any]
    query: tuple[Mapping[str, Any], ...] = ()
    body: str | None = None
    """The :mod:`.requests` and :mod:`.replies` model of a JSON request body."""
    description: str = ""
    more_bodies: Mapping[str, Any] | None = None
    """Other content types the body may come as (beside JSON)."""
    needs_engine: bool = True
    """Answers 503 while the engine is not running (server starting or stopping)."""


_KERNEL = ("For tasks of the `kernel` executor only (409 for any other), sent by the kernel "
           "that runs it. ")

OPERATIONS: dict[tuple[str, str], Op] = {
    ("/tasks", "get"): Op(
        "List tasks, newest first, a page at a time",
        {"200": _json("A page of tasks.", "TaskPage"), **_errors(400)},
        query=(
            _query("state", "Only tasks in this state (empty: any).",
                   anyOf=[_schema("State"), {"const": ""}]),
            _query("category", "Only tasks in this category, the panel's tabs (empty: any).",
                   anyOf=[_schema("Category"), {"const": ""}]),
            _query("kind", "Only tasks of this kind (empty: any)."),
            _query("key", "Only tasks holding this singleton key (empty: any)."),
            _query("kernel_id", "Only tasks launched from this kernel (empty: any)."),
            _query("schedule_id", "Only tasks fired by this schedule (empty: any)."),
            _query("limit", "Page size.", type="integer", minimum=1,
                   maximum=MAX_LIMIT, default=100),
            _query("cursor", "`next_cursor` of the previous page."),
        ),
    ),
    ("/tasks", "post"): Op(
        "Create a task",
        {"201": _json("Created and queued.", "Task"),
         "200": {"description": "A live task already holds `key`: that task, nothing created. "
                 "With `check_only=true&reserve=true`: the task would be accepted, and this id "
                 "is reserved for it.",
                 "content": {"application/json": {"schema": {
                     "oneOf": [_schema("Task"), _schema("Reservation")]}}}},
         "204": {"description": "With `check_only=true`: the task would be accepted."},
         **_errors(400, 413)},
        query=(
            _query("check_only", "`true`: only check that the task would be accepted; "
                   "create nothing.", enum=["true", "false"]),
            _query("payload_size", "With `check_only`: the size of the payload that will "
                   "come with the task.", type="integer", minimum=0),
            _query("reserve", "With `check_only=true`: when the check passes, reserve an id "
                   "for the task and answer 200 `{id}` (for 10 minutes, in this server "
                   "process).", enum=["true", "false"]),
            _query("reserved", "An id from `check_only=true&reserve=true`: create the task "
                   "with it (once; 400 when it is not reserved here, already used, or "
                   "expired)."),
        ),
        body="CreateTask",
        description="`kind` must be one of `GET kinds` and `params` must fit its schema; "
        "`run_on` (ISO 8601, or seconds since 1970) delays the start. The `code` kind needs "
        "a `payload`, except on the `kernel` executor, which needs `origin.kernel_id` (that "
        "kernel claims and runs the task) and allows no `retries`. A payload may travel raw: "
        "send `multipart/form-data` with the JSON as the `spec` part and the bytes as the "
        "`payload` part (no base64; how kernels send their inputs).",
        more_bodies=upload.describe(),
    ),
    ("/tasks/{task_id}", "get"): Op("Get one task", {"200": _json("The task.", "Task"),
                                                      **_errors(404)}),
    ("/tasks/{task_id}", "delete"): Op(
        "Cancel a live task, or remove an ended one from history",
        {"202": _json("It was pending or running: cancelled (it lands in the failed "
                      "category as `cancelled`).", "Task"),
         "204": {"description": "It had ended: removed from history."}, **_errors(404)},
    ),
    ("/tasks/{task_id}/cancel", "post"): Op(
        "Cancel a pending or running task",
        {"202": _json("Cancelled, or `cancelling` while its executor stops it.", "Task"),
         **_errors(404, 409)},
        description="The request body, if any, is ignored.",
    ),
    ("/tasks/{task_id}/retry", "post"): Op(
        "Run an ended task again, as a new task",
        {"201": _json("A new task with the same spec and stored input; its `origin.retry_of` "
                      "names the old one.", "Task"),
         "200": _json("A live task already holds the old task's `key`: that task, nothing "
                      "created.", "Task"),
         **_errors(404, 409, 410)},
        description="Any kind, `code` (`%%bgtask`, `submit()`) included: the server reuses the "
        "stored input bytes, so no kernel is needed. The old task stays as it is. The new task "
        "starts now, at attempt 1, owned by whoever asks, and is not a schedule's run. 409 for a "
        "task still pending or running (cancel it first), for one of the `kernel` executor (its "
        "code lives in its kernel: run the cell again) and for a kind or executor this server "
        "does not have; 410 when its stored input is gone. A `scope: kernel` task keeps its "
        "scope only while its kernel runs. The request body, if any, is ignored.",
    ),
    ("/tasks/{task_id}/log", "get"): Op(
        "Read a task's log from an offset",
        {"200": _json("Log text and the offset to read from next.", "Log"), **_errors(400, 404)},
        query=(_query("offset", "Character offset to read from.", type="integer", minimum=0,
                      maximum=requests.MAX_OFFSET, default=0),),
    ),
    ("/tasks/{task_id}/log", "post"): Op(
        "Append to the log of a task running in a kernel",
        {"204": {"description": "Appended."}, **_errors(400, 404, 409)},
        body="LogIn",
        description=_KERNEL + "Text the task printed, in order.",
    ),
    ("/tasks/{task_id}/claim", "post"): Op(
        "Start a task in its kernel",
        {"200": _json("Claimed: the task, now running.", "Task"), **_errors(404, 409)},
        description=_KERNEL + "409 also when the task is no longer pending (it was cancelled "
        "meanwhile): the kernel must then not run it. The request body, if any, is ignored.",
    ),
    ("/tasks/{task_id}/progress", "post"): Op(
        "Report the progress of a task running in a kernel",
        {"204": {"description": "Recorded (ignored once the task has ended)."},
         **_errors(400, 404, 409)},
        body="ProgressIn",
        description=_KERNEL,
    ),
    ("/tasks/{task_id}/done", "post"): Op(
        "Report how a task running in a kernel ended",
        {"200": _json("The task as it ended (a report for a task that already ended, say "
                      "forced cancelled, changes nothing).", "Task"), **_errors(400, 404, 409)},
        body="DoneIn",
        description=_KERNEL + "A task that was `cancelling` ends cancelled even if it reports "
        "`finished` (its run stopped early on purpose). 409 while it is still pending.",
    ),
    ("/tasks/{task_id}/note", "put"): Op(
        "Set or clear what the task's notebook says about it",
        {"200": _json("The task with its new `note`.", "Task"), **_errors(400, 404)},
        body="NoteIn",
        description="In any state, live or ended; nothing else of the task changes. Events "
        "carry it as a `note` change. The kernel that launched the task sets it (`outputs "
        "set: a, b`), so views that read only the server can say it.",
    ),
    ("/tasks/{task_id}/result", "get"): Op(
        "A finished task's result",
        {"200": {"description": "The JSON preview; with `Accept: " + PICKLE_TYPE + "` the "
                 "pickled payload itself (for the kernel client; the server never unpickles it).",
                 "content": {"application/json": {"schema": _schema("Result")},
                             PICKLE_TYPE: {"schema": {"type": "string",
                                                           "contentMediaType": PICKLE_TYPE}}}},
         **_errors(404, 409)},
    ),
    ("/schedules", "get"): Op(
        "List schedules, oldest first",
        {"200": _json("Every schedule, with its next 5 fire times and its last run.",
                      "ScheduleList")},
    ),
    ("/schedules", "post"): Op(
        "Create a schedule",
        {"201": _json("Created; the scheduler fires it from its first fire time.", "Schedule"),
         "200": _json("With `check_only=true`: the schedule would be accepted; its next 5 fire "
                      "times (nothing stored).", "SchedulePreview"),
         **_errors(400)},
        query=(_query("check_only", "`true`: only validate and answer the next fire times.",
                      enum=["true", "false"]),),
        body="CreateSchedule",
        description="Exactly one of `every` (seconds, >= 0.1) or `cron` (5 fields, in "
        "`timezone`, default UTC). `kind` and `params` are checked as a task's are. Each run is "
        "a task with this `schedule_id` and its fire time as `scheduled_for`; one run per fire "
        "time, also with several servers on one store. `overlap`: `skip` (default: no run while "
        "the last one is live), `queue` (one waits), `allow`. `misfire`: fire times missed "
        "while no server ran become one run (`coalesce`, default) or none (`skip`).",
    ),
    ("/schedules/{schedule_id}", "get"): Op(
        "Get one schedule", {"200": _json("The schedule.", "Schedule"), **_errors(404)}),
    ("/schedules/{schedule_id}", "patch"): Op(
        "Change a schedule",
        {"200": _json("Changed.", "Schedule"), **_errors(400, 404)},
        body="ScheduleFields",
        description="Any of the fields of a new schedule but `kind` (and its inputs); "
        "`enabled: false` stops firing at once. Giving `every` clears `cron` and the other "
        "way round. A refused change (400 naming the field) changes nothing.",
    ),
    ("/schedules/{schedule_id}", "delete"): Op(
        "Delete a schedule",
        {"204": {"description": "Deleted; its runs stay in history."}, **_errors(404)},
    ),
    ("/kinds", "get"): Op("Registered kinds, with the JSON Schema of their parameters",
                          {"200": _json("Every kind this server runs.", "KindList")}),
    ("/status", "get"): Op(
        "The health of each executor",
        {"200": {"description": "`executors`: for each configured executor, `available` and "
                 "`error` (why it refuses new tasks, naming the setting to fix); the `dask` "
                 "executor adds `scheduler`, `address`, `connected`, `workers`, `dashboard`, "
                 "`running` and `connects`.",
                 "content": {"application/json": {"schema": {"type": "object", "properties": {
                     "executors": {"type": "object", "additionalProperties": {"type": "object"}},
                     "default_executor": {"type": "string"}}}}}}},
    ),
    ("/events", "get"): Op(
        "Live task events (a websocket)",
        {"101": {"description": "Switching Protocols: the websocket is open. Messages are "
                 "JSON text frames, described by `x-bgtasks-messages`."},
         "400": {"description": "Not a websocket upgrade request."}},
        description="On connect, a snapshot of the live tasks; then every change of any task, "
        "in the order the engine made them.",
    ),
    ("/openapi.json", "get"): Op(
        "This document",
        {"200": {"description": "OpenAPI 3.1.",
                 "content": {"application/json": {"schema": {"type": "object"}}}}},
        needs_engine=False,
    ),
}


def path_template(pattern: str, prefix: str) -> tuple[str, dict[str, str]]:
    """``{prefix}/tasks/(?P<task_id>[^/]+)$`` -> ``/tasks/{task_id}`` and each path
    parameter's regex (``{"task_id": "[^/]+"}``)."""
    if not pattern.startswith(prefix):
        raise ValueError(f"{pattern!r} is not under {prefix!r}")
    rel = pattern[len(prefix):].removesuffix("$")
    groups = dict(_GROUP.findall(rel))
    rel = _GROUP.sub(r"{\1}", rel)
    rel = re.sub(r"\\(.)", r"\1", rel)
    if re.search(r"[()\[\]*+?|^$\\]", rel):
        raise ValueError(f"cannot write route {pattern!r} as an OpenAPI path")
    return rel, groups


def implemented_methods(handler: type[RequestHandler]) -> list[str]:
    """The HTTP methods ``handler`` itself answers, not the 405s it inherits."""
    return [m for m in METHODS if getattr(handler, m) not in _FRAMEWORK]


def served_routes(app: Application, prefix: str) -> list[tuple[str, type[RequestHandler]]]:
    """``(regex, handler)`` for every route under ``prefix``, in tornado's match order."""
    found: dict[str, type[RequestHandler]] = {}

    def walk(router: Any) -> None:
        for rule in getattr(router, "rules", ()):
            if isinstance(rule.target, Router):
                walk(rule.target)
            elif (isinstance(rule.matcher, PathMatches) and isinstance(rule.target, type)
                  and rule.matcher.regex.pattern.startswith(prefix)):
                found.setdefault(rule.matcher.regex.pattern, rule.target)

    walk(app.default_router)
    return list(found.items())


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}",
                                         schema_generator=_WireNames)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__.removesuffix("Out")] = schema
    responses = {f"E{code}": _json(text, "Error") for code, text in _ERRORS.items()}
    return {
        "schemas": schemas,
        "responses": responses,
        "securitySchemes": {
            "jupyterToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                             "description": "`Authorization: token <Jupyter server token>`."},
            "kernelSecret": {"type": "apiKey", "in": "header", "name": "Authorization",
                             "description": "`Authorization: bgtasks <secret>`: for kernels this "
                             "server starts (env `BGTASKS_TOKEN`); opens these routes only."},
        },
    }


def _operation(template: str, method: str, handler: type[RequestHandler]) -> dict[str, Any]:
    op = OPERATIONS.get((template, method))
    if op is None:
        raise Undocumented(f"{method.upper()} {template} ({handler.__name__}) has no entry in "
                           "bgtasks_ext.server.openapi.OPERATIONS")
    out: dict[str, Any] = {
        "operationId": f"{method}_{re.sub(r'[^A-Za-z0-9]+', '_', template).strip('_')}",
        "summary": op.summary,
        "responses": {**op.responses, **_errors(403, *([503] if op.needs_engine else []))},
    }
    if op.description:
        out["description"] = op.description
    if op.query:
        out["parameters"] = list(op.query)
    if op.body:
        out["requestBody"] = {"required": True,
                              "content": {"application/json": {"schema": _schema(op.body)},
                                          **(op.more_bodies or {})}}
    if issubclass(handler, WebSocketHandler):
        # OpenAPI has no websockets: describe the upgrade and point at the message schema.
        # The handler may carry a JSON Schema (or pydantic model) of its messages;
        # otherwise its module's docstring, which describes the frames, stands in.
        messages = getattr(handler, "message_schema", None)
        if isinstance(messages, type) and issubclass(messages, pydantic.BaseModel):
            messages = messages.model_json_schema()
        module_doc = inspect.getdoc(inspect.getmodule(handler)) or handler.__doc__ or ""
        out["x-bgtasks-websocket"] = True
        out["x-bgtasks-messages"] = messages or {"description": module_doc}
    return out


def _link_task_ids(paths: dict[str, dict[str, Any]]) -> None:
    """OpenAPI links from each reply that creates a task (a ``Task`` from a path with
    no id in it) to every operation on ``{task_id}``: how a client, or a stateful fuzzer,
    goes from a new task to its log, result, cancel and delete."""
    targets = [op["operationId"] for path, item in paths.items() if "{task_id}" in path
               for method, op in item.items() if method in METHODS]
    links = {target: {"operationId": target, "parameters": {"task_id": "$response.body#/id"}}
             for target in targets}
    for path, item in paths.items():
        if "{" in path:
            continue
        for method, op in item.items():
            if method not in METHODS:
                continue
            for code, reply in op["responses"].items():
                schema = reply.get("content", {}).get("application/json", {}).get("schema")
                if code.startswith("2") and schema == _schema("Task"):
                    op["responses"][code] = {**reply, "links": links}


def build(routes: Iterable[tuple[str, type[RequestHandler]]], prefix: str,
          server_url: str) -> dict[str, Any]:
    """The document for ``routes`` (regexes starting with ``prefix``), served at ``server_url``."""
    paths: dict[str, dict[str, Any]] = {}
    for pattern, handler in routes:
        template, groups = path_template(pattern, prefix)
        item = paths.setdefault(template, {})
        if groups:
            item["parameters"] = [{"name": name, "in": "path", "required": True,
                                   "schema": {"type": "string", "pattern": f"^{regex}$"}}
                                  for name, regex in groups.items()]
        for method in implemented_methods(handler):
            item[method] = _operation(template, method, handler)
    _link_task_ids(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "jupyter-bgtasks", "version": __version__,
                 "description": "Background tasks for Jupyter: the REST API of the task engine."},
        "servers": [{"url": server_url}],
        "security": [{"jupyterToken": []}, {"kernelSecret": []}],
        "paths": paths,
        "components": _components(),
    }
