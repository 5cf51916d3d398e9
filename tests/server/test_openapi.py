"""The OpenAPI document: valid, generated from the URL table, true to every reply.

The first half runs against the in-process server (pytest-jupyter). The second walks
every operation with schemathesis against a server subprocess, since schemathesis
sends synchronous requests that would block pytest-jupyter's event loop.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import jsonschema  # type: ignore[import-untyped]
import pytest
import requests
import schemathesis
import schemathesis.engine
from schemathesis.engine import Status
from schemathesis.engine import events as engine_events
from schemathesis.specs.openapi import definitions
from tornado.web import RequestHandler

from bgtasks_ext.server import openapi
from bgtasks_ext.server.app import API_PATH
from bgtasks_ext.server.handlers import handlers
from bgtasks_ext.server.replies import TaskOut
from bgtasks_ext.server.requests import CreateTask
from tests.server.test_rest import call, wait_state
from tests.server_process import ServerProcess

SPEC_PATH = ("bgtasks", "api", "openapi.json")


async def fetch_doc(jp_fetch: Any) -> dict[str, Any]:
    resp = await jp_fetch(*SPEC_PATH)
    assert resp.headers["Content-Type"].startswith("application/json")
    return json.loads(resp.body)  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for path, item in doc["paths"].items():
        for method in item:
            if method in openapi.METHODS:
                yield path, method


# -- the document --------------------------------------------------------------------
async def test_document_is_valid_openapi_3_1(bgtasks_app: Any, jp_fetch: Any) -> None:
    doc = await fetch_doc(jp_fetch)
    # Against the OpenAPI 3.1 meta-schema (the copy schemathesis ships)
    errors = [str(e) for e in definitions.OPENAPI_31_VALIDATOR.iter_errors(doc)]
    assert errors == []
    # Every component is a JSON Schema 2020-12 and every $ref resolves
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(doc))):
        node: Any = doc
        for part in ref.split("/"):
            node = node[part]
    # Every operation needs credentials, and both ways in are described
    assert doc["security"] == [{"jupyterToken": []}, {"kernelSecret": []}]
    assert all("403" in doc["paths"][p][m]["responses"] for p, m in operations(doc))


async def test_paths_are_the_url_table(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given the routes registered by handlers() and everything else served under our prefix
    doc = await fetch_doc(jp_fetch)
    prefix = bgtasks_app.base_url.rstrip("/") + API_PATH
    served = openapi.served_routes(bgtasks_app.web_app, prefix)
    table = {route[0].removeprefix(API_PATH) for route in handlers(API_PATH)}
    # Then the document has exactly the served paths, including the whole handlers() table
    templates = {openapi.path_template(pattern, prefix)[0] for pattern, _ in served}
    assert set(doc["paths"]) == templates
    assert {openapi.path_template(p + "$", "")[0] for p in table} <= templates
    assert "/events" in templates and "/openapi.json" in templates


async def test_methods_are_what_the_server_answers(bgtasks_app: Any, jp_fetch: Any) -> None:
    # For every path, every method: documented <=> the server does not answer 405
    doc = await fetch_doc(jp_fetch)
    for path, item in doc["paths"].items():
        url = path.replace("{task_id}", "no-such-task").strip("/").split("/")
        for method in ("get", "post", "put", "patch", "delete"):
            resp = await jp_fetch("bgtasks", "api", *url, method=method.upper(), raise_error=False,
                                  allow_nonstandard_methods=True,
                                  body=b"{}" if method in ("post", "put", "patch") else None)
            assert (resp.code != 405) == (method in item), (method, path, resp.code)
            if resp.code == 405 and path != "/events":
                allowed = {m.strip().lower() for m in resp.headers["Allow"].split(",")}
                assert allowed - {"options"} == {m for m in item if m in openapi.METHODS}


async def test_create_body_is_the_pydantic_model(bgtasks_app: Any, jp_fetch: Any) -> None:
    doc = await fetch_doc(jp_fetch)
    op = doc["paths"]["/tasks"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateTask"}
    model = CreateTask.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = model.pop("$defs")
    assert doc["components"]["schemas"]["CreateTask"] == model
    assert all(doc["components"]["schemas"][name] == schema for name, schema in defs.items())


async def test_every_task_reply_matches_the_task_schema(bgtasks_app: Any, jp_fetch: Any) -> None:
    # Given tasks in every shape: finished with a result, failed, cancelled, delayed, keyed
    doc = await fetch_doc(jp_fetch)
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/Task", "components": doc["components"]},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    bodies = [
        {"kind": "count", "params": {"times": 2, "interval": 0.01}, "key": "k",
         "origin": {"kernel_id": "kid", "path": "a.ipynb"}},
        {"kind": "count", "params": {"times": 1}, "timeout": 0.001},
        {"kind": "sleep", "params": {"seconds": 30}, "executor": "thread"},
        {"kind": "count", "run_on": "2999-01-01T00:00:00Z", "name": "later", "retries": 2},
    ]
    ids = [(await call(jp_fetch, "tasks", method="POST", body=b))[1]["id"] for b in bodies]
    await call(jp_fetch, "tasks", ids[2], "cancel", method="POST", body="")
    for task_id in ids[:3]:
        await wait_state(jp_fetch, task_id, "finished", "failed", "cancelled")
    # When they are read one by one and listed
    _, page = await call(jp_fetch, "tasks")
    tasks = [(await call(jp_fetch, "tasks", i))[1] for i in ids] + page["tasks"]
    # Then every one fits the schema, which lists exactly the keys of Task.to_json
    assert {t["state"] for t in tasks} >= {"finished", "cancelled", "pending"}
    for task in tasks:
        assert list(validator.iter_errors(task)) == [], task
        assert task.keys() == set(TaskOut.model_fields)
        TaskOut.model_validate(task)
    schema = doc["components"]["schemas"]["Task"]
    assert set(schema["required"]) == set(schema["properties"]) == set(TaskOut.model_fields)
    assert schema["additionalProperties"] is False


def test_an_undocumented_route_or_method_fails_the_build() -> None:
    class Extra(RequestHandler):
        def get(self) -> None: ...

    class MorePut(RequestHandler):
        def put(self) -> None: ...

    for route in [("/p/tasks/(?P<task_id>[^/]+)/retry$", Extra), ("/p/kinds$", MorePut)]:
        with pytest.raises(openapi.Undocumented):
            openapi.build([route], "/p", "/p")
    # and a route it cannot write as an OpenAPI path is refused, not guessed
    with pytest.raises(ValueError):
        openapi.path_template("/p/tasks/(.*)$", "/p")


# -- the server accepts what the document promises, nothing else --------------------
@pytest.mark.parametrize("body,field", [
    ({"kind": "sleep", "retries": "3"}, "retries"),
    ({"kind": "sleep", "timeout": "5"}, "timeout"),
    ({"kind": "sleep", "run_on": True}, "run_on"),
    ({"kind": "sleep", "run_on": "5"}, "run_on"),
    ({"kind": "sleep", "run_on": 2e11}, "run_on"),
    ({"kind": "sleep", "name": 5}, "name"),
])
async def test_values_of_the_wrong_json_type_are_400(
    bgtasks_app: Any, jp_fetch: Any, body: dict[str, Any], field: str
) -> None:
    code, err = await call(jp_fetch, "tasks", method="POST", body=body)
    assert (code, err["field"]) == (400, field), err


async def test_times_as_iso_or_epoch_seconds_are_accepted(bgtasks_app: Any, jp_fetch: Any) -> None:
    for run_on in ("2999-01-01T00:00:00Z", "2999-01-01T02:00:00+02:00", "2999-01-01T00:00:00",
                   32472144000, 32472144000.0):
        code, task = await call(jp_fetch, "tasks", method="POST", body={"kind": "count", "run_on": run_on})
        assert code == 201 and task["run_on"] == "2999-01-01T00:00:00Z", (run_on, task)


async def test_a_huge_log_offset_is_400_not_500(bgtasks_app: Any, jp_fetch: Any) -> None:
    _, task = await call(jp_fetch, "tasks", method="POST", body={"kind": "sleep", "params": {"seconds": 0}})
    for offset in (str(2**63), "9" * 5000, "+5", "1_0"):
        code, err = await call(jp_fetch, "tasks", task["id"], "log", params={"offset": offset})
        assert (code, err.get("field")) == (400, "offset"), (offset[:20], err)
    code, _ = await call(jp_fetch, "tasks", task["id"], "log", params={"offset": str(2**63 - 1)})
    assert code == 200


async def test_empty_filters_mean_any(bgtasks_app: Any, jp_fetch: Any) -> None:
    await call(jp_fetch, "tasks", method="POST", body={"kind": "count", "run_on": "2999-01-01T00:00:00Z"})
    _, everything = await call(jp_fetch, "tasks")
    code, same = await call(jp_fetch, "tasks", params={"state": "", "category": "", "kind": ""})
    assert code == 200 and same == everything and len(everything["tasks"]) == 1


# -- every operation, fuzzed against a real server -----------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("openapi-server")
    with ServerProcess(root, root / "store" / "tasks.sqlite",
                       config={"default_executor": "thread"}) as srv:
        yield srv


SEED_TASKS: list[dict[str, Any]] = [
    {"kind": "sleep", "params": {"seconds": 0}},
    {"kind": "count", "params": {"times": 1}, "timeout": 0.001},
    {"kind": "count", "run_on": "2999-01-01T00:00:00Z", "key": "later"},
]


@pytest.fixture(scope="module")
def api_schema(server: ServerProcess) -> Any:
    # Tasks to find: schemathesis reuses ids it sees in replies, and a bug behind a real
    # id (say, a log offset SQLite cannot hold) is invisible behind a 404.
    for body in SEED_TASKS:
        requests.post(server.api + "tasks", json=body, headers=server.headers, timeout=10).raise_for_status()
    config = schemathesis.Config.from_dict({
        "headers": server.headers,
        "seed": 20261122,
        "generation": {"mode": "all", "max-examples": 100, "database": "none"},
        "phases": {"stateful": {"max-steps": 8}},
        "checks": {
            # Valid-looking bodies name kinds this server does not have: 400 is right.
            "positive_data_acceptance": {"enabled": False},
            "object_level_authorization": {"enabled": False},  # one user: nothing to compare
            # DELETE of a live task cancels it (202) and keeps it, as SPEC §5 says; this
            # check takes any 2xx DELETE for a removal. (204 -> 404 is tested in test_rest.)
            "use_after_free": {"enabled": False},
        },
        # events.py's 405 lacks `Allow` (tornado's websocket handler): reported, not ours.
        "operations": [{"include-path": "/events", "checks": {"unsupported_method": {"enabled": False}}}],
    })
    return schemathesis.openapi.from_url(server.api + "openapi.json", headers=server.headers,
                                         config=config)


def test_every_operation_with_good_and_bad_input(api_schema: Any) -> None:
    """All schemathesis phases, as its CLI runs them: documented examples, coverage
    (boundaries, every undocumented method, missing and wrong credentials), fuzzing with
    valid and invalid input, and stateful walks along the document's links from a created
    task. Checks: no 5xx, status codes, content types, headers and bodies as documented,
    invalid input refused, credentials enforced. (Through the engine: schemathesis's
    pytest plugin breaks on pytest 9.2, ``Function._nodeid``.)"""
    problems: list[str] = []
    tested = 0
    for event in schemathesis.engine.from_schema(api_schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            tested += len(event.recorder.cases)
            if event.status in (Status.FAILURE, Status.ERROR):
                problems += _failures(event) or [f"{event.label}: {event.status}"]
        elif isinstance(event, (engine_events.NonFatalError, engine_events.FatalError)):
            problems.append(f"{getattr(event, 'label', '')}: {getattr(event, 'value', event)!r}")
        elif isinstance(event, engine_events.EngineFinished):
            assert event.stop_reason == "completed"
    assert problems == [], "\n\n".join(problems)
    assert tested > 500  # the walk really ran


def _failures(event: Any) -> list[str]:
    out = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.status is Status.FAILURE and check.failure_info is not None:
                failure = check.failure_info.failure
                out.append(f"{event.label}: {check.name}: {failure.title}\n{failure.message}\n"
                           f"{check.failure_info.code_sample}")
    return out


def test_no_operation_answers_without_valid_credentials(server: ServerProcess) -> None:
    doc = requests.get(server.api + "openapi.json", headers=server.headers, timeout=10).json()
    refused = {None, "token wrong", "bgtasks wrong-secret-of-enough-length", f"Bearer {server.token}x"}
    for path, method in operations(doc):
        url = server.api + path.lstrip("/").replace("{task_id}", "some-task")
        for auth in refused:
            headers = {"Authorization": auth} if auth else {}
            resp = requests.request(method.upper(), url, headers=headers, data=b"{}", timeout=10)
            assert resp.status_code in (401, 403), (method, path, auth, resp.status_code)
        # while the right token is let in (so the refusals above are about credentials)
        ok = requests.request(method.upper(), url, headers=server.headers, data=b"{}", timeout=10)
        assert ok.status_code not in (401, 403), (method, path)
