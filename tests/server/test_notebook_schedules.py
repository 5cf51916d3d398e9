"""Schedules of notebook jobs over REST: ``POST schedules {"kind": "notebook", ...}`` checks
the notebook as a task would be checked (400 naming ``params.path``, nothing stored),
and each fire time runs the notebook in a worker, writing its executed copy. A real
server (pytest-jupyter, its root_dir a temp dir), its real scheduler and process worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .test_rest import call


def _report(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('n squared is', n * n)")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture
def report(jp_root_dir: Path) -> str:
    """``reports/daily.ipynb`` under the server's root, and a file that is not a notebook."""
    _report(jp_root_dir / "reports" / "daily.ipynb")
    (jp_root_dir / "reports" / "notes.txt").write_text("not a notebook")
    return "reports/daily.ipynb"


@pytest.mark.parametrize("path", ["reports/missing.ipynb", "../daily.ipynb", "/etc/daily.ipynb",
                                  "reports/notes.txt", "reports", ""])
async def test_a_notebook_schedule_with_a_bad_path_is_refused_naming_it(
        bgtasks_app: Any, jp_fetch: Any, report: str, path: str) -> None:
    # When a user makes a schedule of a notebook that cannot run
    body = {"kind": "notebook", "params": {"path": path}, "every": 60}
    code, reply = await call(jp_fetch, "schedules", method="POST", body=body)
    # Then it is a 400 naming params.path, and no schedule is stored
    assert code == 400 and reply["field"] == "params.path", reply
    assert (await call(jp_fetch, "schedules"))[1]["schedules"] == []
    # And the preview (check_only) says the same
    code, reply = await call(jp_fetch, "schedules", method="POST", body=body,
                             params={"check_only": "true"})
    assert code == 400 and reply["field"] == "params.path", reply


async def test_a_notebook_schedule_refuses_a_bad_parameter_name(bgtasks_app: Any, jp_fetch: Any,
                                                                report: str) -> None:
    body = {"kind": "notebook", "params": {"path": report, "parameters": {"not a name": 1}},
            "every": 60}
    code, reply = await call(jp_fetch, "schedules", method="POST", body=body)
    assert code == 400 and reply["field"].startswith("params.parameters"), reply
    assert (await call(jp_fetch, "schedules"))[1]["schedules"] == []


async def test_a_notebook_schedule_fires_jobs_that_write_executed_copies(
        bgtasks_app: Any, jp_fetch: Any, jp_root_dir: Path, report: str) -> None:
    # Given a schedule of the notebook with n=7, every second
    body = {"kind": "notebook", "params": {"path": report, "parameters": {"n": 7}}, "every": 1,
            "name": "daily report"}
    code, schedule = await call(jp_fetch, "schedules", method="POST", body=body)
    assert code == 201, schedule
    try:
        # When it fires, and a run ends
        finished: list[dict[str, Any]] = []
        for _ in range(1200):
            code, page = await call(jp_fetch, "tasks", params={"schedule_id": schedule["id"]})
            ended = [t for t in page["tasks"] if t["state"] in ("finished", "failed", "cancelled")]
            finished = [t for t in ended if t["state"] == "finished"]
            assert len(ended) == len(finished), ended
            if finished:
                break
            await asyncio.sleep(0.1)
    finally:
        await call(jp_fetch, "schedules", schedule["id"], method="DELETE")
    # Then the run is a notebook task of that schedule, with its parameters
    assert finished, "no run finished"
    run = finished[0]
    assert run["kind"] == "notebook" and run["schedule_id"] == schedule["id"]
    assert run["params"]["parameters"] == {"n": 7} and run["name"] == "daily report"
    # And it wrote its executed copy beside the notebook, run with n=7
    copy = run["result_preview"]["executed_copy"]
    assert copy.startswith("reports/daily.") and copy.endswith(".ipynb") and copy != report
    nb = nbformat.read(jp_root_dir / copy, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "n squared is 49" in text
