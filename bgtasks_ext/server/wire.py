"""The REST request shapes, validated with pydantic so every error names its field."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Literal

import pydantic

from ..core.errors import InvalidInput
from ..core.models import Origin, Scope, TaskFilter, TaskSpec
from ..core.states import Category, State

_STRICT = pydantic.ConfigDict(extra="forbid", strict=False)


class OriginIn(pydantic.BaseModel):
    model_config = _STRICT
    kernel_id: str | None = None
    path: str | None = None


class CreateTask(pydantic.BaseModel):
    """Body of ``POST tasks``."""

    model_config = _STRICT
    kind: str = pydantic.Field(min_length=1)
    params: dict[str, Any] = pydantic.Field(default_factory=dict)
    name: str | None = pydantic.Field(None, max_length=200)
    key: str | None = pydantic.Field(None, min_length=1, max_length=200)
    executor: str | None = None
    scope: Literal["server", "kernel"] = "server"
    run_on: datetime | float | None = None
    timeout: float | None = pydantic.Field(None, gt=0, allow_inf_nan=False)
    retries: int = pydantic.Field(0, ge=0, le=100)
    origin: OriginIn = pydantic.Field(default_factory=OriginIn)

    @pydantic.field_validator("run_on")
    @classmethod
    def _aware(cls, value: datetime | float | None) -> datetime | float | None:
        if isinstance(value, float) and not (0 <= value < 1e11):
            raise ValueError("must be an ISO 8601 time or seconds since 1970")
        return value


def _first_error(exc: pydantic.ValidationError, prefix: str = "") -> InvalidInput:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith(("function-", "float", "datetime"))]
    field = ".".join(loc) or prefix or "body"
    return InvalidInput(field, err.get("msg", "invalid value"))


def parse_create(body: Any, owner: str) -> TaskSpec:
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    try:
        req = CreateTask.model_validate(body)
    except pydantic.ValidationError as exc:
        raise _first_error(exc) from None
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
    )


def parse_list_query(arg: Callable[[str, Any], Any]) -> tuple[TaskFilter, int, str | None]:
    """``state``, ``category``, ``kind``, ``key``, ``kernel_id``, ``limit``, ``cursor``."""
    state = arg("state", None) or None
    category = arg("category", None) or None
    if state is not None and state not in State._value2member_map_:
        raise InvalidInput("state", f"{state!r} is not one of {[s.value for s in State]}")
    if category is not None and category not in Category._value2member_map_:
        raise InvalidInput("category", f"{category!r} is not one of {[c.value for c in Category]}")
    raw_limit = arg("limit", "100")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise InvalidInput("limit", f"must be a whole number, not {raw_limit!r}") from None
    flt = TaskFilter.of(
        state=state,
        category=category,
        kind=arg("kind", None) or None,
        key=arg("key", None) or None,
        kernel_id=arg("kernel_id", None) or None,
        schedule_id=arg("schedule_id", None) or None,
    )
    return flt, limit, arg("cursor", None) or None
