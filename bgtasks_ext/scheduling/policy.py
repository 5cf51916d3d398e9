"""What a schedule does at a moment: the one rule for misfire and overlap.

Pure functions of the schedule record (its trigger, ``last_fired_at``, ``queued_for``),
the time, and whether its previous run is still live. The scheduler loop calls
:func:`decide` when it wakes (at ``next_fire_at``, when a run of the schedule ends,
and once at start after downtime), starts the run the decision names, and stores
:func:`advance`'s record. Nothing else decides whether a fire time runs.

The rules:

- what is due is the latest fire time after ``last_fired_at`` and at or before now;
  earlier ones after ``last_fired_at`` were missed. One wake-up starts at most one run.
- ``misfire = coalesce``: the latest due time runs, the missed ones with it (one run).
  ``misfire = skip``: the latest due time runs only when it is on time (at most
  :data:`GRACE` late); after downtime or a long stall none runs, and the schedule goes
  on with its next fire time.
- ``overlap = allow``: the run starts. Otherwise, when the previous run is live,
  ``skip`` drops it and ``queue`` holds it (``queued_for``) until that run ends; a newer
  due time replaces a held one, so at most one waits. A held run is not a misfire: it
  starts when the previous one ends, however late.
- a disabled schedule does nothing and holds nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

from ..core.schedules import Misfire, Overlap, Schedule
from .triggers import Trigger, trigger_for

GRACE = 1.0
"""Seconds a fire time may be late and still count as on time (``misfire = skip``)."""


class Why(str, Enum):
    """Why a decision is what it is (for logs and tests)."""

    NOT_DUE = "not_due"
    """No fire time after ``last_fired_at`` has come yet."""
    ON_TIME = "on_time"
    """One fire time came: its run starts."""
    COALESCED = "coalesced"
    """Several fire times came (a stall, downtime): one run starts, for the latest."""
    MISFIRED = "misfired"
    """``misfire = skip`` and the due time is more than :data:`GRACE` late: none runs."""
    OVERLAP_SKIPPED = "overlap_skipped"
    """``overlap = skip`` and the previous run is live: this fire time is dropped."""
    QUEUED = "queued"
    """``overlap = queue`` and the previous run is live: held until it ends."""
    FROM_QUEUE = "from_queue"
    """The previous run ended: the held run starts."""
    DISABLED = "disabled"
    """The schedule is disabled: nothing fires."""
    ENDED = "ended"
    """Nothing is due and no fire time is left (after ``end_at``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    why: Why
    start: float | None
    """The due time (``scheduled_for``) of the run to start now, or ``None``."""
    queued_for: float | None
    """A due time held until the live run ends (``overlap = queue``)."""
    last_fired_at: float | None
    """Fire times up to here are dealt with."""
    next_fire_at: float | None
    """When to wake for the next fire time (``None``: none left, or disabled). A held
    run is started by its previous run's end, not by a time."""


def decide(schedule: Schedule, now: float, live: bool, *, grace: float = GRACE,
           trigger: Trigger | None = None) -> Decision:
    """What ``schedule`` does at ``now``; ``live``: a run it made is still live.
    ``trigger``: the schedule's, when the caller keeps it (else built here)."""
    since = schedule.last_fired_at
    if not schedule.enabled:
        return Decision(Why.DISABLED, None, None, since, None)
    trig = trigger or trigger_for(schedule)
    latest = trig.last_until(now)
    if latest is not None and since is not None and latest <= since:
        latest = None
    fired = since if latest is None else latest
    # A clock that stepped back must not fire again what was dealt with.
    next_fire_at = trig.next_after(now if fired is None else max(now, fired))

    why = Why.NOT_DUE
    due: float | None = None
    if latest is not None:
        first = trig.next_after(-math.inf if since is None else since)
        missed = first is not None and first < latest
        if schedule.misfire is Misfire.SKIP and now - latest > grace:
            why = Why.MISFIRED
        else:
            why, due = (Why.COALESCED if missed else Why.ON_TIME), latest
    held = schedule.queued_for
    if due is None and held is not None:
        why, due = Why.FROM_QUEUE, held
    elif due is None and next_fire_at is None:
        why = Why.ENDED

    if due is None or not live or schedule.overlap is Overlap.ALLOW:
        return Decision(why, due, None, fired, next_fire_at)
    if schedule.overlap is Overlap.QUEUE:
        return Decision(Why.QUEUED, None, due, fired, next_fire_at)
    # overlap = skip: a held run cannot exist (only queue holds), this time is dropped.
    return Decision(Why.OVERLAP_SKIPPED, None, None, fired, next_fire_at)


def advance(schedule: Schedule, decision: Decision, run_id: str | None = None) -> Schedule:
    """``schedule`` once ``decision`` is carried out (``run_id``: the task started for
    ``decision.start``)."""
    return replace(
        schedule,
        last_fired_at=decision.last_fired_at,
        next_fire_at=decision.next_fire_at,
        queued_for=decision.queued_for,
        last_run_id=run_id if run_id is not None else schedule.last_run_id,
    )
