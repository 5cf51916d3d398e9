"""Fire times: interval exactness, the start/end window, and cron across both
daylight-saving changes in two zones, with Debian cron's rules (cronsim):

- a fixed time of day keeps to the wall clock: in the skipped spring hour it runs once,
  at the first minute after the gap (02:30 -> 03:00); in the repeated autumn hour once,
  at the first pass (summer time);
- a job with ``*`` in its minute or hour field counts real time: hourly runs stay one
  hour apart (23 on the spring day, 25 on the autumn day).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bgtasks_ext.core.schedules import Schedule, ScheduleSpec, make_schedule
from bgtasks_ext.scheduling.triggers import NEXT_RUNS, next_runs, trigger_for

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
# (zone, spring-forward day, fall-back day) in 2026
DST_DAYS = [(BERLIN, (2026, 3, 29), (2026, 10, 25)), (NEW_YORK, (2026, 3, 8), (2026, 11, 1))]


def ts(zone: str, *fields: int) -> float:
    return datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp()  # type: ignore[misc]


def local(zone: str, t: float) -> datetime:
    return datetime.fromtimestamp(t, ZoneInfo(zone))


def schedule(created_at: float, **kw: Any) -> Schedule:
    return make_schedule(ScheduleSpec("count", **kw), created_at, lambda spec: {})


def day_runs(s: Schedule, zone: str, day: tuple[int, int, int]) -> list[float]:
    """Every fire time within the local calendar day ``day``."""
    begin = ts(zone, *day)
    end = (datetime(*day, tzinfo=ZoneInfo(zone)) + timedelta(days=1)).timestamp()
    return runs_between(s, begin, end)


def runs_between(s: Schedule, begin: float, end: float) -> list[float]:
    """Every fire time in [begin, end), followed one after the other."""
    trig, out = trigger_for(s), []
    t = trig.next_after(begin - 1)
    while t is not None and t < end:
        out.append(t)
        t = trig.next_after(t)
    return out


@pytest.mark.parametrize("zone,spring,fall", DST_DAYS)
def test_a_0230_daily_job_runs_once_at_0300_on_the_spring_forward_day(
        zone: str, spring: tuple[int, int, int], fall: tuple[int, int, int]) -> None:
    # Given a daily 02:30 job in a zone whose clocks jump from 02:00 to 03:00
    s = schedule(ts(zone, 2026, 1, 1), cron="30 2 * * *", timezone=zone)
    # When the fire times around that day are computed
    runs = next_runs(s, ts(zone, spring[0], spring[1], spring[2] - 1))
    # Then it runs once that day, at 03:00 local (the first minute after the gap)
    got = [local(zone, t).strftime("%d %H:%M %Z") for t in runs[:3]]
    d = spring[2]
    summer = local(zone, runs[1]).tzname()
    winter = local(zone, runs[0]).tzname()
    assert got == [f"{d - 1:02d} 02:30 {winter}", f"{d:02d} 03:00 {summer}",
                   f"{d + 1:02d} 02:30 {summer}"]
    assert len(day_runs(s, zone, spring)) == 1


@pytest.mark.parametrize("zone,spring,fall", DST_DAYS)
def test_an_hourly_job_runs_25_times_on_the_fall_back_day_one_hour_apart(
        zone: str, spring: tuple[int, int, int], fall: tuple[int, int, int]) -> None:
    # Given an hourly job in a zone whose clocks go back one hour
    s = schedule(ts(zone, 2026, 1, 1), cron="0 * * * *", timezone=zone)
    # When that day's fire times are computed
    runs = day_runs(s, zone, fall)
    # Then the repeated hour runs in both its summer and its winter time: 25 runs,
    # each exactly one real hour after the one before
    assert len(runs) == 25
    assert {b - a for a, b in zip(runs, runs[1:])} == {3600.0}
    hour = 2 if zone == BERLIN else 1
    repeated = [local(zone, t) for t in runs if local(zone, t).hour == hour]
    assert [d.fold for d in repeated] == [0, 1] and repeated[0].tzname() != repeated[1].tzname()


@pytest.mark.parametrize("zone,spring,fall", DST_DAYS)
def test_an_hourly_job_runs_23_times_on_the_spring_forward_day(
        zone: str, spring: tuple[int, int, int], fall: tuple[int, int, int]) -> None:
    s = schedule(ts(zone, 2026, 1, 1), cron="0 * * * *", timezone=zone)
    runs = day_runs(s, zone, spring)
    assert len(runs) == 23 and {b - a for a, b in zip(runs, runs[1:])} == {3600.0}
    assert 2 not in [local(zone, t).hour for t in runs]


@pytest.mark.parametrize("zone,spring,fall", DST_DAYS)
def test_a_job_in_the_repeated_hour_runs_once_at_its_first_pass(
        zone: str, spring: tuple[int, int, int], fall: tuple[int, int, int]) -> None:
    # Given a daily job at hh:30 of the hour that repeats on the fall-back day
    hour = 2 if zone == BERLIN else 1
    s = schedule(ts(zone, 2026, 1, 1), cron=f"30 {hour} * * *", timezone=zone)
    # Then it runs once that day, in summer time (the first pass)
    (run,) = day_runs(s, zone, fall)
    assert local(zone, run).hour == hour and local(zone, run).fold == 0
    assert local(zone, run).dst()


@pytest.mark.parametrize("zone,spring,fall", DST_DAYS)
@pytest.mark.parametrize("expr", ["30 1 * * *", "45 1 * * *", "15 2 * * *", "30 2 * * *",
                                  "0 * * * *", "*/20 * * * *", "0 3 * * *"])
def test_next_and_latest_agree_with_each_other_through_both_changes(
        zone: str, spring: tuple[int, int, int], fall: tuple[int, int, int], expr: str) -> None:
    # Given any of these jobs, and every 10th minute (in real time) of both change days
    s = schedule(ts(zone, 2026, 1, 1), cron=expr, timezone=zone)
    trig = trigger_for(s)
    for day in (spring, fall):
        every = runs_between(s, ts(zone, *day) - 86_400, ts(zone, *day) + 2 * 86_400)
        t = ts(zone, *day) - 600
        while t < ts(zone, *day) + 86_400:
            # Then the next fire time is the first one after t, the latest the last at or
            # before it, also inside the repeated hour, where the wall clock reads earlier
            assert trig.next_after(t) == min(x for x in every if x > t)
            assert trig.last_until(t) == max(x for x in every if x <= t)
            t += 600 + 7.25


def test_cron_without_a_zone_is_utc() -> None:
    s = schedule(0.0, cron="0 9 * * *")
    (first,) = next_runs(s, ts("UTC", 2026, 6, 1), 1)
    assert datetime.fromtimestamp(first, timezone.utc) == datetime(2026, 6, 1, 9, tzinfo=timezone.utc)


def test_next_after_is_strictly_after_and_last_until_includes_the_time() -> None:
    s = schedule(0.0, cron="*/5 * * * *")
    trig, nine = trigger_for(s), ts("UTC", 2026, 6, 1, 9)
    assert trig.next_after(nine) == nine + 300
    assert trig.next_after(nine - 0.001) == nine
    assert trig.last_until(nine) == nine
    assert trig.last_until(nine - 0.001) == nine - 300


def test_interval_fire_times_are_exact_multiples_over_many_periods() -> None:
    # Given a 0.1 s interval created at an awkward time
    created = 1_800_000_000.123
    s = schedule(created, every=0.1)
    trig = trigger_for(s)
    # When it is followed for 100,000 periods, fire time after fire time
    t = created
    for k in range(1, 100_001):
        t_next = trig.next_after(t)
        # Then each is the anchor plus a whole number of periods, computed, not summed
        assert t_next == created + k * 0.1
        assert trig.last_until(t_next) == t_next
        t = t_next  # type: ignore[assignment]
    # and a million periods on, it is still on the grid
    far = created + 10_000_000 * 0.1
    assert trig.next_after(far) == created + 10_000_001 * 0.1
    assert trig.last_until(far + 0.05) == far


def test_an_interval_without_start_at_first_fires_one_period_after_creation() -> None:
    s = schedule(1000.0, every=60)
    assert next_runs(s, 1000.0, 3) == [1060.0, 1120.0, 1180.0]
    assert trigger_for(s).last_until(1059.9) is None


def test_an_interval_with_start_at_first_fires_at_start_at_and_is_anchored_there() -> None:
    s = schedule(1000.0, every=60, start_at=1500.5)
    assert next_runs(s, 1000.0, 3) == [1500.5, 1560.5, 1620.5]
    assert trigger_for(s).last_until(1500.4) is None


def test_a_start_at_before_creation_fires_on_its_grid_but_only_after_creation() -> None:
    s = schedule(1000.0, every=60, start_at=10.0)
    assert next_runs(s, 0.0, 2) == [1030.0, 1090.0]
    assert trigger_for(s).last_until(1029.0) is None


def test_cron_honours_start_at() -> None:
    created = ts("UTC", 2026, 6, 1)
    s = schedule(created, cron="0 * * * *", start_at=created + 5 * 3600)
    assert next_runs(s, created, 2) == [created + 5 * 3600, created + 6 * 3600]
    assert trigger_for(s).last_until(created + 5 * 3600 - 1) is None


@pytest.mark.parametrize("trigger", [{"every": 60}, {"cron": "* * * * *"}])
def test_nothing_fires_after_end_at(trigger: dict[str, Any]) -> None:
    # Given a schedule ending 3 minutes (plus a bit) after its first fire time
    created = ts("UTC", 2026, 6, 1)
    s = schedule(created, end_at=created + 200, **trigger)
    trig = trigger_for(s)
    # Then the next fire times stop at end_at, and none comes after it
    assert next_runs(s, created) == [created + 60, created + 120, created + 180]
    assert trig.next_after(created + 180) is None
    assert trig.next_after(created + 10_000) is None
    assert trig.last_until(created + 10_000) == created + 180


def test_end_at_on_a_fire_time_includes_it() -> None:
    s = schedule(0.0, every=10, end_at=30.0)
    assert next_runs(s, 0.0) == [10.0, 20.0, 30.0]


def test_the_reply_carries_five_next_runs() -> None:
    assert len(next_runs(schedule(0.0, cron="0 0 * * *"), 0.0)) == NEXT_RUNS == 5


def test_a_cron_schedule_created_on_a_fire_time_first_fires_at_the_next_one() -> None:
    # Given a schedule created exactly at 09:00, when "0 9 * * *" matches
    nine = ts("UTC", 2026, 6, 1, 9)
    # Then creating it does not start a run; a start_at of that instant does
    assert next_runs(schedule(nine, cron="0 9 * * *"), 0.0, 1) == [nine + 86_400]
    assert next_runs(schedule(nine, cron="0 9 * * *", start_at=nine), 0.0, 1) == [nine]


def test_no_fire_time_goes_past_the_year_9999() -> None:
    # Given schedules whose next fire time would come after 9999-12-31T23:59:59Z
    late = 253_402_300_000.0
    for s in (schedule(0.0, every=2.5e11), schedule(0.0, cron="0 0 * * *", start_at=late)):
        # Then there is none (rather than a time no reply could write), and no error
        assert next_runs(s, late) == []
        assert trigger_for(s).next_after(late) is None
