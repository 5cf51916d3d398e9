"""The one misfire/overlap policy, over every combination it decides, then followed
through time with a fake clock the way the scheduler loop will use it.

An interval schedule created at ``CREATED`` with ``every: 60`` fires at 1060, 1120, ...
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from bgtasks_ext.core.schedules import Misfire, Overlap, Schedule, ScheduleSpec, make_schedule
from bgtasks_ext.scheduling.policy import GRACE, Decision, Why, advance, decide

CREATED = 1000.0


def schedule(**kw: Any) -> Schedule:
    kw.setdefault("every", 60)
    return make_schedule(ScheduleSpec("count", **kw), CREATED, lambda spec: {})


# situation -> (record changes, now)
SITUATIONS: dict[str, tuple[dict[str, Any], float]] = {
    "not_due": ({"last_fired_at": 1060.0}, 1100.0),
    "on_time": ({"last_fired_at": 1060.0}, 1120.003),
    "first": ({}, 1060.2),  # never fired yet
    "stall": ({"last_fired_at": 1060.0}, 1180.0 + GRACE / 2),  # 1120 missed, 1180 on time
    "downtime": ({"last_fired_at": 1060.0}, 4990.0),  # 1120..4960 missed, 4960 late
    "held": ({"last_fired_at": 1120.0, "queued_for": 1120.0}, 1150.0),
    "ended": ({"last_fired_at": 1180.0, "end_at": 1200.0}, 1300.0),
    "disabled": ({"last_fired_at": 1060.0, "enabled": False}, 4980.5),
}

# (situation, misfire) -> (why, the due time) before overlap is looked at
DUE = {
    ("not_due", Misfire.COALESCE): (Why.NOT_DUE, None),
    ("not_due", Misfire.SKIP): (Why.NOT_DUE, None),
    ("on_time", Misfire.COALESCE): (Why.ON_TIME, 1120.0),
    ("on_time", Misfire.SKIP): (Why.ON_TIME, 1120.0),
    ("first", Misfire.COALESCE): (Why.ON_TIME, 1060.0),
    ("first", Misfire.SKIP): (Why.ON_TIME, 1060.0),
    ("stall", Misfire.COALESCE): (Why.COALESCED, 1180.0),
    ("stall", Misfire.SKIP): (Why.COALESCED, 1180.0),  # the latest is on time
    ("downtime", Misfire.COALESCE): (Why.COALESCED, 4960.0),  # one run, for the latest
    ("downtime", Misfire.SKIP): (Why.MISFIRED, None),  # none; next on schedule
    ("held", Misfire.COALESCE): (Why.FROM_QUEUE, 1120.0),
    ("held", Misfire.SKIP): (Why.FROM_QUEUE, 1120.0),  # a held run is no misfire
    ("ended", Misfire.COALESCE): (Why.ENDED, None),
    ("ended", Misfire.SKIP): (Why.ENDED, None),
    ("disabled", Misfire.COALESCE): (Why.DISABLED, None),
    ("disabled", Misfire.SKIP): (Why.DISABLED, None),
}

# (overlap, previous run live) -> what becomes of a due run: start it, or why not
OVERLAP = {
    (Overlap.SKIP, False): "start",
    (Overlap.SKIP, True): Why.OVERLAP_SKIPPED,
    (Overlap.QUEUE, False): "start",
    (Overlap.QUEUE, True): Why.QUEUED,
    (Overlap.ALLOW, False): "start",
    (Overlap.ALLOW, True): "start",
}

# situation -> (last_fired_at, next_fire_at) after the decision, whatever the policies
CLOCK = {
    "not_due": (1060.0, 1120.0),
    "on_time": (1120.0, 1180.0),
    "first": (1060.0, 1120.0),
    "stall": (1180.0, 1240.0),
    "downtime": (4960.0, 5020.0),
    "held": (1120.0, 1180.0),
    "ended": (1180.0, None),
    "disabled": (1060.0, None),
}

# Only overlap = queue holds a run.
COMBOS = [c for c in itertools.product(SITUATIONS, Misfire, Overlap, (False, True))
          if c[0] != "held" or c[2] is Overlap.QUEUE]


def test_the_tables_cover_every_combination() -> None:
    assert set(DUE) == set(itertools.product(SITUATIONS, Misfire))
    assert set(OVERLAP) == set(itertools.product(Overlap, (False, True)))
    assert set(CLOCK) == set(SITUATIONS)


@pytest.mark.parametrize("situation,misfire,overlap,live", COMBOS)
def test_decide(situation: str, misfire: Misfire, overlap: Overlap, live: bool) -> None:
    # Given a schedule in a situation, with these policies, its previous run live or not
    changes, now = SITUATIONS[situation]
    s = replace(schedule(misfire=misfire, overlap=overlap), **changes)
    # When the scheduler asks what to do now
    d = decide(s, now, live)
    # Then the tables say it
    why, due = DUE[(situation, misfire)]
    fate = OVERLAP[(overlap, live)] if due is not None else "start"
    if fate == "start":
        assert (d.why, d.start, d.queued_for) == (why, due, None)
    elif fate is Why.QUEUED:
        assert (d.why, d.start, d.queued_for) == (Why.QUEUED, None, due)
    else:
        assert (d.why, d.start, d.queued_for) == (fate, None, None)
    assert (d.last_fired_at, d.next_fire_at) == CLOCK[situation]


def test_a_newer_due_time_replaces_a_held_one_so_at_most_one_waits() -> None:
    # Given a queue schedule holding 1120 while its previous run is live
    s = replace(schedule(overlap="queue"), last_fired_at=1120.0, queued_for=1120.0)
    # When 1180 comes and the run is still live
    d = decide(s, 1180.0, live=True)
    # Then one run waits, for 1180
    assert (d.why, d.start, d.queued_for) == (Why.QUEUED, None, 1180.0)


def test_a_clock_that_steps_back_fires_nothing_again() -> None:
    s = replace(schedule(), last_fired_at=1180.0)
    d = decide(s, 1130.0, live=False)
    assert (d.why, d.start, d.last_fired_at, d.next_fire_at) == (Why.NOT_DUE, None, 1180.0, 1240.0)


def test_advance_records_the_decision_and_the_run() -> None:
    s = schedule()
    d = Decision(Why.ON_TIME, 1060.0, None, 1060.0, 1120.0)
    after = advance(s, d, run_id="r1")
    assert (after.last_fired_at, after.next_fire_at, after.queued_for, after.last_run_id) == \
        (1060.0, 1120.0, None, "r1")
    assert advance(after, Decision(Why.NOT_DUE, None, None, 1060.0, 1120.0)).last_run_id == "r1"


# --- through time, as the scheduler loop will drive it ---------------------------------

class Loop:
    """A scheduler loop on a fake clock: wakes at the schedule's next fire time and when
    a run ends, asks :func:`decide`, starts what it says (each run lasting ``duration``)."""

    def __init__(self, s: Schedule, duration: float) -> None:
        self.s = s
        self.duration = duration
        self.now = s.created_at
        self.ends: list[float] = []
        self.runs: list[tuple[float, float]] = []  # (scheduled_for, started)
        self.whys: list[Why] = []
        self.step()

    def step(self) -> None:
        self.ends = [e for e in self.ends if e > self.now]
        d = decide(self.s, self.now, live=bool(self.ends))
        self.whys.append(d.why)
        run_id = None
        if d.start is not None:
            self.runs.append((d.start, self.now))
            self.ends.append(self.now + self.duration)
            run_id = f"r{len(self.runs)}"
        self.s = advance(self.s, d, run_id)

    def run_until(self, until: float, down: tuple[float, float] | None = None) -> None:
        while True:
            wakes = [t for t in [self.s.next_fire_at, *self.ends] if t is not None]
            if not wakes or min(wakes) > until:
                return
            self.now = min(wakes)
            if down and down[0] <= self.now < down[1]:
                # No server runs: nothing wakes, live runs die with it; it starts at down[1]
                self.now, self.ends = down[1], []
            self.step()


def test_skip_never_overlaps_a_long_run() -> None:
    # Given every 0.5 s a run of 1.3 s, overlap = skip
    loop = Loop(schedule(every=0.5), duration=1.3)
    loop.run_until(CREATED + 60)
    # Then no run starts while another is live, and each started on a fire time
    starts = [started for _, started in loop.runs]
    assert all(b - a >= 1.3 for a, b in zip(starts, starts[1:]))
    assert all(due == started for due, started in loop.runs)
    assert Why.OVERLAP_SKIPPED in loop.whys and len(loop.runs) == 40  # every 1.5 s


def test_queue_runs_back_to_back_with_one_waiting() -> None:
    loop = Loop(schedule(every=0.5, overlap="queue"), duration=1.3)
    loop.run_until(CREATED + 60)
    starts = [started for _, started in loop.runs]
    # Then each run starts the moment the previous ends, for the latest due time then
    assert {round(b - a, 9) for a, b in zip(starts, starts[1:])} == {1.3}
    assert all(started - due < 0.5 for due, started in loop.runs[1:])
    assert Why.FROM_QUEUE in loop.whys


def test_allow_starts_every_fire_time() -> None:
    loop = Loop(schedule(every=0.5, overlap="allow"), duration=1.3)
    loop.run_until(CREATED + 60)
    assert [due for due, _ in loop.runs] == [CREATED + 0.5 * k for k in range(1, 121)]
    assert all(due == started for due, started in loop.runs)


def test_coalesce_after_downtime_is_one_run_for_the_latest_missed_time() -> None:
    # Given an every-minute schedule and a server down from 1150 to 5000.5
    loop = Loop(schedule(every=60), duration=1)
    loop.run_until(6000, down=(1150, 5000.5))
    dues = [due for due, _ in loop.runs]
    # Then the missed times 1180..4960 became one run, for 4960, started at once
    assert dues[:3] == [1060.0, 1120.0, 4960.0] and loop.runs[2] == (4960.0, 5000.5)
    # and then it goes on on its grid
    assert dues[3:] == [5020.0 + 60 * k for k in range(len(dues) - 3)] and len(dues) > 10


def test_skip_after_downtime_runs_none_and_goes_on_on_schedule() -> None:
    loop = Loop(schedule(every=60, misfire="skip"), duration=1)
    loop.run_until(6000, down=(1150, 5000.5))
    dues = [due for due, _ in loop.runs]
    assert dues[:3] == [1060.0, 1120.0, 5020.0] and Why.MISFIRED in loop.whys
    assert all(due == started for due, started in loop.runs)


def test_a_cron_schedule_coalesces_a_night_of_downtime() -> None:
    # Given an hourly cron schedule, and a server down for eight hours
    s = make_schedule(ScheduleSpec("count", cron="0 * * * *"), 0.0, lambda spec: {})
    loop = Loop(s, duration=1)
    loop.run_until(12 * 3600 + 10, down=(3 * 3600 + 30, 11 * 3600 + 15))
    # Then the missed hours are one run, for 11:00, at start; then on the hour again
    assert [d for d, _ in loop.runs] == [3600.0 * h for h in (1, 2, 3, 11, 12)]
    assert loop.runs[3] == (11 * 3600.0, 11 * 3600.0 + 15)


def test_a_disabled_schedule_never_fires() -> None:
    loop = Loop(schedule(every=1, enabled=False), duration=0.1)
    loop.run_until(CREATED + 100)
    assert loop.runs == [] and loop.s.next_fire_at is None


def test_nothing_fires_after_end_at() -> None:
    loop = Loop(schedule(every=10, end_at=CREATED + 45), duration=1)
    loop.run_until(CREATED + 1000)
    assert [d for d, _ in loop.runs] == [1010.0, 1020.0, 1030.0, 1040.0]
    assert loop.s.next_fire_at is None and loop.whys[-1] is Why.ENDED
