"""``c.BgTasks.keep_inputs_for`` on a real server: once an ended task's input retention
has passed, ``POST tasks/{id}/retry`` answers 410 and the input's bytes are gone from
the SQLite file; a negative value is refused by name."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from bgtasks_ext.server.app import BgTasks
from tests.server.test_rest import call, wait_state
from tests.server.test_retry import _code_body


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"bgtasks_ext": True}},
        "BgTasks": {"store_path": str(tmp_path / "store" / "tasks.sqlite"), "workers": 1,
                    "keep_inputs_for": 0.0},
    }


async def test_retry_is_410_once_the_input_retention_has_passed(
        bgtasks_app: Any, jp_fetch: Any, tmp_path: Path) -> None:
    # Given a server that keeps no input after a task ends, and a cell task that ended
    _, task = await call(jp_fetch, "tasks", method="POST", body=_code_body("40 + 2", tmp_path))
    done = await wait_state(jp_fetch, task["id"], "finished", "failed", "cancelled")
    assert done["state"] == "finished", done
    # When it is retried / Then 410, saying the input is no longer kept
    code, err = await call(jp_fetch, "tasks", task["id"], "retry", method="POST", body="")
    assert code == 410 and "input" in err["message"], err
    # And the input's bytes are gone from the file, while the task and its result stay
    engine = bgtasks_app.web_app.settings["bgtasks_engine"]
    engine.flush()
    with sqlite3.connect(engine.store.path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM blobs WHERE task_id = ?", (task["id"],))]
    assert names == ["result"]
    assert (await call(jp_fetch, "tasks", task["id"]))[1]["result_preview"]["value"] == 42


def test_a_negative_retention_is_refused_by_name() -> None:
    with pytest.raises(TraitError) as exc:
        BgTasks(keep_inputs_for=-1.0)
    assert "keep_inputs_for" in str(exc.value)
    assert BgTasks(keep_inputs_for=None).keep_inputs_for is None
