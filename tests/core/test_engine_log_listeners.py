"""``Engine.subscribe_logs``: who is told that a task's log grew, and when (after the
commit, so a reader woken by it finds the text)."""

from __future__ import annotations

import threading

from bgtasks_ext.core.engine import Engine
from bgtasks_ext.core.models import TaskSpec

from .test_engine import engine  # noqa: F401 - the fixture: a started engine on each store


def test_a_log_listener_hears_of_appends_once_they_are_stored(engine: Engine) -> None:
    # Given a listener that reads the log as soon as it is told
    read: list[str] = []
    told: list[set[str]] = []
    heard = threading.Event()

    def listener(task_ids: set[str]) -> None:
        told.append(task_ids)
        read.append(engine.store.read_log(next(iter(task_ids))).text)
        heard.set()

    unsubscribe = engine.subscribe_logs(listener)
    task = engine.submit(TaskSpec("echo", {"value": 1}))
    engine.wait(task.id, 10)
    # When text is appended to the task's log
    engine.log(task.id, "hello\n")
    # Then the listener is told which task, and the text is there to read
    assert heard.wait(10)
    assert told == [{task.id}] and read == ["hello\n"]
    # And after unsubscribing it hears nothing more
    unsubscribe()
    engine.log(task.id, "more\n")
    engine.flush()
    assert told == [{task.id}]


def test_print_output_of_a_task_reaches_the_listener(engine: Engine) -> None:
    grown: set[str] = set()
    engine.subscribe_logs(grown.update)
    task = engine.submit(TaskSpec("talk", {"lines": 3}))
    engine.wait(task.id, 10)
    engine.flush()
    assert task.id in grown
