"""Schedules: recurring definitions that create tasks (SPEC §2).

What a caller asks for is a :class:`ScheduleSpec`; :func:`make_schedule` validates it
into a :class:`Schedule`, the record the store keeps and the server serves. A change
(REST ``PATCH``) goes through :func:`patch_schedule`, which validates the whole result,
so a refused change leaves the stored record as it was.

Pure: no clock (``now`` is passed in), no I/O beyond reading the time-zone database
for a zone's name and parsing a cron expression with ``cronsim`` (both imported lazily).
When a schedule fires, and what overlap and misfire mean, is decided in
``scheduling/`` (triggers and policy); this module only says what a valid schedule is.

A schedule's kind, parameters, executor, timeout and retries are those of the tasks
it makes, so they are checked by the same admission rules as any task: the caller
passes that check in (:data:`TaskCheck`), nothing here copies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Mapping

from .errors import InvalidInput
from .models import Origin, Scope, TaskSpec, iso, new_id

MIN_EVERY = 0.1
"""The shortest interval, in seconds (SPEC §2)."""
MAX_TIME = 253_402_300_799.0
"""9999-12-31T23:59:59Z, the last time ISO 8601 (and ``datetime``) can write: no time
or interval a schedule holds may go past it, so no reply can fail to serialise."""


class Overlap(str, Enum):
    """What happens when a fire time comes while the schedule's previous run is live."""

    SKIP = "skip"
    """The default: that fire time is dropped; never two runs of one schedule at once."""
    QUEUE = "queue"
    """The run waits and starts once the previous one ends; at most one waits (later
    fire times while one waits replace it, for the latest due time)."""
    ALLOW = "allow"
    """The run starts anyway: runs of one schedule may overlap."""


class Misfire(str, Enum):
    """What happens to fire times missed while no server fired (downtime, a stall)."""

    COALESCE = "coalesce"
    """The default: all the missed fire times become one run, for the latest of them."""
    SKIP = "skip"
    """None of them runs; the schedule goes on with its next fire time."""


