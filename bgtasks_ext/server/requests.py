"""What clients send: the REST request bodies and query strings, parsed strictly.

Bodies are validated with pydantic so every error names its field (400 via the one
error map in :mod:`.handlers`). Only the shape is checked here; what the engine knows
(kinds and their parameters, where a task can run) is checked by the engine, for
every caller alike. The replies are documented in :mod:`.replies`."""

from __future__ import annotations

import base64
import binascii
import os
import re
from datetime import datetime, timezone
from typing import Annotated, Any, Callable, Literal, TypeVar

import pydantic
from pydantic_core import PydanticCustomError

from ..core.errors import InvalidInput
from ..core.models import MESSAGE_LIMIT, Origin, Scope, TaskError, TaskFilter, TaskSpec
from ..core.notes import NOTE_LIMIT, note_problem
from ..core.ports import Outcome, OutcomeStatus
from ..core.schedules import ScheduleSpec
from ..core.states import Category, State
from ..store.codec import MAX_LIMIT

M = TypeVar("M", bound=pydantic.BaseModel)

_STRICT = pydantic.ConfigDict(extra="forbid", strict=True)
"""Bodies are parsed as JSON in strict mode: a value is taken only in the JSON type the
schema documents (no ``"3"`` for 3, no ``true`` for 1.0), so what the OpenAPI document
promises is exactly what is accepted."""

RUN_ON_MAX = 1e11
"""Seconds since 1970 beyond year 5138: surely milliseconds, so refused."""
_ISO_START = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(value: str | None) -> str | None:
    """A name is one line of text: no control characters (a terminal escape, a NUL, a
    newline would show as boxes, or worse, in the panel and in logs)."""
    if value is not None and _CONTROL.search(value):
        raise PydanticCustomError("name", "must be one line of text, without control characters")
    return value


Name = Annotated[str | None, pydantic.AfterValidator(_one_line)]


def _base64(value: str | None) -> bytes | None:
    """Standard base64 (with padding) to bytes; the server never looks inside them."""
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("base64", "must be standard base64 (RFC 4648, padded)") from None


Base64 = Annotated[str | None, pydantic.AfterValidator(_base64)]


class OriginIn(pydantic.BaseModel):
    # Capped: the origin is copied into every listing and snapshot of the task.
    model_config = _STRICT
    kernel_id: Annotated[str | None, pydantic.Field(max_length=200)] = None
    path: Annotated[str | None, pydantic.Field(max_length=4096)] = None


class CreateTask(pydantic.BaseModel):
    """Body of ``POST tasks``."""

    model_config = _STRICT
    kind: str = pydantic.Field(min_length=1)
    params: dict[str, Any] = pydantic.Field(default_factory=dict)
    name: Name = pydantic.Field(None, max_length=200)
    key: str | None = pydantic.Field(None, min_length=1, max_length=200)
    executor: str | None = None
    scope: Literal["server", "kernel"] = "server"
    # Lax on the datetime member only: after the check below it holds an ISO string,
    # which strict mode would refuse once a validator has seen it.
    run_on: Annotated[datetime, pydantic.Strict(False)] | Annotated[
        float, pydantic.Field(ge=0, lt=RUN_ON_MAX)
    ] | None = pydantic.Field(
        None, description="When to start: an ISO 8601 time (UTC unless it says), or seconds "
        "since 1970."
    )
    timeout: float | None = pydantic.Field(None, gt=0, allow_inf_nan=False)
    retries: int = pydantic.Field(0, ge=0, le=100)
    origin: OriginIn = pydantic.Field(default_factory=OriginIn)
    payload: Base64 = pydantic.Field(
        None, description="Opaque input bytes, standard base64 (the `code` kind's pickled "
        "job). Stored and handed to the worker; the server never loads them."
    )
    python: str | None = pydantic.Field(
        None, description="Absolute path of the interpreter a process worker runs the task "
        "under (a kernel sends its `sys.executable`)."
    )
    cwd: str | None = pydantic.Field(
        None, description="Absolute path of an existing directory: the task's working directory."
    )

    @pydantic.field_validator("python")
    @classmethod
    def _python(cls, value: str | None) -> str | None:
        if value is not None and not (
            os.path.isabs(value) and os.path.isfile(value) and os.access(value, os.X_OK)
        ):
            raise PydanticCustomError("python", "must be the absolute path of an executable file")
        return value

    @pydantic.field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str | None) -> str | None:
        if value is not None and not (os.path.isabs(value) and os.path.isdir(value)):
            raise PydanticCustomError("cwd", "must be the absolute path of an existing directory")
        return value

    @pydantic.field_validator("run_on", mode="before")
    @classmethod
    def _when(cls, value: Any) -> Any:
        # One message for every wrong shape, rather than one per union member; and
        # pydantic would read a digit string ("5") as a time.
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is None or (number and 0 <= value < RUN_ON_MAX) or (
            isinstance(value, str) and _ISO_START.match(value)
        ):
            return value
        raise PydanticCustomError("run_on", "must be an ISO 8601 time or seconds since 1970")


