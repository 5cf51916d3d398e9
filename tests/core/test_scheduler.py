"""The scheduler on a fake clock: a real engine (memory store, thread executor) with
the loop driven by hand (``background=False``, ``step()``), so every fire time is
exact and no test waits on the wall clock. Runs last as long as the test says
(``gate``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bgtasks_ext.core.engine import Engine
from bgtasks_ext.core.errors import InvalidInput, NotFound, UnknownKind
from bgtasks_ext.core.schedules import ScheduleSpec
from bgtasks_ext.core.states import State
from bgtasks_ext.scheduling.service import LEASE, ScheduleEvent, Scheduler
from bgtasks_ext.store.memory import MemoryStore

from .scheduler_fixtures import make_engine, open_gate, runs
from .test_context import FakeClock

T0 = 1000.0


@pytest.fixture
def clock() -> FakeClock:
    c = FakeClock()
    c.now = T0
    return c


@pytest.fixture
def engine(clock: FakeClock) -> Iterator[Engine]:
    eng = make_engine(clock=clock, server_id="A")
    eng.start()
    yield eng
    eng.stop()


@pytest.fixture
def sched(engine: Engine, clock: FakeClock) -> Iterator[Scheduler]:
    s = Scheduler(engine, lease_ttl=120, clock=clock, background=False)  # renewed every 30 s
    s.start()
    yield s
    s.stop()


def at(clock: FakeClock, sched: Scheduler, when: float) -> float:
    """The loop's step at ``when``, once the runs started so far (but gated ones) ended:
    they take a moment of real time, and a live run would make ``skip`` drop a time."""
    settle(sched.engine)
    clock.now = when
    return sched.step()


def settle(engine: Engine) -> None:
    for t in engine.live_tasks():
        if t.kind != "gate":
            engine.wait(t.id, 10)


def gated(name: str, **kw: Any) -> ScheduleSpec:
    kw.setdefault("every", 10)
    return ScheduleSpec("gate", {"name": name}, **kw)


def test_runs_start_exactly_at_their_fire_times(engine: Engine, sched: Scheduler,
                                                clock: FakeClock) -> None:
    # Given an interval schedule made at T0 (fire times T0+10, T0+20, ...)
    s = sched.create(ScheduleSpec("noop", every=10))
    assert s.next_fire_at == T0 + 10
    # When the loop runs, it sleeps exactly to the first fire time (nothing before it)
    assert at(clock, sched, T0) == T0 + 10
    assert at(clock, sched, T0 + 9.999) == T0 + 10
    assert runs(engine, s.id) == []
    # Then at each fire time one run starts, for that time, and the next is the wake-up
    assert at(clock, sched, T0 + 10) == T0 + 20
    assert at(clock, sched, T0 + 20) == T0 + 30
    done = [engine.wait(t.id, 10) for t in runs(engine, s.id)]
    assert [t.scheduled_for for t in done] == [T0 + 10, T0 + 20]
    assert all(t.state is State.FINISHED and t.schedule_id == s.id for t in done)
    # and the record says when it fires next and what it ran last
    assert sched.get(s.id).next_fire_at == T0 + 30
    assert sched.get(s.id).last_run_id == done[-1].id


def test_the_wake_up_is_the_earliest_of_all_schedules(sched: Scheduler, clock: FakeClock) -> None:
    sched.create(ScheduleSpec("noop", every=25))
    sched.create(ScheduleSpec("noop", every=7))
    assert at(clock, sched, T0) == T0 + 7


@pytest.mark.parametrize("overlap", ["skip", "queue", "allow"])
def test_overlap_with_a_run_longer_than_the_interval(engine: Engine, sched: Scheduler,
                                                     clock: FakeClock, overlap: str) -> None:
    # Given a schedule every 10 s whose first run lasts until the test opens its gate
    name = f"overlap-{overlap}"
    s = sched.create(gated(name, overlap=overlap))
    at(clock, sched, T0 + 10)
    first = runs(engine, s.id)
    assert len(first) == 1
    # When the next fire time comes while that run is live
    at(clock, sched, T0 + 20)
    during = runs(engine, s.id)
    # and then the run ends (at T0+25)
    clock.now = T0 + 25
    open_gate(name)
    engine.wait(first[0].id, 10)
    at(clock, sched, T0 + 25)
    after = runs(engine, s.id)
    # Then skip drops that fire time, queue starts it as the run ends, allow overlaps
    if overlap == "skip":
        assert len(during) == 1 and len(after) == 1
    elif overlap == "queue":
        assert len(during) == 1 and sched.get(s.id).queued_for is None
        assert [t.scheduled_for for t in after] == [T0 + 10, T0 + 20]
    else:
        assert [t.scheduled_for for t in during] == [T0 + 10, T0 + 20]
    # and, its runs ended, the schedule goes on at its next fire time
    for t in runs(engine, s.id):
        engine.wait(t.id, 10)
    at(clock, sched, T0 + 30)
    assert runs(engine, s.id)[-1].scheduled_for == T0 + 30
    engine.wait(runs(engine, s.id)[-1].id, 10)


def test_a_held_run_waits_for_the_run_before_it(engine: Engine, sched: Scheduler,
                                                clock: FakeClock) -> None:
    # Given overlap = queue and a live run: the fire time is held, not started
    s = sched.create(gated("held", overlap="queue"))
    at(clock, sched, T0 + 10)
    at(clock, sched, T0 + 20)
    assert sched.get(s.id).queued_for == T0 + 20
    # When the loop steps again before the run ends: still held
    at(clock, sched, T0 + 21)
    assert len(runs(engine, s.id)) == 1
    # When it ends: the engine's event alone brings the held run on the next step
    open_gate("held")
    engine.wait(runs(engine, s.id)[0].id, 10)
    at(clock, sched, T0 + 22)
    assert [t.scheduled_for for t in runs(engine, s.id)] == [T0 + 10, T0 + 20]


def test_disable_stops_firing_at_once_and_enable_goes_on_from_then(
        engine: Engine, sched: Scheduler, clock: FakeClock) -> None:
    s = sched.create(ScheduleSpec("noop", every=10))
    at(clock, sched, T0 + 10)
    # When it is disabled between two fire times
    clock.now = T0 + 15
    off = sched.patch(s.id, {"enabled": False})
    assert off.next_fire_at is None and not off.enabled
    # Then no fire time runs while it is off, and the loop no longer wakes for it
    # (its next wake-up is the lease's renewal, 120 / 4 after the first step at T0+10)
    assert at(clock, sched, T0 + 20) == T0 + 40
    at(clock, sched, T0 + 45)
    assert len(runs(engine, s.id)) == 1
    # When it is enabled again, nothing missed while off runs: the next fire time does
    clock.now = T0 + 52
    on = sched.patch(s.id, {"enabled": True})
    assert on.next_fire_at == T0 + 60
    at(clock, sched, T0 + 55)
    assert len(runs(engine, s.id)) == 1
    at(clock, sched, T0 + 60)
    assert [t.scheduled_for for t in runs(engine, s.id)] == [T0 + 10, T0 + 60]


def test_a_deleted_schedule_fires_no_more_and_its_runs_stay(engine: Engine, sched: Scheduler,
                                                            clock: FakeClock) -> None:
    s = sched.create(ScheduleSpec("noop", every=10))
    at(clock, sched, T0 + 10)
    sched.delete(s.id)
    with pytest.raises(NotFound):
        sched.get(s.id)
    assert sched.list() == []
    at(clock, sched, T0 + 20)
    assert [t.scheduled_for for t in runs(engine, s.id)] == [T0 + 10]
    with pytest.raises(NotFound):
        sched.delete(s.id)


@pytest.mark.parametrize("changes, field", [
    ({"every": 0.01}, "every"),
    ({"cron": "61 * * * *"}, "cron"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"params": {"value": 1, "extra": 2}}, "params.extra"),
    ({"overlap": "sometimes"}, "overlap"),
    ({"kind": "sleep"}, "kind"),
    ({"retries": -1}, "retries"),
])
def test_a_refused_patch_changes_nothing(engine: Engine, sched: Scheduler, clock: FakeClock,
                                         changes: dict[str, Any], field: str) -> None:
    # Given a schedule that has fired once, and a listener
    s = sched.create(ScheduleSpec("echo", {"value": 1}, every=10))
    at(clock, sched, T0 + 10)
    before = sched.get(s.id)
    events: list[ScheduleEvent] = []
    sched.subscribe(events.append)
    # When a bad change is asked for
    with pytest.raises(InvalidInput) as err:
        sched.patch(s.id, changes)
    # Then the error names the field and nothing changed, stored or announced
    assert err.value.field == field
    assert sched.get(s.id) == before and events == []
    at(clock, sched, T0 + 20)
    assert len(runs(engine, s.id)) == 2


def test_bad_kind_params_are_named_and_nothing_is_stored(sched: Scheduler) -> None:
    with pytest.raises(InvalidInput) as err:
        sched.create(ScheduleSpec("gate", {"name": 5}, every=10))
    assert err.value.field == "params.name"
    with pytest.raises(UnknownKind):
        sched.create(ScheduleSpec("no-such-kind", every=10))
    with pytest.raises(InvalidInput) as err:
        sched.preview(ScheduleSpec("noop", every=10, cron="* * * * *"))
    assert err.value.field == "every"
    assert sched.list() == []


def test_preview_and_json(engine: Engine, sched: Scheduler, clock: FakeClock) -> None:
    assert sched.preview(ScheduleSpec("noop", every=10)) == [T0 + 10 * k for k in range(1, 6)]
    assert sched.list() == []
    s = sched.create(ScheduleSpec("noop", every=10, name="tick"))
    body = sched.to_json(s)
    assert body["name"] == "tick" and body["last_run"] is None
    assert body["next_runs"][0] == "1970-01-01T00:16:50Z" and len(body["next_runs"]) == 5
    at(clock, sched, T0 + 10)
    run = engine.wait(runs(engine, s.id)[0].id, 10)
    body = sched.to_json(sched.get(s.id))
    assert body["last_run"] == {"id": run.id, "state": "finished", "started_at": "1970-01-01T00:16:50Z"}
    assert body["next_fire_at"] == "1970-01-01T00:17:00Z"
    assert sched.to_json(sched.patch(s.id, {"enabled": False}))["next_runs"] == []


def test_listeners_hear_every_change_and_every_firing(engine: Engine, sched: Scheduler,
                                                      clock: FakeClock) -> None:
    events: list[ScheduleEvent] = []
    unsubscribe = sched.subscribe(events.append)
    s = sched.create(ScheduleSpec("noop", every=10))
    at(clock, sched, T0 + 10)
    sched.patch(s.id, {"name": "renamed"})
    sched.delete(s.id)
    unsubscribe()
    sched.create(ScheduleSpec("noop", every=10))
    assert [e.change for e in events] == ["created", "updated", "updated", "deleted"]
    fired = events[1].schedule
    assert fired.next_fire_at == T0 + 20 and fired.last_run_id == runs(engine, s.id)[0].id
    assert events[2].schedule.name == "renamed"


def test_downtime_becomes_one_coalesced_run(clock: FakeClock) -> None:
    # Given a server that fired once and stopped (the store outlives it here)
    store = MemoryStore()
    first = make_engine(store, clock, server_id="A")
    first.start()
    one = Scheduler(first, lease_ttl=30, clock=clock, background=False)
    one.start()
    coalesce = one.create(ScheduleSpec("noop", every=10))
    skip = one.create(ScheduleSpec("noop", every=10, misfire="skip"))
    at(clock, one, T0 + 10)
    one.stop()
    # When another server starts on that store 95 s later (9 fire times missed)
    clock.now = T0 + 105
    second = make_engine(store, clock, server_id="B")
    second.start()
    two = Scheduler(second, lease_ttl=30, clock=clock, background=False)
    two.start()
    try:
        at(clock, two, T0 + 105)
        # Then coalesce runs once, for the latest missed time; skip runs none
        assert [t.scheduled_for for t in runs(second, coalesce.id)] == [T0 + 10, T0 + 100]
        assert [t.scheduled_for for t in runs(second, skip.id)] == [T0 + 10]
        # and both go on with their next fire time
        at(clock, two, T0 + 110)
        assert runs(second, skip.id)[-1].scheduled_for == T0 + 110
        assert runs(second, coalesce.id)[-1].scheduled_for == T0 + 110
    finally:
        two.stop()
        for t in second.live_tasks():
            second.wait(t.id, 10)
        first.stop()
        second.stop()


class TwoServers:
    """Two engines and schedulers on one store and one clock (``A`` starts first)."""

    def __init__(self, clock: FakeClock, ttl: float = 30) -> None:
        self.clock = clock
        self.store = MemoryStore()
        self.engines = [make_engine(self.store, clock, server_id=n) for n in "AB"]
        for e in self.engines:
            e.start()
        self.scheds = [Scheduler(e, lease_ttl=ttl, clock=clock, background=False)
                       for e in self.engines]
        for s in self.scheds:
            s.start()

    def step(self) -> None:
        for e in self.engines:
            settle(e)
        for s in self.scheds:
            s.step()

    def at(self, sched: Scheduler, when: float) -> None:
        """One server's step at ``when`` (the other is stopped, or stalled)."""
        for e in self.engines:
            settle(e)
        at(self.clock, sched, when)

    def all_runs(self, schedule_id: str) -> list[float | None]:
        return [t.scheduled_for for t in runs(self.engines[0], schedule_id)]

    def close(self) -> None:
        for s in self.scheds:
            s.stop()
        for e in self.engines:
            for t in e.live_tasks():
                e.wait(t.id, 10)
        for e in self.engines:
            e.stop()


