"""A process that runs the engine and gets ``kill -9``-ed by test_kill9.py.

It prints one JSON line per fact the parent needs: the ids it submitted (each
printed only after ``submit`` returned, i.e. once acknowledged), and when the long
tasks are running.
"""

from __future__ import annotations

import json
import os
import sys
import time

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import TaskSpec
from bgtasks_ext.core.states import State
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.test_engine import registry


def say(**fact: object) -> None:
    sys.stdout.write(json.dumps(fact) + "\n")
    sys.stdout.flush()


def main(db: str, executor: str, marker: str) -> None:
    if executor == "process":
        from bgtasks_ext.executors.process import ProcessExecutor

        execs = {"process": ProcessExecutor(workers=2)}
    else:
        from bgtasks_ext.executors.thread import ThreadExecutor

        execs = {"thread": ThreadExecutor(4)}  # type: ignore[dict-item]
    engine = Engine(SQLiteStore(db), execs, registry(), EngineConfig(default_executor=executor))
    engine.start()
    running = engine.submit(TaskSpec("blocked", {"seconds": 60}, name="victim"))
    retried = engine.submit(TaskSpec("once_slow", {"marker": marker}, retries=1, name="retried"))
    delayed = engine.submit(TaskSpec("echo", {"value": "late"}, run_on=time.time() + 2, name="delayed"))
    say(running=running.id, retried=retried.id, delayed=delayed.id)
    # Running for real: claimed, and the retried task's first run has begun (its marker).
    while not (all(engine.get(t.id).state is State.RUNNING for t in (running, retried))
               and os.path.exists(marker)):
        time.sleep(0.01)
    say(state="running")
    # Keep submitting: the parent kills us right after one of these acks.
    while True:
        task = engine.submit(TaskSpec("noop", name="acked"))
        say(acked=task.id)


if __name__ == "__main__":
    main(*sys.argv[1:4])
