"""What the server sends: the REST reply shapes, for the OpenAPI document.

The models are not used to serialize (``Task.to_json`` is the fast path) but to
document the replies (:mod:`.openapi`), and tests hold ``to_json`` to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pydantic

from ..core.models import Scope
from ..core.states import Category, State


# -- replies: documentation of what the handlers send ---------------------------------
# Named ``...Out`` here, beside the core records; the document names them for what they
# are on the wire (``TaskOut`` is ``Task`` there: see openapi.py).
def _reply(title: str) -> pydantic.ConfigDict:
    return pydantic.ConfigDict(extra="forbid", title=title)


class ProgressOut(pydantic.BaseModel):
    model_config = _reply("Progress")
    current: float
    total: float | None
    fraction: float | None = pydantic.Field(ge=0, le=1)
    message: str


class TaskErrorOut(pydantic.BaseModel):
    """Why a task failed; ``reason`` is set when the engine decided it (``interrupted``,
    ``timeout``, ``worker_died``, ``input``)."""

    model_config = _reply("TaskError")
    type: str
    message: str
    traceback: str
    reason: str | None
    data: dict[str, Any] | None = pydantic.Field(
        None, description="What the task's code adds (a notebook job: `executed_copy`, `cell`).")


class OriginOut(pydantic.BaseModel):
    model_config = _reply("Origin")
    kernel_id: str | None
    path: str | None
    retry_of: str | None = pydantic.Field(
        description="The task this one runs again (`POST tasks/{id}/retry`); null otherwise.")


class TaskOut(pydantic.BaseModel):
    """A task, as ``Task.to_json`` writes it: every key always present, times ISO 8601 UTC."""

    model_config = _reply("Task")
    id: str
    name: str
    kind: str
    params: dict[str, Any]
    state: State
    category: Category
    progress: ProgressOut
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    run_on: datetime | None
    owner: str
    origin: OriginOut
    key: str | None
    scope: Scope
    executor: str
    schedule_id: str | None
    attempt: int = pydantic.Field(ge=1)
    retries: int = pydantic.Field(ge=0)
    timeout: float | None
    error: TaskErrorOut | None
    result_preview: Any
    note: str | None = pydantic.Field(
        description="What the notebook that launched the task says about it (`outputs set: "
        "a, b`), set with `PUT tasks/{id}/note`; null when none.")
    scheduled_for: datetime | None = pydantic.Field(
        description="For a schedule's run: the fire time it is for (its lateness is "
        "`started_at - scheduled_for`); null otherwise.")
    server_id: str | None = pydantic.Field(
        description="The server whose engine holds this task while it is live (several servers "
        "may share one store); null for a task no server has taken yet.")
    placement: str | None = pydantic.Field(
        description="Where its latest attempt runs or ran, for an executor with more than "
        "one place: the Dask worker's address (`tcp://host:port`) for `dask`; null otherwise.")


class ReservationOut(pydantic.BaseModel):
    """``POST tasks?check_only=true&reserve=true``: the id reserved for the task, to send
    as ``POST tasks?reserved=<id>`` within 10 minutes."""

    model_config = _reply("Reservation")
    id: str


class TaskPage(pydantic.BaseModel):
    """One page of ``GET tasks``, newest first; ``next_cursor`` is null on the last page."""

    model_config = _reply("TaskPage")
    tasks: list[TaskOut]
    next_cursor: str | None


class LogOut(pydantic.BaseModel):
    """Log text from ``offset``; ask again from ``next_offset`` for more."""

    model_config = _reply("Log")
    text: str
    offset: int = pydantic.Field(ge=0)
    next_offset: int = pydantic.Field(ge=0)


class ResultOut(pydantic.BaseModel):
    """A finished task's result: its JSON preview and the size of the pickled payload."""

    model_config = _reply("Result")
    id: str
    preview: Any
    size: int = pydantic.Field(ge=0)


class KindOut(pydantic.BaseModel):
    model_config = _reply("Kind")
    name: str
    title: str
    description: str
    schema_: dict[str, Any] = pydantic.Field(alias="schema", description="JSON Schema of `params`.")
    needs_payload: bool = pydantic.Field(
        description="A task of this kind carries input bytes only a kernel makes (`%%bgtask`, "
        "`submit()`); without them it is refused, except on an executor that runs in the kernel.")
    needs_kernel: bool = pydantic.Field(
        description="Only a kernel can launch it (it needs a payload or a kernel executor): "
        "forms that create tasks leave it out.")


class KindList(pydantic.BaseModel):
    model_config = _reply("KindList")
    kinds: list[KindOut]


def _no_default(schema: dict[str, Any]) -> None:
    """For a key that is absent when unset: no ``"default": null`` in its schema."""
    schema.pop("default", None)


class ErrorOut(pydantic.BaseModel):
    """Every error reply. Jupyter's own refusals (403) add ``reason``, hence extra keys."""

    model_config = pydantic.ConfigDict(extra="allow", title="Error")
    message: str
    field: str = pydantic.Field(  # type: ignore[assignment]
        None,
        description="The request field at fault, on a 400 (absent otherwise).",
        json_schema_extra=_no_default,
    )
    reserved: bool = pydantic.Field(  # type: ignore[assignment]
        None,
        description="On a 404 of GET tasks/{id}: the id is reserved here and its task is "
                    "still being sent (absent otherwise).",
        json_schema_extra=_no_default,
    )


class LastRunOut(pydantic.BaseModel):
    model_config = _reply("LastRun")
    id: str
    state: State
    started_at: datetime | None


class ScheduleOut(pydantic.BaseModel):
    """A recurring definition that creates tasks (``GET schedules/{id}``)."""

    model_config = _reply("Schedule")
    id: str
    name: str
    kind: str
    params: dict[str, Any]
    every: float | None = pydantic.Field(description="Seconds between fire times; or `cron`.")
    cron: str | None = pydantic.Field(description="5-field cron expression; or `every`.")
    timezone: str | None = pydantic.Field(description="IANA zone of `cron` (null: UTC).")
    start_at: datetime | None
    end_at: datetime | None
    enabled: bool
    overlap: Literal["skip", "queue", "allow"]
    misfire: Literal["coalesce", "skip"]
    executor: str | None
    timeout: float | None
    retries: int = pydantic.Field(ge=0)
    owner: str
    origin: OriginOut
    created_at: datetime
    next_fire_at: datetime | None = pydantic.Field(
        description="The next fire time the scheduler sleeps to (null: disabled or ended).")
    last_fired_at: datetime | None
    last_run_id: str | None
    next_runs: list[datetime] = pydantic.Field(description="The next 5 fire times (none while "
                                               "disabled).")
    last_run: LastRunOut | None = pydantic.Field(
        description="Its last run: id, state, start (null before the first, or once pruned).")


class ScheduleList(pydantic.BaseModel):
    model_config = _reply("ScheduleList")
    schedules: list[ScheduleOut]


class SchedulePreviewOut(pydantic.BaseModel):
    """``POST schedules?check_only=true``: what the schedule would do, nothing stored."""

    model_config = _reply("SchedulePreview")
    next_runs: list[datetime]