def test_of_two_servers_only_the_lease_holder_fires(clock: FakeClock) -> None:
    servers = TwoServers(clock)
    a, b = servers.scheds
    try:
        s = b.create(ScheduleSpec("noop", every=10))  # made on either server
        for k in range(1, 4):
            clock.now = T0 + 10 * k
            servers.step()
        assert a.holding and not b.holding
        assert servers.store.lease_holder(LEASE, clock.now) == "A"
        assert servers.all_runs(s.id) == [T0 + 10, T0 + 20, T0 + 30]
        assert all(t.server_id == "A" for t in runs(servers.engines[0], s.id))
    finally:
        servers.close()


def test_when_the_holder_stops_the_other_takes_over_at_its_next_lease_attempt(
        clock: FakeClock) -> None:
    servers = TwoServers(clock)
    a, b = servers.scheds
    try:
        s = a.create(ScheduleSpec("noop", every=10))
        clock.now = T0 + 10
        servers.step()
        # When A stops (it gives the lease up) and B's next lease attempt comes (ttl/3)
        a.stop()
        servers.at(b, T0 + 20)
        # Then B holds it and fires; no fire time ran twice or was lost
        assert b.holding
        servers.at(b, T0 + 30)
        assert servers.all_runs(s.id) == [T0 + 10, T0 + 20, T0 + 30]
    finally:
        servers.close()


