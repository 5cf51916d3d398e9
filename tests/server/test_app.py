"""The extension inside a real Jupyter server: the engine starts and stops with it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from bgtasks_ext.core.models import TaskSpec
from bgtasks_ext.core.states import State
from bgtasks_ext.server.app import BgTasks


async def test_engine_runs_inside_the_server(bgtasks_app: Any, tmp_path: Path) -> None:
    # Given a server started with the extension
    engine = bgtasks_app.web_app.settings["bgtasks_engine"]
    # Then the engine is up on its SQLite file
    assert engine.running
    assert (tmp_path / "store" / "tasks.sqlite").exists()
    # When a count task is submitted (process executor by default)
    task = await engine.asubmit(TaskSpec("count", {"times": 2, "interval": 0.05}))
    done = await asyncio.get_running_loop().run_in_executor(None, engine.wait, task.id, 30)
    # Then it ran in a worker process and finished
    assert done.state is State.FINISHED and done.executor == "process"
    assert done.result_preview == 2
    assert "round 2 of 2" in engine.read_log(task.id).text


@pytest.mark.parametrize(
    "trait,value,message",
    [
        ("default_executor", "gpu", "BgTasks.default_executor"),
        ("workers", -1, "BgTasks.workers"),
        ("thread_workers", -2, "BgTasks.thread_workers"),
        ("log_cap", 0, "BgTasks.log_cap"),
        ("default_timeout", -1.0, "BgTasks.default_timeout"),
        ("keep_tasks", -5, "BgTasks.keep_tasks"),
        ("keep_days", -1.0, "BgTasks.keep_days"),
        ("cancel_grace", -0.5, "BgTasks.cancel_grace"),
        ("extra_kinds", ["no_colon_here"], "BgTasks.extra_kinds"),
        ("store_class", "builtins.dict", "store_class"),
        ("workers", "many", "workers"),
        ("kernel_secret", "short", "BgTasks.kernel_secret"),
        ("events_progress_interval", 0.0, "BgTasks.events_progress_interval"),
        ("events_max_buffer", 0, "BgTasks.events_max_buffer"),
        ("max_result_bytes", 0, "max_result_bytes"),
        ("max_result_bytes", "big", "max_result_bytes"),
        ("max_tasks_per_worker", -1, "max_tasks_per_worker"),
        ("task_memory_limit", -1, "task_memory_limit"),
        ("run_schedules", "yes", "run_schedules"),
        ("lease_time", 0.5, "lease_time"),
        ("lease_time", "long", "lease_time"),
        ("workers_at_start", [{"kind": "count"}], "BgTasks.workers_at_start[0].name"),
        ("workers_at_start", [{"name": "w"}], "BgTasks.workers_at_start[0].kind"),
        ("workers_at_start", ["count"], "workers_at_start"),
        ("workers_at_start", {"kind": "count"}, "workers_at_start"),
    ],
)
def test_bad_trait_values_are_refused_by_name(trait: str, value: object, message: str) -> None:
    # When a trait gets a bad value / Then traitlets refuses it with the trait's name
    with pytest.raises(TraitError) as exc:
        BgTasks(**{trait: value})
    assert message in str(exc.value)


def test_unimportable_extra_kind_is_refused_at_start(tmp_path: Path) -> None:
    app = BgTasks(extra_kinds=["no_such_module_xyz:thing"], store_path=str(tmp_path / "t.sqlite"))
    with pytest.raises(Exception, match="no_such_module_xyz"):
        app.make_engine()


def test_a_server_with_a_bad_trait_says_so_and_runs_no_engine(tmp_path: Path) -> None:
    # Given a bad value on the command line
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    # When the server starts (Jupyter keeps serving when one extension fails to load)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
         "--ServerApp.port=0", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
         "--BgTasks.workers=-3", f"--ServerApp.root_dir={tmp_path}"],
        stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    lines = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "is running at" in line:
                break
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(10)
    log = "".join(lines)
    # Then the log names the trait and the value, and no engine started
    assert "BgTasks.workers: must not be negative, not -3" in log, log
    assert "engine started" not in log
