"""One "server" for test_servers.py: an engine on a shared SQLite file, in a process of
its own, driven by lines on stdin and answering one JSON line each.

Commands: ``submit <json spec>`` -> ``{"id": ...}``; ``runs <schedule> <first> <n>`` ->
``{"won": [fire times it created]}`` (create_run for fire times first .. first+n-1,
started together with the parent's at a barrier file); ``get <id>`` -> the task's JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time

from bgtasks_ext.core.engine import Engine, EngineConfig
from bgtasks_ext.core.models import TaskSpec
from bgtasks_ext.executors.thread import ThreadExecutor
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.test_engine import registry


def say(**fact: object) -> None:
    sys.stdout.write(json.dumps(fact) + "\n")
    sys.stdout.flush()


def main(db: str, lease_ttl: str) -> None:
    engine = Engine(SQLiteStore(db), {"thread": ThreadExecutor(4)}, registry(),
                    EngineConfig(default_executor="thread", lease_ttl=float(lease_ttl)))
    engine.start()
    say(server_id=engine.server_id, pid=os.getpid())
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "submit":
            fields = json.loads(arg)
            if "run_in" in fields:
                fields["run_on"] = time.time() + fields.pop("run_in")
            say(id=engine.submit(TaskSpec(**fields)).id)
        elif cmd == "runs":
            schedule, first, n, barrier = arg.split()
            while not os.path.exists(barrier):
                pass
            won = [t for t in (float(first) + i for i in range(int(n)))
                   if engine.create_run(TaskSpec("noop"), schedule, t) is not None]
            say(won=won)
        elif cmd == "get":
            say(**engine.get(arg).to_json())
        elif cmd == "stop":
            break
    engine.stop()
    say(stopped=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
