"""Reserving a task's id before a big upload: ``POST tasks?check_only=true&reserve=true``
answers an id, ``POST tasks?reserved=<id>`` creates the task with it, once. Against a
real server; the table itself (expiry, bound) with a fake clock."""

from __future__ import annotations

import json
import sys
from typing import Any

import cloudpickle
import pytest
from urllib3 import encode_multipart_formdata

from bgtasks_ext.kinds.code import CodeJob
from bgtasks_ext.server.reservations import Reservations

from .test_rest import call, wait_state

LATER = {"kind": "count", "run_on": "2999-01-01T00:00:00Z"}


@pytest.fixture
def jp_server_config(jp_server_config: dict[str, Any]) -> dict[str, Any]:
    jp_server_config["ServerApp"]["max_body_size"] = 2 << 20
    return jp_server_config


def table(app: Any) -> int:
    """How many ids the server holds reserved (0 before the first reservation)."""
    reservations = app.web_app.settings.get("bgtasks_reservations")
    return 0 if reservations is None else len(reservations)


async def reserve(jp_fetch: Any, body: Any = LATER, **params: Any) -> tuple[int, Any]:
    return await call(jp_fetch, "tasks", method="POST", body=body,
                      params={"check_only": "true", "reserve": "true", **params})


async def test_a_reserved_id_becomes_the_tasks_id_once(bgtasks_app: Any, jp_fetch: Any) -> None:
    # When a client checks a task and asks for its id
    code, reply = await reserve(jp_fetch, {"kind": "count", "params": {"times": 2}}, payload_size=0)
    # Then it gets a fresh id, and nothing is created yet
    assert code == 200 and set(reply) == {"id"} and len(reply["id"]) == 32
    assert (await call(jp_fetch, "tasks", reply["id"]))[0] == 404
    # When it creates the task with that id
    code, task = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]},
                            body={"kind": "count", "params": {"times": 2}})
    # Then the task has exactly that id, and runs as any other
    assert code == 201 and task["id"] == reply["id"]
    assert (await wait_state(jp_fetch, task["id"], "finished"))["result_preview"] == 2
    # And the id cannot be used a second time
    code, err = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]}, body=LATER)
    assert (code, err["field"]) == (400, "reserved")
    assert "not reserved here, already used, or expired" in err["message"]


async def test_without_reserve_a_check_stays_204(bgtasks_app: Any, jp_fetch: Any) -> None:
    for params in ({"check_only": "true"}, {"check_only": "true", "reserve": "false"}):
        code, body = await call(jp_fetch, "tasks", method="POST", body=LATER, params=params)
        assert (code, body) == (204, None)
    assert table(bgtasks_app) == 0
    _, page = await call(jp_fetch, "tasks")
    assert page["tasks"] == []


async def test_a_raw_payload_upload_creates_the_reserved_task(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given a code task's spec and its pickled job, checked with their size first
    job = cloudpickle.dumps(CodeJob(mode="cell", source="n = 6 * 7\nn", inputs={}, outputs=["n"]))
    spec = {"kind": "code", "python": sys.executable}
    code, reply = await reserve(jp_fetch, spec, payload_size=len(job))
    assert code == 200
    # When the multipart body (spec + raw payload) comes with the reserved id
    body, content_type = encode_multipart_formdata({
        "spec": (None, json.dumps(spec), "application/json"),
        "payload": ("job.pkl", job, "application/octet-stream")})
    code, task = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]},
                            body=body, headers={"Content-Type": content_type})
    # Then that task is created and a worker runs it
    assert code == 201 and task["id"] == reply["id"]
    assert (await wait_state(jp_fetch, task["id"], "finished", "failed", timeout=60))["state"] == "finished"


@pytest.mark.parametrize("reserved", ["", "0193aa00000000000000000000000000", "x" * 5000, "../tasks"])
async def test_an_id_not_reserved_here_is_400_and_creates_nothing(
    bgtasks_app: Any, jp_fetch: Any, reserved: str
) -> None:
    code, err = await call(jp_fetch, "tasks", method="POST", params={"reserved": reserved}, body=LATER)
    assert (code, err["field"]) == (400, "reserved"), err
    _, page = await call(jp_fetch, "tasks")
    assert page["tasks"] == []


@pytest.mark.parametrize(("params", "field"), [
    ({"check_only": "true", "reserve": "yes"}, "reserve"),
    ({"check_only": "true", "reserve": "True"}, "reserve"),
    ({"check_only": "true", "reserve": "1"}, "reserve"),
    ({"check_only": "true", "reserve": ""}, "reserve"),
    ({"reserve": "true"}, "reserve"),  # a reservation comes only with a check
    ({"check_only": "true", "reserved": "0193aa00000000000000000000000000"}, "reserved"),
])
async def test_bad_reservation_queries_are_400(
    bgtasks_app: Any, jp_fetch: Any, params: dict[str, str], field: str
) -> None:
    code, err = await call(jp_fetch, "tasks", method="POST", body=LATER, params=params)
    assert (code, err["field"]) == (400, field), err
    assert table(bgtasks_app) == 0
    _, page = await call(jp_fetch, "tasks")
    assert page["tasks"] == []


