"""``Engine.set_note`` (what a task's notebook says about it) and ``create`` with an id
reserved beforehand: in every state, durable, told to listeners, harming nothing."""

from __future__ import annotations

import time

import pytest

from bgtasks_ext.core.engine import Engine
from bgtasks_ext.core.errors import Conflict, InvalidInput, NotFound
from bgtasks_ext.core.models import TaskEvent, TaskFilter, TaskSpec, new_id
from bgtasks_ext.core.states import State
from bgtasks_ext.store import codec

from .test_engine import engine  # noqa: F401 - the fixture: a started engine on each store


def _until(engine: Engine, task_id: str, state: State, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while engine.get(task_id).state is not state:
        assert time.monotonic() < deadline, engine.get(task_id)
        time.sleep(0.01)


def test_a_note_set_while_running_is_stored_told_and_carried_to_the_end(engine: Engine) -> None:
    # Given a running task that reported progress, and a listener
    events: list[TaskEvent] = []
    engine.subscribe(events.append)
    task = engine.submit(TaskSpec("steps_then_wait", {"steps": 2}))
    _until(engine, task.id, State.RUNNING)
    deadline = time.monotonic() + 10
    while engine.get(task.id).progress.current < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    before = engine.get(task.id)
    # When the notebook sets its note
    noted = engine.set_note(task.id, "outputs set: a, b")
    # Then only the note changed, it is stored already, and listeners heard a "note" change
    assert noted.note == "outputs set: a, b"
    assert noted.evolve(note=None) == before
    assert engine.store.get(task.id).note == "outputs set: a, b"  # type: ignore[union-attr]
    assert [e.task.note for e in events if e.change == "note"] == ["outputs set: a, b"]
    # And the task's later changes keep it, to its terminal record
    engine.cancel(task.id)
    done = engine.wait(task.id, 10)
    assert done.state is State.CANCELLED and done.note == "outputs set: a, b"
    assert engine.store.get(task.id).note == "outputs set: a, b"  # type: ignore[union-attr]


def test_a_note_on_an_ended_task_is_stored_listed_and_cleared(engine: Engine) -> None:
    # Given a finished task
    task = engine.submit(TaskSpec("echo", {"value": 7}))
    done = engine.wait(task.id, 10)
    events: list[TaskEvent] = []
    engine.subscribe(events.append)
    # When a note is set on it
    noted = engine.set_note(task.id, "superseded task 0193")
    # Then it is served from the store, in listings too, and nothing else changed
    assert noted == done.evolve(note="superseded task 0193")
    assert engine.get(task.id) == noted
    listed = engine.list(TaskFilter(), 10).tasks
    assert [t.note for t in listed if t.id == task.id] == ["superseded task 0193"]
    assert engine.result_payload(task.id)  # the result is still there
    assert [(e.change, e.task.note) for e in events] == [("note", "superseded task 0193")]
    # And "" and None clear it
    assert engine.set_note(task.id, "").note is None
    engine.set_note(task.id, "again")
    assert engine.set_note(task.id, None).note is None
    assert engine.get(task.id) == done


def test_a_pending_task_takes_a_note_and_stays_pending(engine: Engine) -> None:
    task = engine.submit(TaskSpec("noop", run_on=time.time() + 3600))
    noted = engine.set_note(task.id, "line one\n\tline two")
    assert noted.state is State.PENDING and noted.note == "line one\n\tline two"
    assert engine.store.get(task.id) == noted
    # A cancel later keeps it
    assert engine.cancel(task.id).note == "line one\n\tline two"


@pytest.mark.parametrize("note", ["x" * 1001, "bell\x07", "carriage\rreturn", "esc\x1b[2J",
                                  "c1\x85", "nul\x00", 5, ["a"], "lone \ud800"])
def test_a_bad_note_is_refused_naming_note_and_changes_nothing(engine: Engine, note: object) -> None:
    task = engine.submit(TaskSpec("echo", {"value": 1}))
    engine.wait(task.id, 10)
    engine.set_note(task.id, "kept")
    with pytest.raises(InvalidInput) as err:
        engine.set_note(task.id, note)  # type: ignore[arg-type]
    assert err.value.field == "note"
    assert engine.get(task.id).note == "kept"


def test_the_longest_note_is_taken() -> None:
    from bgtasks_ext.core.notes import NOTE_LIMIT, check_note

    assert check_note("é" * NOTE_LIMIT) == "é" * NOTE_LIMIT


def test_a_note_for_no_task_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound):
        engine.set_note("no-such-task", "x")
    # nor for a deleted one, which it does not bring back
    task = engine.submit(TaskSpec("noop"))
    engine.wait(task.id, 10)
    engine.delete(task.id)
    with pytest.raises(NotFound):
        engine.set_note(task.id, "x")
    assert engine.store.get(task.id) is None


def test_a_record_stored_before_notes_existed_loads_without_one() -> None:
    task = codec.from_record({"id": "a", "kind": "noop", "name": "noop", "state": "finished",
                              "created_at": 1.0, "executor": "thread"})
    assert task.note is None and task.to_json()["note"] is None


def test_create_with_a_reserved_id_uses_it(engine: Engine) -> None:
    # Given an id made beforehand (as the server's reservations do)
    reserved = new_id()
    # When the task is created with it
    task, created = engine.create(TaskSpec("echo", {"value": 3}), reserved)
    # Then the task has exactly that id, and runs as any other
    assert created and task.id == reserved
    assert engine.wait(reserved, 10).result_preview == 3
    # And an id already live is refused, not shared
    later = engine.submit(TaskSpec("noop", run_on=time.time() + 3600))
    with pytest.raises(Conflict):
        engine.create(TaskSpec("noop"), later.id)
    assert [t.id for t in engine.live_tasks()] == [later.id]


async def test_acreate_with_a_reserved_id_and_a_key_held_returns_the_holder(engine: Engine) -> None:
    holder = engine.submit(TaskSpec("noop", key="k", run_on=time.time() + 3600))
    task, created = await engine.acreate(TaskSpec("noop", key="k"), new_id())
    assert (task.id, created) == (holder.id, False)
    fresh, created = await engine.acreate(TaskSpec("echo", {"value": 1}), reserved := new_id())
    assert created and fresh.id == reserved