def test_when_the_holder_dies_the_other_fires_within_the_lease_time(clock: FakeClock) -> None:
    servers = TwoServers(clock, ttl=30)
    a, b = servers.scheds
    try:
        s = a.create(ScheduleSpec("noop", every=10))
        clock.now = T0 + 10
        servers.step()  # A takes the lease at T0+10 and fires
        # When A then dies (never steps again, never gives the lease up), and B's loop
        # runs as it would, waking when its step says
        wake = b.step()
        while not b.holding:
            assert wake <= T0 + 10 + 30
            servers.at(b, wake)
            wake = b.step()
        # Then B holds the lease within the lease time of A's death (30 s), and the fire
        # times missed meanwhile became one run (misfire = coalesce)
        assert clock.now <= T0 + 40
        assert servers.all_runs(s.id) == [T0 + 10, T0 + 30]
        # and should A come back, its renewal fails and it fires nothing: each time once
        clock.now = T0 + 40
        servers.step()
        assert not a.holding and b.holding
        assert servers.all_runs(s.id) == [T0 + 10, T0 + 30, T0 + 40]
    finally:
        servers.close()


def test_a_definition_changed_on_another_server_is_followed(clock: FakeClock) -> None:
    servers = TwoServers(clock)
    a, b = servers.scheds
    try:
        s = a.create(ScheduleSpec("noop", every=10))
        clock.now = T0 + 10
        servers.step()
        # When B (not the holder) disables it
        clock.now = T0 + 15
        b.patch(s.id, {"enabled": False})
        # Then A, the holder, fires it no more (it reads the record it fires)
        clock.now = T0 + 20
        servers.step()
        assert servers.all_runs(s.id) == [T0 + 10]
        # and a schedule made on B is fired by A from its next lease renewal on
        t = b.create(ScheduleSpec("noop", every=1))
        for now in (T0 + 21, T0 + 30):
            clock.now = now
            servers.step()
        assert servers.all_runs(t.id) == [T0 + 30]
        assert a.get(t.id).last_run_id is not None
    finally:
        servers.close()


def test_run_schedules_false_never_takes_the_lease(engine: Engine, clock: FakeClock) -> None:
    s = Scheduler(engine, run_schedules=False, lease_ttl=30, clock=clock, background=False)
    s.start()
    try:
        made = s.create(ScheduleSpec("noop", every=10))
        at(clock, s, T0 + 10)
        at(clock, s, T0 + 20)
        assert not s.holding and engine.store.lease_holder(LEASE, clock.now) is None
        assert runs(engine, made.id) == []
    finally:
        s.stop()


def test_lease_ttl_must_be_positive(engine: Engine) -> None:
    for bad in (0, -1, float("nan"), True, "10"):
        with pytest.raises(InvalidInput) as err:
            Scheduler(engine, lease_ttl=bad)  # type: ignore[arg-type]
        assert err.value.field == "lease_ttl"
