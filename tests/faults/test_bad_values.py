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


# -- numbers are numbers: a JSON true is never 1 (issue 10, item 15) ----------------------
def _numeric_params(server: ServerProcess) -> list[tuple[str, str]]:
    """(kind, parameter) for every integer or number parameter of every kind served."""
    kinds = server.call("GET", "kinds").json()["kinds"]
    return [(k["name"], name) for k in kinds for name, prop in k["schema"].get("properties", {}).items()
            if prop.get("type") in ("integer", "number")
            or {"integer", "number"} & {p.get("type") for p in prop.get("anyOf", [])}]


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_refused_wherever_a_number_is_expected(server: ServerProcess, flag: bool) -> None:
    # Given every numeric field a client can send: the create body's and every kind's params
    numeric = _numeric_params(server)
    assert ("count", "times") in numeric and ("sleep", "seconds") in numeric
    bodies: list[tuple[dict[str, Any], str]] = [
        ({"kind": "sleep", field: flag}, field) for field in ("timeout", "retries", "run_on")
    ]
    bodies += [({"kind": kind, "params": {name: flag}}, f"params.{name}") for kind, name in numeric]
    before = _strict(server.call("GET", "tasks?limit=1000").text)["tasks"]
    for body, field in bodies:
        # When it carries a boolean / Then 400 naming that field
        reply = server.call("POST", "tasks", json=body)
        assert reply.status_code == 400, (body, reply.text)
        assert reply.json()["field"] == field, (body, reply.text)
    # And nothing was stored
    assert _strict(server.call("GET", "tasks?limit=1000").text)["tasks"] == before


def test_a_boolean_progress_report_is_refused(server: ServerProcess) -> None:
    # Given a kernel task its kernel has claimed
    task_id = server.call("POST", "tasks", json={"kind": "sleep", "executor": "kernel",
                                                   "origin": {"kernel_id": "k-bool"}}).json()["id"]
    assert server.call("POST", f"tasks/{task_id}/claim").status_code == 200
    # When its progress comes as booleans / Then 400 naming the field
    for body, field in (({"current": True}, "current"), ({"current": 1, "total": True}, "total")):
        reply = server.call("POST", f"tasks/{task_id}/progress", json=body)
        assert (reply.status_code, reply.json().get("field")) == (400, field), reply.text
    server.call("POST", f"tasks/{task_id}/cancel")


@pytest.mark.parametrize("field", ["timeout", "run_on", "retries"])
def test_a_python_caller_cannot_pass_a_boolean_for_a_number(field: str) -> None:
    # Given an engine driven from Python (as a kernel-side or embedded caller does)
    from bgtasks_ext.core.engine import Engine, EngineConfig
    from bgtasks_ext.core.errors import InvalidInput
    from bgtasks_ext.core.models import TaskSpec
    from bgtasks_ext.executors.thread import ThreadExecutor
    from bgtasks_ext.kinds import default_registry
    from bgtasks_ext.store.memory import MemoryStore

    engine = Engine(MemoryStore(), {"thread": ThreadExecutor(workers=1)}, default_registry(),
                    EngineConfig(default_executor="thread"))
    with engine:
        # When a spec carries True for a number / Then it is refused, naming the field
        with pytest.raises(InvalidInput) as caught:
            engine.create(TaskSpec("sleep", **{field: True}))
        assert caught.value.field == field
        assert engine.list().tasks == []


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "99999999999999999999", "1.5", "true", ""])
def test_limit_outside_its_one_range_is_a_400_naming_it(server: ServerProcess, limit: str) -> None:
    # When a listing asks for a page size outside 1..1000, negative or too big alike
    reply = server.call("GET", f"tasks?limit={limit}")
    # Then one rule, one message
    assert reply.status_code == 400, reply.text
    assert reply.json()["field"] == "limit"
    assert "from 1 to 1000" in reply.json()["message"], reply.text
    for ok in ("1", "1000"):
        assert server.call("GET", f"tasks?limit={ok}").status_code == 200
