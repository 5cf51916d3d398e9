"""What a valid schedule is: every bad value is refused naming its field, a change is
validated as a whole and leaves the original untouched, and the record round-trips."""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from bgtasks_ext.core.errors import InvalidInput
from bgtasks_ext.core.models import Origin, TaskSpec
from bgtasks_ext.core.schedules import (
    Misfire, Overlap, Schedule, ScheduleSpec, make_schedule, patch_schedule, run_spec,
)

NOW = 1_800_000_000.0


class Admission:
    """A stand-in for the engine's admission (``TaskCheck``): records what it was
    asked, refuses ``params.times`` below 1 as the ``count`` kind would."""

    def __init__(self) -> None:
        self.asked: list[TaskSpec] = []

    def __call__(self, spec: TaskSpec) -> Mapping[str, Any]:
        self.asked.append(spec)
        times = spec.params.get("times", 3)
        if not isinstance(times, int) or times < 1:
            raise InvalidInput("params.times", "must be a whole number of at least 1")
        return {"times": times}


def make(**kw: Any) -> Schedule:
    kw.setdefault("kind", "count")
    if "cron" not in kw:
        kw.setdefault("every", 60)
    return make_schedule(ScheduleSpec(**kw), NOW, Admission())


def test_a_valid_spec_becomes_a_schedule_with_defaults() -> None:
    # Given a spec with only a kind and an interval / When it is made a schedule
    s = make(params={"times": 2})
    # Then the defaults of SPEC §2 hold and the kind's validated params are kept
    assert (s.overlap, s.misfire, s.enabled) == (Overlap.SKIP, Misfire.COALESCE, True)
    assert s.name == "count" and s.params == {"times": 2} and s.every == 60.0
    assert s.created_at == NOW and len(s.id) == 32
    assert s.next_fire_at is None and s.last_fired_at is None and s.last_run_id is None


def test_ids_are_time_ordered() -> None:
    a, b = make(), make()
    assert a.id < b.id


def test_the_task_check_sees_the_runs_spec_and_its_params_are_stored() -> None:
    # Given an admission hook
    check = Admission()
    # When a schedule with a payload is made
    s = make_schedule(ScheduleSpec("count", every=5, executor="process", timeout=3, retries=2,
                                   owner="ann", payload=b"x"), NOW, check)
    # Then the hook saw the task each run will make, and the schedule says it has inputs
    (asked,) = check.asked
    assert (asked.kind, asked.executor, asked.timeout, asked.retries, asked.owner) == \
        ("count", "process", 3, 2, "ann")
    assert asked.payload == b"x" and s.has_payload and s.params == {"times": 3}


def test_a_cron_schedule_keeps_its_expression_and_zone() -> None:
    s = make(cron="30  2 * * *", timezone="Europe/Berlin")
    assert (s.cron, s.timezone, s.every) == ("30 2 * * *", "Europe/Berlin", None)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"every": None, "cron": None}, "every"),
    ({"every": 5, "cron": "* * * * *"}, "every"),
    ({"every": 0.05}, "every"),
    ({"every": 0}, "every"),
    ({"every": -1}, "every"),
    ({"every": True}, "every"),
    ({"every": "5"}, "every"),
    ({"every": float("nan")}, "every"),
    ({"every": float("inf")}, "every"),
    ({"cron": "* * * *"}, "cron"),
    ({"cron": "* * * * * *"}, "cron"),
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "0 25 * * *"}, "cron"),
    ({"cron": "0 0 31 2 *"}, "cron"),
    ({"cron": "every day"}, "cron"),
    ({"cron": ""}, "cron"),
    ({"cron": 5}, "cron"),
    ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ({"cron": "0 9 * * *", "timezone": "../../etc/passwd"}, "timezone"),
    ({"cron": "0 9 * * *", "timezone": ""}, "timezone"),
    ({"cron": "0 9 * * *", "timezone": 1}, "timezone"),
    ({"start_at": NOW + 100, "end_at": NOW + 50}, "end_at"),
    ({"start_at": NOW + 100, "end_at": NOW + 100}, "end_at"),
    ({"end_at": NOW - 1}, "end_at"),
    ({"start_at": "tomorrow"}, "start_at"),
    ({"start_at": True}, "start_at"),
    ({"end_at": float("nan")}, "end_at"),
    ({"start_at": -1}, "start_at"),
    ({"start_at": 1e300}, "start_at"),
    ({"end_at": 1e20}, "end_at"),
    ({"every": 1e300}, "every"),
    ({"overlap": "replace"}, "overlap"),
    ({"overlap": None}, "overlap"),
    ({"misfire": "run_all"}, "misfire"),
    ({"enabled": "yes"}, "enabled"),
    ({"enabled": 1}, "enabled"),
    ({"name": 3}, "name"),
    ({"params": {"times": 0}}, "params.times"),
]