def _first_error(exc: pydantic.ValidationError, prefix: str = "") -> InvalidInput:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith(("function-", "float", "datetime"))]
    field = ".".join(loc) or prefix or "body"
    return InvalidInput(field, err.get("msg", "invalid value"))


def _parse(model: type[M], body: bytes | str) -> M:
    """A JSON body as ``model``, or :class:`InvalidInput` naming the field at fault."""
    try:
        return model.model_validate_json(body or b"null")
    except pydantic.ValidationError as exc:
        raise _first_error(exc) from None


def parse_create(body: bytes | str, owner: str, payload: bytes | bytearray | None = None) -> TaskSpec:
    """The spec of a ``POST tasks`` body (raw JSON), or :class:`InvalidInput` naming the
    field. ``payload``: raw bytes sent beside the JSON (a multipart body's ``payload``)."""
    req = _parse(CreateTask, body)
    if payload is not None:
        if req.payload is not None:
            raise InvalidInput("payload", "is sent twice: as base64 in the spec and as a part")
        req.payload = payload  # type: ignore[assignment]  # raw bytes, as base64 decodes to
    run_on: float | None
    if isinstance(req.run_on, datetime):
        when = req.run_on if req.run_on.tzinfo else req.run_on.replace(tzinfo=timezone.utc)
        run_on = when.timestamp()
    else:
        run_on = req.run_on
    return TaskSpec(
        kind=req.kind,
        params=req.params,
        name=req.name,
        key=req.key,
        executor=req.executor,
        scope=Scope(req.scope),
        run_on=run_on,
        timeout=req.timeout,
        retries=req.retries,
        owner=owner,
        origin=Origin(req.origin.kernel_id, req.origin.path),
        payload=req.payload,  # type: ignore[arg-type]  # bytes once validated
        python=req.python,
        cwd=req.cwd,
    )


# -- the kernel executor's reports (a kernel running one of its tasks) ---------------
class ProgressIn(pydantic.BaseModel):
    """Body of ``POST tasks/{id}/progress``."""

    model_config = _STRICT
    current: float = pydantic.Field(allow_inf_nan=False)
    total: float | None = pydantic.Field(None, allow_inf_nan=False)
    message: str | None = pydantic.Field(None, max_length=MESSAGE_LIMIT)


class LogIn(pydantic.BaseModel):
    """Body of ``POST tasks/{id}/log``: text the task printed."""

    model_config = _STRICT
    text: str


class ErrorIn(pydantic.BaseModel):
    model_config = _STRICT
    type: str
    message: str
    traceback: str = ""
    reason: str | None = pydantic.Field(None, max_length=40, description="Set by the runner when "
                                        "it decided the failure (`result`: not picklable).")
    data: dict[str, Any] | None = pydantic.Field(None, description="What the failed or stopped "
                                                 "code said it left (an exception's `bgtasks_data`).")


class DoneIn(pydantic.BaseModel):
    """Body of ``POST tasks/{id}/done``: how the kernel's run ended."""

    model_config = _STRICT
    status: Literal["finished", "failed", "cancelled"]
    preview: Any = pydantic.Field(None, description="A small JSON view of the result.")
    error: ErrorIn | None = pydantic.Field(None, description="Why it failed (status `failed`).")
    result: Base64 = pydantic.Field(
        None, description="The pickled result, standard base64; the server never loads it."
    )