async def test_a_refused_check_reserves_nothing(bgtasks_app: Any, jp_fetch: Any) -> None:
    # A payload over the server's max_body_size: 413, no id
    code, err = await reserve(jp_fetch, {"kind": "code", "python": sys.executable}, payload_size=3 << 20)
    assert (code, err["field"]) == (413, "payload") and "id" not in err
    # A spec the engine refuses: 400 naming its field, no id
    code, err = await reserve(jp_fetch, {"kind": "no-such-kind"})
    assert (code, err["field"]) == (400, "kind") and "id" not in err
    code, err = await reserve(jp_fetch, {"kind": "count", "params": {"times": "3"}})
    assert (code, err["field"]) == (400, "params.times")
    assert table(bgtasks_app) == 0


async def test_a_refused_create_keeps_the_reservation_for_a_corrected_request(
    bgtasks_app: Any, jp_fetch: Any
) -> None:
    _, reply = await reserve(jp_fetch)
    # When the create with the reserved id is refused (bad spec)
    code, err = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]},
                           body={"kind": "count", "timeout": -1})
    assert (code, err["field"]) == (400, "timeout")
    # Then the same id still creates the corrected task
    code, task = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]}, body=LATER)
    assert code == 201 and task["id"] == reply["id"]


async def test_a_live_key_holder_is_returned_and_the_reservation_used_up(
    bgtasks_app: Any, jp_fetch: Any
) -> None:
    # Given a live task holding a key, and an id reserved for another task with that key
    code, holder = await call(jp_fetch, "tasks", method="POST", body={**LATER, "key": "nightly"})
    assert code == 201
    _, reply = await reserve(jp_fetch, {**LATER, "key": "nightly"})
    # When the task is created with the reserved id
    code, task = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]},
                            body={**LATER, "key": "nightly"})
    # Then the holder is returned, as without a reservation, and nothing else is created
    assert (code, task["id"]) == (200, holder["id"])
    assert (await call(jp_fetch, "tasks", reply["id"]))[0] == 404
    # And the reservation is used up
    code, err = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]}, body=LATER)
    assert (code, err["field"]) == (400, "reserved")


async def test_the_same_reserved_upload_sent_twice_at_once_creates_one_task(
    bgtasks_app: Any, jp_fetch: Any
) -> None:
    import asyncio

    _, reply = await reserve(jp_fetch)
    results = await asyncio.gather(*(
        call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]}, body=LATER)
        for _ in range(4)))
    assert sorted(code for code, _ in results) == [201, 400, 400, 400]
    _, page = await call(jp_fetch, "tasks")
    assert [t["id"] for t in page["tasks"]] == [reply["id"]]


# -- the table ----------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_reservation_expires_after_its_ttl() -> None:
    clock = Clock()
    table = Reservations(ttl=600, clock=clock)
    task_id = table.reserve()
    clock.now += 599
    assert table.valid(task_id)
    clock.now += 1
    assert not table.valid(task_id) and table.take(task_id) is None


def test_the_table_is_bounded_and_drops_the_oldest() -> None:
    table = Reservations(limit=3, clock=Clock())
    ids = [table.reserve() for _ in range(5)]
    assert len(table) == 3
    assert [table.valid(i) for i in ids] == [False, False, True, True, True]


def test_an_id_is_taken_once_and_can_be_given_back() -> None:
    table = Reservations(clock=Clock())
    task_id = table.reserve()
    expires = table.take(task_id)
    assert expires is not None and table.take(task_id) is None
    table.give_back(task_id, expires)
    assert table.take(task_id) == expires



async def test_a_reserved_id_reads_as_not_created_yet_until_its_task_exists(
        bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given an id reserved for a task whose inputs are still on their way
    _, reply = await reserve(jp_fetch, {"kind": "count", "params": {"times": 1}}, payload_size=0)
    # Then reading it is a 404 that says so (a view waits rather than saying it is gone)
    code, err = await call(jp_fetch, "tasks", reply["id"])
    assert code == 404 and err["reserved"] is True
    assert "still being sent" in err["message"]
    # And a made-up id is a plain 404
    code, err = await call(jp_fetch, "tasks", "0" * 32)
    assert code == 404 and "reserved" not in err
    # And once created, it is the task
    code, task = await call(jp_fetch, "tasks", method="POST", params={"reserved": reply["id"]},
                            body={"kind": "count", "params": {"times": 1}})
    assert code == 201 and (await call(jp_fetch, "tasks", reply["id"]))[0] == 200


@pytest.mark.parametrize("value", ["yes", "1", "", "True"])
async def test_check_only_is_true_or_false(bgtasks_app: Any, jp_fetch: Any, value: str) -> None:
    # A check that is not clearly asked for must not create the task, nor pass silently
    code, err = await call(jp_fetch, "tasks", method="POST", body=LATER, params={"check_only": value})
    assert (code, err["field"]) == (400, "check_only")