TaskCheck = Callable[[TaskSpec], Mapping[str, Any]]
"""The admission check of the tasks a schedule will make: given the :class:`TaskSpec`
of one run, raise :class:`InvalidInput` naming the field (``params.<name>``,
``executor``, ``timeout``, ``retries``...) or return the validated parameters. The
engine passes ``lambda spec: admit(spec, ...).params``; pure tests a stand-in."""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a caller asks for: the task each run makes, and when runs happen.

    Exactly one of ``every`` (seconds) and ``cron`` (five fields, read in
    ``timezone``, UTC when unset). Times are seconds since 1970 (UTC)."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    executor: str | None = None
    timeout: float | None = None
    retries: int = 0
    every: float | None = None
    cron: str | None = None
    timezone: str | None = None
    start_at: float | None = None
    end_at: float | None = None
    enabled: bool = True
    overlap: Overlap | str = Overlap.SKIP
    misfire: Misfire | str = Misfire.COALESCE
    owner: str = ""
    origin: Origin = Origin()
    payload: bytes | None = None
    """Input bytes frozen at creation (a ``%%bgtask --every`` cell); every run gets them.
    Stored beside the record, never loaded by the server (as for tasks)."""
    python: str | None = None
    cwd: str | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A validated schedule, as stored and served. Changed only through
    :func:`patch_schedule` (a user's change) and ``scheduling.policy`` (firing)."""

    id: str
    name: str
    kind: str
    params: Mapping[str, Any]
    created_at: float
    every: float | None = None
    cron: str | None = None
    timezone: str | None = None
    start_at: float | None = None
    end_at: float | None = None
    enabled: bool = True
    overlap: Overlap = Overlap.SKIP
    misfire: Misfire = Misfire.COALESCE
    executor: str | None = None
    """``None``: the engine's default executor when a run is made."""
    timeout: float | None = None
    retries: int = 0
    owner: str = ""
    origin: Origin = Origin()
    python: str | None = None
    cwd: str | None = None
    has_payload: bool = False
    # Kept by the scheduler:
    next_fire_at: float | None = None
    """When the scheduler will next look at it (``None``: not computed yet, or never again)."""
    last_fired_at: float | None = None
    """The latest fire time dealt with (run, queued or dropped): nothing at or before it
    fires (again). Set to the time of a change of trigger or of enabling, so a change
    never fires for times before it."""
    last_run_id: str | None = None
    queued_for: float | None = None
    """The due time of a run held until the live one ends (``overlap = queue``)."""

    def to_json(self) -> dict[str, Any]:
        """The wire form (times ISO 8601 UTC). The server adds ``next_runs`` and
        ``last_run``, which need the trigger and the store."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "params": dict(self.params),
            "every": self.every,
            "cron": self.cron,
            "timezone": self.timezone,
            "start_at": iso(self.start_at),
            "end_at": iso(self.end_at),
            "enabled": self.enabled,
            "overlap": self.overlap.value,
            "misfire": self.misfire.value,
            "executor": self.executor,
            "timeout": self.timeout,
            "retries": self.retries,
            "owner": self.owner,
            "origin": self.origin.to_json(),
            "created_at": iso(self.created_at),
            "next_fire_at": iso(self.next_fire_at),
            "last_fired_at": iso(self.last_fired_at),
            "last_run_id": self.last_run_id,
        }

    def to_record(self) -> dict[str, Any]:
        """The store's form: every field, times as seconds, enums as strings."""
        rec = {f.name: getattr(self, f.name) for f in fields(self)}
        rec["params"] = dict(self.params)
        rec["overlap"] = self.overlap.value
        rec["misfire"] = self.misfire.value
        rec["origin"] = self.origin.to_json()
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Schedule:
        """Rebuild a schedule from :meth:`to_record` (or :meth:`to_json`: ISO times are
        read back). Trusted input (the store's own): no validation beyond the types."""
        o = rec.get("origin") or {}
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {k: v for k, v in rec.items() if k in known}
        for name in _TIME_FIELDS:
            values[name] = _seconds(values.get(name))
        values["params"] = dict(rec.get("params") or {})
        values["overlap"] = Overlap(rec.get("overlap", Overlap.SKIP.value))
        values["misfire"] = Misfire(rec.get("misfire", Misfire.COALESCE.value))
        values["origin"] = Origin(o.get("kernel_id"), o.get("path"), o.get("retry_of"))
        return cls(**values)


_TIME_FIELDS = ("created_at", "start_at", "end_at", "next_fire_at", "last_fired_at", "queued_for")
TRIGGER_FIELDS = frozenset({"every", "cron", "timezone", "start_at", "end_at"})
"""Fields that change when a schedule fires: a change resets the scheduler's state."""
PATCHABLE = TRIGGER_FIELDS | {"name", "params", "executor", "timeout", "retries", "enabled",
                              "overlap", "misfire"}
"""What ``PATCH schedules/{id}`` may change. Kind, owner, origin and the frozen inputs
stay: a different task is a different schedule."""


def _seconds(value: Any) -> float | None:
    if value is None or isinstance(value, (int, float)):
        return value
    text = str(value)
    when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _number(value: Any) -> bool:
    """A finite real number, as JSON has them: ``True`` is not 1."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def check_every(every: Any) -> float:
    if not _number(every):
        raise InvalidInput("every", "must be a number of seconds")
    if every < MIN_EVERY:
        raise InvalidInput("every", f"must be at least {MIN_EVERY:g} seconds")
    if every > MAX_TIME:
        raise InvalidInput("every", "must be a number of seconds before the year 9999")
    return float(every)


def check_cron(expr: Any) -> str:
    """A five-field cron expression, as cronsim (Debian cron's rules) reads it."""
    if not isinstance(expr, str):
        raise InvalidInput("cron", "must be a string of five fields")
    text = " ".join(expr.split())
    if len(text.split(" ")) != 5:
        raise InvalidInput("cron", f"{expr!r} must have five fields: minute hour "
                           "day-of-month month day-of-week")
    from cronsim import CronSim, CronSimError

    try:
        next(CronSim(text, datetime(2000, 1, 1, tzinfo=timezone.utc)))
    except CronSimError as exc:
        raise InvalidInput("cron", f"{expr!r}: {exc}") from None
    except StopIteration:
        raise InvalidInput("cron", f"{expr!r} never fires") from None
    return text


def check_timezone(name: Any) -> str | None:
    """An IANA zone name (``Europe/Berlin``), or ``None`` for UTC."""
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise InvalidInput("timezone", "must be an IANA time-zone name such as 'Europe/Berlin'")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput("timezone", f"unknown time zone {name!r}") from None
    return name


def _time(field_name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _number(value) or not 0 <= value <= MAX_TIME:
        raise InvalidInput(field_name, "must be a time (seconds since 1970, before 9999)")
    return float(value)


def _enum(enum: type[Any], field_name: str, value: Any) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidInput(field_name, f"{value!r} is not one of {allowed}") from None


def check_end(end_at: float | None, now: float) -> None:
    """A new or changed ``end_at`` must be ahead: a schedule that ended already would
    never fire (an existing one may have ended, and keeps its other changes)."""
    if end_at is not None and end_at <= now:
        raise InvalidInput("end_at", "is in the past: the schedule would never fire")


def _task_spec(spec: ScheduleSpec) -> TaskSpec:
    return TaskSpec(
        kind=spec.kind, params=spec.params, name=spec.name, executor=spec.executor,
        scope=Scope.SERVER, timeout=spec.timeout, retries=spec.retries, owner=spec.owner,
        origin=spec.origin, payload=spec.payload, python=spec.python, cwd=spec.cwd,
    )


def make_schedule(spec: ScheduleSpec, now: float, check_task: TaskCheck, *,
                  ident: str | None = None) -> Schedule:
    """The schedule ``spec`` asks for, or :class:`InvalidInput` naming the field.
    ``ident``: keep this id (a change of an existing schedule)."""
    if (spec.every is None) == (spec.cron is None):
        which = "neither" if spec.every is None else "both"
        raise InvalidInput("every", f"give exactly one of every (seconds) or cron; got {which}")
    every = None if spec.every is None else check_every(spec.every)
    cron = None if spec.cron is None else check_cron(spec.cron)
    tz = check_timezone(spec.timezone)
    start_at = _time("start_at", spec.start_at)
    end_at = _time("end_at", spec.end_at)
    if end_at is not None:
        if start_at is not None and end_at <= start_at:
            raise InvalidInput("end_at", "must be after start_at")
        if ident is None:
            check_end(end_at, now)
    if not isinstance(spec.enabled, bool):
        raise InvalidInput("enabled", "must be true or false")
    overlap = _enum(Overlap, "overlap", spec.overlap)
    misfire = _enum(Misfire, "misfire", spec.misfire)
    if spec.name is not None and not isinstance(spec.name, str):
        raise InvalidInput("name", "must be a string")
    params = check_task(_task_spec(spec))
    return Schedule(
        id=ident or new_id(), name=spec.name or spec.kind, kind=spec.kind, params=dict(params),
        created_at=now, every=every, cron=cron, timezone=tz, start_at=start_at, end_at=end_at,
        enabled=spec.enabled, overlap=overlap, misfire=misfire, executor=spec.executor,
        timeout=spec.timeout, retries=spec.retries, owner=spec.owner, origin=spec.origin,
        python=spec.python, cwd=spec.cwd, has_payload=spec.payload is not None,
    )


def patch_schedule(schedule: Schedule, changes: Mapping[str, Any], now: float,
                   check_task: TaskCheck) -> Schedule:
    """``schedule`` with ``changes`` (a ``PATCH`` body) applied and validated as a whole;
    :class:`InvalidInput` naming the field otherwise (``schedule`` itself is untouched).

    Giving ``every`` clears ``cron`` unless the body gives both, and the other way round,
    so switching kinds of trigger takes one field. A change of trigger, or enabling,
    makes ``now`` the boundary: fire times before it are not "missed"."""
    for name in changes:
        if name not in PATCHABLE:
            raise InvalidInput(name, "cannot be changed: make a new schedule"
                               if name in _FIELD_NAMES else "unknown field")
    values = {name: getattr(schedule, name) for name in PATCHABLE}
    values.update(changes)
    if "every" in changes and "cron" not in changes:
        values["cron"] = None
    if "cron" in changes and "every" not in changes:
        values["every"] = None
    spec = ScheduleSpec(
        kind=schedule.kind, owner=schedule.owner, origin=schedule.origin,
        # The frozen bytes stay in the store; admission only asks whether there are any.
        payload=b"" if schedule.has_payload else None, python=schedule.python,
        cwd=schedule.cwd, **values,
    )
    fresh = make_schedule(spec, now, check_task, ident=schedule.id)
    if "end_at" in changes:
        check_end(fresh.end_at, now)
    trigger_changed = any(getattr(fresh, n) != getattr(schedule, n) for n in TRIGGER_FIELDS)
    enabled_now = fresh.enabled and not schedule.enabled
    restart = trigger_changed or enabled_now
    return replace(
        fresh, created_at=schedule.created_at, has_payload=schedule.has_payload,
        last_run_id=schedule.last_run_id,
        next_fire_at=None if restart or not fresh.enabled else schedule.next_fire_at,
        last_fired_at=max(now, schedule.last_fired_at or now) if restart
        else schedule.last_fired_at,
        queued_for=schedule.queued_for if fresh.enabled and not trigger_changed else None,
    )


_FIELD_NAMES = frozenset(f.name for f in fields(Schedule))


def run_spec(schedule: Schedule, payload: bytes | None = None,
             scheduled_for: float | None = None) -> TaskSpec:
    """The task one run of ``schedule`` asks for (``payload``: its frozen inputs, read
    from the store; ``scheduled_for``: the fire time it is for, which
    ``Engine.create_run`` also sets)."""
    return TaskSpec(
        kind=schedule.kind, params=schedule.params, name=schedule.name,
        executor=schedule.executor, scope=Scope.SERVER, timeout=schedule.timeout,
        retries=schedule.retries, owner=schedule.owner, origin=schedule.origin,
        schedule_id=schedule.id, scheduled_for=scheduled_for, payload=payload,
        python=schedule.python, cwd=schedule.cwd,
    )