def parse_progress(body: bytes | str) -> ProgressIn:
    return _parse(ProgressIn, body)


def parse_log(body: bytes | str) -> str:
    return _parse(LogIn, body).text


def parse_done(body: bytes | str) -> Outcome:
    req = _parse(DoneIn, body)
    error = None
    if req.error is not None:
        error = TaskError(req.error.type, req.error.message, req.error.traceback, req.error.reason,
                          req.error.data)
    return Outcome(OutcomeStatus(req.status), result=req.result, preview=req.preview,  # type: ignore[arg-type]
                   error=error)


# -- a task's note (the notebook's word about it) ------------------------------------
class NoteIn(pydantic.BaseModel):
    """Body of ``PUT tasks/{id}/note``."""

    model_config = _STRICT
    note: Annotated[str | None, pydantic.Field(max_length=NOTE_LIMIT)] = pydantic.Field(
        description="What the notebook says about the task (`outputs set: a, b`): printable "
        "text, tabs and newlines. `null` or `\"\"` clears it.")

    @pydantic.field_validator("note")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        problem = note_problem(value)
        if problem is not None:
            raise PydanticCustomError("note", problem)
        return value


def parse_note(body: bytes | str) -> str | None:
    """The note of a ``PUT tasks/{id}/note`` body; ``None`` clears it."""
    return _parse(NoteIn, body).note or None


# -- query parameters ----------------------------------------------------------------
def flag(name: str, raw: str | None) -> bool:
    """A query parameter that is ``true`` or ``false`` (absent: false), nothing else."""
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise InvalidInput(name, f"must be true or false, not {raw[:40]!r}")


MAX_OFFSET = 2**63 - 1
"""The largest log offset: SQLite integers are 64-bit, and a larger one is a 500 there."""
_DIGITS = re.compile(r"[0-9]+")


def whole_number(name: str, raw: str, maximum: int = MAX_OFFSET, minimum: int = 0) -> int:
    """A query parameter as a whole number from ``minimum`` to ``maximum``: ASCII digits
    only (``int`` would also take ``" 5"``, ``"1_0"`` and ``"-1"``). One rule and one
    message for every value outside it, negative or too large alike."""
    if not _DIGITS.fullmatch(raw) or len(raw) > 19 or not minimum <= int(raw) <= maximum:
        raise InvalidInput(name, f"must be a whole number from {minimum} to {maximum}, "
                           f"not {raw[:40]!r}")
    return int(raw)


def parse_list_query(arg: Callable[[str, Any], Any]) -> tuple[TaskFilter, int, str | None]:
    """``state``, ``category``, ``kind``, ``key``, ``kernel_id``, ``limit``, ``cursor``."""
    state = arg("state", None) or None
    category = arg("category", None) or None
    if state is not None and state not in State._value2member_map_:
        raise InvalidInput("state", f"{state!r} is not one of {[s.value for s in State]}")
    if category is not None and category not in Category._value2member_map_:
        raise InvalidInput("category", f"{category!r} is not one of {[c.value for c in Category]}")
    limit = whole_number("limit", arg("limit", "100"), maximum=MAX_LIMIT, minimum=1)
    flt = TaskFilter.of(
        state=state,
        category=category,
        kind=arg("kind", None) or None,
        key=arg("key", None) or None,
        kernel_id=arg("kernel_id", None) or None,
        schedule_id=arg("schedule_id", None) or None,
    )
    return flt, limit, arg("cursor", None) or None


# -- schedules -------------------------------------------------------------------------
When = Annotated[datetime, pydantic.Strict(False)] | Annotated[float, pydantic.Field(ge=0, lt=RUN_ON_MAX)]
"""A point in time: an ISO 8601 time (UTC unless it says), or seconds since 1970."""


def _when_or_none(name: str, value: Any) -> Any:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None or (number and 0 <= value < RUN_ON_MAX) or (
        isinstance(value, str) and _ISO_START.match(value)
    ):
        return value
    raise PydanticCustomError(name, "must be an ISO 8601 time or seconds since 1970")


