"""Values that used to get through and then break things: non-finite progress, oversized
origins, coerced parameters, reports for a task nobody claimed. Against a real server
subprocess and its real workers; every reply must stay strict JSON and no listing fail.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Iterator

import cloudpickle
import pytest
import requests

from bgtasks_ext.kinds.code import CodeJob
from tests.server_process import ServerProcess


def _strict(text: str) -> Any:
    """Parse as strict JSON: ``NaN``/``Infinity`` are not JSON."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"not strict JSON: {name} in {text[:300]}")
    return json.loads(text, parse_constant=refuse)


def _wait_end(srv: ServerProcess, task_id: str) -> dict[str, Any]:
    """The ended task, its record read as strict JSON."""
    srv.wait_end(task_id)
    return dict(_strict(srv.call("GET", f"tasks/{task_id}").text))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("badvalues")
    with ServerProcess(root, root / "tasks.sqlite") as srv:
        yield srv


def _reports(*values: tuple[Any, Any]) -> None:
    import time as t

    from bgtasks_ext import progress

    for current, total in values:
        progress(current, total, message=f"{current} of {total}")
        t.sleep(0.06)  # one send per report (they are coalesced 20/s)


@pytest.mark.parametrize("values", [
    ((float("nan"), 10),),
    ((1, float("inf")),),
    ((float("-inf"), float("nan")),),
    ((2, 10), ("three", 10), (None, 10)),
])
def test_non_finite_progress_never_breaks_a_listing(server: ServerProcess, values: Any) -> None:
    # Given a task that reports progress a listing cannot hold as JSON
    job = CodeJob(mode="call", fn=_reports, args=values)
    payload = base64.b64encode(cloudpickle.dumps(job)).decode()
    reply = server.call("POST", "tasks", json={"kind": "code", "payload": payload})
    assert reply.status_code == 201, reply.text
    # When it has run, Then the task, the listing and the snapshot are strict JSON
    task = _wait_end(server, reply.json()["id"])
    assert task["state"] == "finished", task
    progress = task["progress"]
    assert progress["total"] in (None, 10.0) and isinstance(progress["current"], float)
    listing = server.call("GET", "tasks")
    assert listing.status_code == 200
    assert task["id"] in [t["id"] for t in _strict(listing.text)["tasks"]]


def test_non_finite_progress_over_rest_is_a_400(server: ServerProcess) -> None:
    for body in ('{"current": NaN}', '{"current": 1, "total": Infinity}'):
        reply = requests.post(server.api + "tasks/any/progress", data=body, timeout=30,
                              headers={**server.headers, "Content-Type": "application/json"})
        assert reply.status_code == 400, reply.text
        assert reply.json()["field"] in ("body", "current", "total")


def test_a_huge_origin_path_is_refused_and_nothing_stored(server: ServerProcess) -> None:
    before = _strict(server.call("GET", "tasks?limit=500").text)["tasks"]
    reply = server.call("POST", "tasks", json={"kind": "sleep", "params": {"seconds": 0},
                                                  "origin": {"path": "a/" * 500_000}})
    assert reply.status_code == 400 and reply.json()["field"] == "origin.path", reply.text
    assert _strict(server.call("GET", "tasks?limit=500").text)["tasks"] == before


@pytest.mark.parametrize("params,field", [
    ({"seconds": "1"}, "params.seconds"),
    ({"seconds": True}, "params.seconds"),
])
def test_kind_parameters_are_strict(server: ServerProcess, params: dict[str, Any], field: str) -> None:
    reply = server.call("POST", "tasks", json={"kind": "sleep", "params": params})
    assert reply.status_code == 400 and reply.json()["field"] == field, reply.text
    # (the documented type still works, ints for floats included)
    ok = server.call("POST", "tasks", json={"kind": "sleep", "params": {"seconds": 0}})
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize("route,body", [("progress", {"current": 1}), ("log", {"text": "hi"})])
def test_reports_for_an_unclaimed_kernel_task_are_409(server: ServerProcess, route: str, body: Any) -> None:
    # Given a kernel-executor task its kernel has not claimed
    reply = server.call("POST", "tasks", json={"kind": "sleep", "executor": "kernel",
                                                  "origin": {"kernel_id": "k-unclaimed"}})
    task_id = reply.json()["id"]
    # When a report comes for it / Then 409, not a silent drop
    answer = server.call("POST", f"tasks/{task_id}/{route}", json=body)
    assert answer.status_code == 409, answer.text
    assert "claim" in answer.json()["message"]
    server.call("POST", f"tasks/{task_id}/cancel")


def test_strict_json_replies_have_no_nan(server: ServerProcess, tmp_path: Path) -> None:
    # A result whose preview would be NaN is served as strict JSON too
    job = CodeJob(mode="call", fn=float, args=("nan",))
    payload = base64.b64encode(cloudpickle.dumps(job)).decode()
    task_id = server.call("POST", "tasks", json={"kind": "code", "payload": payload}).json()["id"]
    task = _wait_end(server, task_id)
    assert task["state"] == "finished"
    _strict(server.call("GET", f"tasks/{task_id}/result").text)
