"""A server (engine + scheduler, no Jupyter) on an SQLite file, for test_scheduler_failover:
it prints ``{"server_id": ..., "holding": true}`` once it fires schedules, then runs
until it is killed."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

from bgtasks_ext.scheduling.service import Scheduler
from bgtasks_ext.store.sqlite import SQLiteStore

from tests.core.scheduler_fixtures import make_engine
from tests.core.test_engine import FAST


def main(db: str, ttl: str) -> None:
    engine = make_engine(SQLiteStore(db), config=replace(FAST, lease_ttl=float(ttl)))
    engine.start()
    scheduler = Scheduler(engine, lease_ttl=float(ttl))
    scheduler.start()
    while not scheduler.holding:
        time.sleep(0.01)
    sys.stdout.write(json.dumps({"server_id": engine.server_id, "holding": True}) + "\n")
    sys.stdout.flush()
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(*sys.argv[1:3])