@pytest.mark.parametrize("values,field", BAD, ids=[f"{f}={v}" for v, f in BAD])
def test_every_bad_value_is_refused_naming_its_field(values: dict[str, Any], field: str) -> None:
    # Given a spec with one bad value / When it is made a schedule / Then InvalidInput names it
    with pytest.raises(InvalidInput) as err:
        make(**values)
    assert err.value.field == field
    assert err.value.status == 400


def test_the_smallest_interval_is_accepted() -> None:
    assert make(every=0.1).every == 0.1


def test_json_is_the_wire_form_and_records_round_trip() -> None:
    # Given a schedule the scheduler has fired
    s = make(cron="0 9 * * 1-5", timezone="America/New_York", start_at=NOW + 10,
             end_at=NOW + 86_400, overlap="queue", misfire="skip", owner="ann",
             origin=Origin(kernel_id="k1", path="a.ipynb"))
    s = patch_like_scheduler(s)
    # When it is serialised
    wire = s.to_json()
    # Then times are ISO 8601 UTC and enums strings; the store form rebuilds it exactly
    assert wire["start_at"] == "2027-01-15T08:00:10Z" and wire["overlap"] == "queue"
    assert wire["next_fire_at"].endswith("Z") and wire["origin"]["kernel_id"] == "k1"
    assert Schedule.from_record(s.to_record()) == s
    back = Schedule.from_record(wire)
    assert (back.start_at, back.next_fire_at, back.overlap) == (s.start_at, s.next_fire_at,
                                                                 Overlap.QUEUE)


def patch_like_scheduler(s: Schedule) -> Schedule:
    from dataclasses import replace
    return replace(s, next_fire_at=NOW + 3600.5, last_fired_at=NOW + 10, last_run_id="r1",
                   queued_for=NOW + 20)


def test_a_patch_is_validated_whole_and_leaves_the_original_untouched() -> None:
    # Given a schedule
    s = make(every=60, name="a")
    # When a patch has a bad value / Then it is refused naming the field, s unchanged
    for body, field in [({"every": 0.01}, "every"), ({"overlap": "x"}, "overlap"),
                        ({"kind": "sleep"}, "kind"), ({"id": "x"}, "id"), ({"colour": 1}, "colour"),
                        ({"params": {"times": -1}}, "params.times"),
                        ({"every": None}, "every"), ({"end_at": NOW - 5}, "end_at")]:
        with pytest.raises(InvalidInput) as err:
            patch_schedule(s, body, NOW, Admission())
        assert err.value.field == field
    assert s == make_schedule(ScheduleSpec("count", every=60, name="a"), NOW, Admission(),
                              ident=s.id)


def test_a_patch_giving_cron_replaces_every_and_restarts_the_clock() -> None:
    # Given a fired interval schedule
    s = patch_like_scheduler(make(every=60))
    # When it is switched to cron an hour later
    later = NOW + 3600
    p = patch_schedule(s, {"cron": "*/5 * * * *"}, later, Admission())
    # Then every is gone, the scheduler recomputes, and nothing before the change is due
    assert (p.every, p.cron) == (None, "*/5 * * * *")
    assert p.next_fire_at is None and p.last_fired_at == later and p.queued_for is None
    assert (p.id, p.created_at, p.last_run_id) == (s.id, s.created_at, "r1")


def test_a_patch_of_the_name_keeps_the_scheduler_state() -> None:
    s = patch_like_scheduler(make(every=60))
    p = patch_schedule(s, {"name": "renamed"}, NOW + 5, Admission())
    assert p.name == "renamed"
    assert (p.next_fire_at, p.last_fired_at, p.queued_for) == \
        (s.next_fire_at, s.last_fired_at, s.queued_for)


def test_disabling_drops_a_held_run_and_enabling_fires_nothing_missed_meanwhile() -> None:
    s = patch_like_scheduler(make(every=60))
    off = patch_schedule(s, {"enabled": False}, NOW + 5, Admission())
    assert not off.enabled and off.queued_for is None and off.next_fire_at is None
    on = patch_schedule(off, {"enabled": True}, NOW + 9000, Admission())
    assert on.enabled and on.last_fired_at == NOW + 9000 and on.next_fire_at is None


def test_an_ended_schedule_can_still_be_renamed() -> None:
    # Given a schedule whose end_at has passed
    s = make(every=60, end_at=NOW + 100)
    # When only its name changes later / Then the past end_at is no reason to refuse
    assert patch_schedule(s, {"name": "old"}, NOW + 500, Admission()).name == "old"


def test_run_spec_is_the_task_each_run_makes() -> None:
    s = make(every=60, executor="thread", timeout=5, retries=1, owner="ann", name="nightly")
    spec = run_spec(s, payload=b"in")
    assert (spec.kind, spec.name, spec.executor, spec.timeout, spec.retries, spec.owner,
            spec.schedule_id, spec.payload) == ("count", "nightly", "thread", 5, 1, "ann",
                                                s.id, b"in")