def _seconds(value: datetime | float | None) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    return value


class ScheduleFields(pydantic.BaseModel):
    """What a schedule is made of (``POST schedules``); every field of ``PATCH``."""

    model_config = _STRICT
    name: Name = pydantic.Field(None, max_length=200)
    params: dict[str, Any] | None = None
    executor: str | None = None
    timeout: float | None = pydantic.Field(None, gt=0, allow_inf_nan=False)
    retries: int | None = pydantic.Field(None, ge=0, le=100)
    every: float | None = pydantic.Field(
        None, allow_inf_nan=False, description="Seconds between runs (>= 0.1); or give cron.")
    cron: str | None = pydantic.Field(
        None, max_length=200, description="5-field cron expression, e.g. `0 9 * * 1-5`.")
    timezone: str | None = pydantic.Field(
        None, max_length=100, description="IANA time zone of `cron` (default UTC).")
    start_at: When | None = pydantic.Field(None, description="No run before this time.")
    end_at: When | None = pydantic.Field(None, description="No run after this time.")
    enabled: bool | None = None
    overlap: Literal["skip", "queue", "allow"] | None = pydantic.Field(
        None, description="While a run is live at a fire time: skip it, queue one, or allow both.")
    misfire: Literal["coalesce", "skip"] | None = pydantic.Field(
        None, description="Fire times missed while no server ran: one run, or none.")

    @pydantic.field_validator("start_at", "end_at", mode="before")
    @classmethod
    def _times(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        return _when_or_none(str(info.field_name), value)


class CreateSchedule(ScheduleFields):
    """Body of ``POST schedules``."""

    kind: str = pydantic.Field(min_length=1)
    origin: OriginIn = pydantic.Field(default_factory=OriginIn)
    payload: Base64 = pydantic.Field(
        None, description="Opaque input bytes (the `code` kind's pickled job), frozen at creation.")
    python: str | None = pydantic.Field(None, description="As for a task.")
    cwd: str | None = pydantic.Field(None, description="As for a task.")

    _python = pydantic.field_validator("python")(CreateTask._python.__func__)  # type: ignore[attr-defined]
    _cwd = pydantic.field_validator("cwd")(CreateTask._cwd.__func__)  # type: ignore[attr-defined]


def parse_create_schedule(body: bytes | str, owner: str) -> ScheduleSpec:
    """A ``POST schedules`` body as a :class:`~bgtasks_ext.core.schedules.ScheduleSpec`
    (its meaning, e.g. every XOR cron, is checked by ``make_schedule``)."""
    req = _parse(CreateSchedule, body)
    fields: dict[str, Any] = {k: v for k, v in {
        "name": req.name, "params": req.params, "executor": req.executor, "timeout": req.timeout,
        "retries": req.retries, "every": req.every, "cron": req.cron, "timezone": req.timezone,
        "start_at": _seconds(req.start_at), "end_at": _seconds(req.end_at),
        "enabled": req.enabled, "overlap": req.overlap, "misfire": req.misfire,
    }.items() if v is not None}
    return ScheduleSpec(kind=req.kind, owner=owner, origin=Origin(req.origin.kernel_id, req.origin.path),
                        payload=req.payload, python=req.python, cwd=req.cwd,  # type: ignore[arg-type]
                        **fields)


def parse_patch_schedule(body: bytes | str) -> dict[str, Any]:
    """A ``PATCH schedules/{id}`` body: the fields it gives (``null`` clears an optional
    one, e.g. ``"end_at": null``), shapes checked; their meaning is ``patch_schedule``'s."""
    req = _parse(ScheduleFields, body)
    changes = {name: getattr(req, name) for name in req.model_fields_set}
    for name in ("start_at", "end_at"):
        if name in changes:
            changes[name] = _seconds(changes[name])
    for name in ("params", "retries", "enabled", "overlap", "misfire"):
        if name in changes and changes[name] is None:
            raise InvalidInput(name, "cannot be null")
    if not changes:
        raise InvalidInput("body", "names no field to change")
    return changes
