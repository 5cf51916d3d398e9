"""When a schedule fires: interval and cron triggers.

A trigger is a set of fire times (seconds since 1970), asked two ways: the first
one after a time (to sleep to it; the REST reply shows the next five) and the latest
one at or before a time (what is due now, after a stall or downtime). Both are
computed, never accumulated, so firing a schedule a million times does not drift.

The window: fire times are at or after ``begin`` and at or before ``end_at``.
``begin`` is ``start_at`` when given (and not before the schedule existed); without it,
the first fire time comes after the creation: one period after it for an interval (as
in APScheduler 3), the next matching second for cron. So creating a schedule never
starts a run at once unless ``start_at`` says so.

**Interval** (``every``): ``anchor + k * every`` for whole ``k``, the anchor being
``start_at`` or ``created_at``.

**Cron** (``cron`` + ``timezone``, UTC when unset): cronsim's reading, which follows
Debian (Vixie) cron across daylight-saving changes:

- a job at a fixed time of day (minute and hour fields both without ``*``) keeps to
  the wall clock: one that falls into the hour skipped in spring runs once, at the
  first minute after the gap (``30 2 * * *`` runs at 03:00 that day); one that falls
  into the hour repeated in autumn runs once, at the first of the two (summer time);
- a job whose minute or hour field starts with ``*`` (``0 * * * *``) counts real
  time: hourly runs stay one hour apart, so the spring day has 23 of them and the
  autumn day 25 (the repeated hour runs in both its summer and winter time).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from ..core.schedules import MAX_TIME, Schedule

NEXT_RUNS = 5
"""Fire times a schedule's JSON shows (``next_runs``)."""


class Trigger(ABC):
    """A set of fire times between ``begin`` and ``end`` (both included)."""

    def __init__(self, begin: float, end: float | None) -> None:
        self.begin = begin
        self.end = end

    @abstractmethod
    def _after(self, t: float) -> float | None:
        """The first fire time after ``t`` ignoring ``end`` (``None``: never)."""

    @abstractmethod
    def _until(self, t: float) -> float | None:
        """The latest fire time at or before ``t`` ignoring ``begin``."""

    @abstractmethod
    def _at_or_after(self, t: float) -> float | None:
        """The first fire time at or after ``t`` ignoring ``end``."""

    def next_after(self, t: float) -> float | None:
        """The first fire time strictly after ``t``, or ``None`` when there is none
        (after ``end_at``)."""
        when = self._at_or_after(self.begin) if t < self.begin else self._after(t)
        if when is None or when > (MAX_TIME if self.end is None else self.end):
            return None
        return when

    def last_until(self, t: float) -> float | None:
        """The latest fire time at or before ``t`` (``None``: none yet)."""
        if self.end is not None:
            t = min(t, self.end)
        if t < self.begin:
            return None
        when = self._until(t)
        return None if when is None or when < self.begin else when

    def next_n(self, t: float, n: int = NEXT_RUNS) -> list[float]:
        """The next ``n`` fire times after ``t`` (fewer when the schedule ends)."""
        out: list[float] = []
        when = self.next_after(t)
        while when is not None and len(out) < n:
            out.append(when)
            when = self.next_after(when)
        return out


class IntervalTrigger(Trigger):
    """``anchor + k * every``: each time computed from ``k``, so none drifts."""

    def __init__(self, every: float, anchor: float, begin: float, end: float | None) -> None:
        super().__init__(begin, end)
        self.every = every
        self.anchor = anchor

    def _at(self, k: int) -> float:
        return self.anchor + k * self.every

    def _k_at_or_after(self, t: float) -> int:
        k = math.ceil((t - self.anchor) / self.every)
        # The division rounds; settle on the exact k by the times themselves.
        while self._at(k - 1) >= t:
            k -= 1
        while self._at(k) < t:
            k += 1
        return k

    def _at_or_after(self, t: float) -> float | None:
        return self._at(self._k_at_or_after(t))

    def _after(self, t: float) -> float | None:
        k = self._k_at_or_after(t)
        return self._at(k + 1 if self._at(k) == t else k)

    def _until(self, t: float) -> float | None:
        k = self._k_at_or_after(t)
        return self._at(k if self._at(k) == t else k - 1)


class CronTrigger(Trigger):
    """A five-field cron expression read in a time zone, by cronsim (see the module
    docstring for what that means across daylight-saving changes)."""

    def __init__(self, expr: str, zone: str | None, begin: float, end: float | None) -> None:
        super().__init__(begin, end)
        self.expr = expr
        self.zone = ZoneInfo(zone) if zone else timezone.utc

    def _iterate(self, t: float, reverse: bool) -> float | None:
        from cronsim import CronSim

        # cronsim drops the fraction of a second, then steps one second: forward it
        # yields times after floor(t); backward, from floor(t) + 1, times <= floor(t).
        start = datetime.fromtimestamp(math.floor(t) + (1 if reverse else 0), self.zone)
        it = CronSim(self.expr, start, reverse=reverse)
        try:
            for _ in range(3):
                when = next(it).timestamp()
                # A fixed-time job is computed on the wall clock, which repeats an hour
                # in autumn: a time read in the other pass of it can land on the wrong
                # side of t. Fire times are whole seconds, so one more step settles it.
                if (when > t) if not reverse else (when <= t):
                    return when
        except StopIteration:  # cronsim gives up after 50 years without a match
            return None
        except (OverflowError, ValueError):  # past the year 9999
            return None
        return None

    def _after(self, t: float) -> float | None:
        return self._iterate(t, reverse=False)

    def _at_or_after(self, t: float) -> float | None:
        # Fire times are whole seconds: at or after t is after ceil(t) - 1.
        return self._after(math.ceil(t) - 1)

    def _until(self, t: float) -> float | None:
        when = self._iterate(t, reverse=True)
        if when is None:
            return None
        # The wall clock's repeated hour again: a later fire time may still be <= t.
        later = self._after(when)
        while later is not None and later <= t:
            when, later = later, self._after(later)
        return when


def trigger_for(schedule: Schedule) -> Trigger:
    """The trigger of ``schedule`` (its ``enabled`` is the policy's business)."""
    created = schedule.created_at
    if schedule.every is not None:
        if schedule.start_at is None:
            return IntervalTrigger(schedule.every, created, created + schedule.every,
                                   schedule.end_at)
        return IntervalTrigger(schedule.every, schedule.start_at,
                               max(schedule.start_at, created), schedule.end_at)
    if schedule.cron is None:
        raise ValueError(f"schedule {schedule.id} has neither every nor cron")
    # Without start_at, a time equal to the creation is not a fire time (as for
    # intervals: creating a schedule never starts a run at once); cron's are whole seconds.
    begin = (math.floor(created) + 1 if schedule.start_at is None
             else max(schedule.start_at, created))
    return CronTrigger(schedule.cron, schedule.timezone, begin, schedule.end_at)


def next_runs(schedule: Schedule, after: float, n: int = NEXT_RUNS) -> list[float]:
    """The next ``n`` fire times of ``schedule`` after ``after`` (``next_runs`` in its
    JSON; the form's preview)."""
    return trigger_for(schedule).next_n(after, n)
