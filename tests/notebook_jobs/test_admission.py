"""Every bad notebook job is refused before anything is stored: a 400 naming the field
(``params.path``, ``params.cwd``, ``params.kernel_name``, ``params.parameters.<key>``),
whoever asks (REST here; a schedule too)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.notebook_jobs.conftest import read_only, write_notebook
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def layout(nb_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    root = nb_server.root
    write_notebook(root, "ok.ipynb", "print(1)")
    write_notebook(root, "odd_kernel.ipynb", "print(1)", kernel="no-such-kernel-here")
    (root / "folder.ipynb").mkdir(exist_ok=True)
    (root / "plain.txt").write_text("not a notebook")
    (root / "broken.ipynb").write_text("{ this is not json")
    (root / "notnb.ipynb").write_text('{"cells": "none"}')
    (root / "subdir").mkdir(exist_ok=True)
    outside = tmp_path_factory.mktemp("outside")
    write_notebook(outside, "secret.ipynb", "print('secret')")
    if not (root / "escape.ipynb").is_symlink():
        os.symlink(outside / "secret.ipynb", root / "escape.ipynb")
        os.symlink(outside, root / "away")
        os.symlink("loop_b", root / "loop_a")  # a symlink loop
        os.symlink("loop_a", root / "loop_b")
    shapes = {"meta_list.ipynb": {"metadata": []}, "cell_no_meta.ipynb": {"cells": [
        {"cell_type": "code", "source": "1"}]}, "cell_a_string.ipynb": {"cells": ["x"]},
        "v5.ipynb": {"nbformat": 5}, "spec_list.ipynb": {"metadata": {"kernelspec": {"name": ["python3"]}}}}
    for name, shape in shapes.items():
        (root / name).write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                             "cells": [], **shape}))
    (root / "deep.ipynb").write_text("[" * 100_000 + "]" * 100_000)
    write_notebook(root, "in_r.ipynb", "x <- 1", kernel="python3")
    nb = json.loads((root / "in_r.ipynb").read_text())
    nb["metadata"]["kernelspec"]["language"] = "R"  # a kernel the server has, another language
    (root / "in_r.ipynb").write_text(json.dumps(nb))
    return nb_server


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("path missing", {}, "params.path", "required"),
    ("path empty", {"path": ""}, "params.path", "empty"),
    ("path absolute", {"path": "/etc/passwd.ipynb"}, "params.path", "absolute"),
    ("path with ..", {"path": "../ok.ipynb"}, "params.path", "inside"),
    ("path through a symlink out", {"path": "escape.ipynb"}, "params.path", "leaves"),
    ("path into a linked folder out", {"path": "away/secret.ipynb"}, "params.path", "leaves"),
    ("path missing file", {"path": "nope.ipynb"}, "params.path", "no such file"),
    ("path a directory", {"path": "folder.ipynb"}, "params.path", "directory"),
    ("path not .ipynb", {"path": "plain.txt"}, "params.path", ".ipynb"),
    ("path unreadable", {"path": "broken.ipynb"}, "params.path", "not a readable notebook"),
    ("path JSON but no notebook", {"path": "notnb.ipynb"}, "params.path", "not a readable notebook"),
    ("path not a string", {"path": 3}, "params.path", "string"),
    ("cwd missing", {"path": "ok.ipynb", "cwd": "nowhere"}, "params.cwd", "no such directory"),
    ("cwd a file", {"path": "ok.ipynb", "cwd": "plain.txt"}, "params.cwd", "a file"),
    ("cwd outside", {"path": "ok.ipynb", "cwd": "../"}, "params.cwd", "inside"),
    ("cwd absolute", {"path": "ok.ipynb", "cwd": "/tmp"}, "params.cwd", "absolute"),
    ("kernel unknown", {"path": "ok.ipynb", "kernel_name": "nokernel"}, "params.kernel_name", "nokernel"),
    ("notebook's kernel unknown", {"path": "odd_kernel.ipynb"}, "params.kernel_name", "kernelspec"),
    ("parameter not an identifier", {"path": "ok.ipynb", "parameters": {"not-a-name": 1}},
     "params.parameters.not-a-name", "identifier"),
    ("parameter a keyword", {"path": "ok.ipynb", "parameters": {"class": 1}},
     "params.parameters.class", "identifier"),
    ("parameters not an object", {"path": "ok.ipynb", "parameters": [1]}, "params.parameters", ""),
    ("path with a NUL", {"path": "ok.ipynb\0.txt"}, "params.path", "NUL"),
    ("path metadata not an object", {"path": "meta_list.ipynb"}, "params.path", "metadata is not"),
    ("path a cell without metadata", {"path": "cell_no_meta.ipynb"}, "params.path", "cell 1 is not"),
    ("path a cell that is a string", {"path": "cell_a_string.ipynb"}, "params.path", "cell 1 is not"),
    ("path nbformat 5", {"path": "v5.ipynb"}, "params.path", "version 5"),
    ("path JSON nested too deep", {"path": "deep.ipynb"}, "params.path", "not JSON"),
    ("path a name too long", {"path": "a" * 300 + ".ipynb"}, "params.path", "too long"),
    ("path a symlink loop", {"path": "loop_a/x.ipynb"}, "params.path", "loop"),
    ("cwd with a NUL", {"path": "ok.ipynb", "cwd": "sub\0dir"}, "params.cwd", "NUL"),
    ("cwd a name too long", {"path": "ok.ipynb", "cwd": "d" * 300}, "params.cwd", "too long"),
    ("cwd a symlink loop", {"path": "ok.ipynb", "cwd": "loop_a"}, "params.cwd", "loop"),
    ("parameter an integer the store cannot hold", {"path": "ok.ipynb", "parameters": {"n": 10**30}},
     "params.parameters.n", "too large"),
    ("parameter a nested integer too large", {"path": "ok.ipynb", "parameters": {
        "xs": [1, {"n": -(2**63) - 1}]}}, "params.parameters.xs", "too large"),
    ("parameters for a notebook in another language", {"path": "in_r.ipynb", "parameters": {"x": 1}},
     "params.parameters", "'R'"),
    ("unknown param", {"path": "ok.ipynb", "notebook": "x"}, "params.notebook", ""),
]


@pytest.mark.parametrize(("case", "params", "field", "words"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_notebook_job_is_refused_naming_the_field(layout: ServerProcess, case: str,
                                                        params: dict[str, Any], field: str,
                                                        words: str) -> None:
    # Given the tasks stored so far
    before = layout.call("GET", "tasks?limit=500").json()["tasks"]
    # When a notebook job with a bad parameter is posted
    r = layout.call("POST", "tasks", json={"kind": "notebook", "params": params})
    # Then it is a 400 naming the field and saying why, and nothing was stored
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["field"] == field, body
    assert words.lower() in body["message"].lower(), body
    assert layout.call("GET", "tasks?limit=500").json()["tasks"] == before


def test_a_good_cwd_and_kernel_are_admitted(layout: ServerProcess) -> None:
    # When a job names an existing folder and a kernel the server has
    r = layout.call("POST", "tasks", json={"kind": "notebook", "params": {
        "path": "ok.ipynb", "cwd": "subdir", "kernel_name": "python3"}})
    # Then it is admitted, runs in the server's root, and is named after the notebook
    assert r.status_code == 201, r.text
    task = layout.wait_end(r.json()["id"])
    assert task["state"] == "finished", task
    assert task["name"] == "ok.ipynb"


def test_a_schedule_of_a_bad_notebook_is_refused(layout: ServerProcess) -> None:
    # When a schedule of a notebook job with a bad path is created
    r = layout.call("POST", "schedules", json={"kind": "notebook", "every": 60,
                                               "params": {"path": "../ok.ipynb"}})
    # Then it is refused as a task would be, naming the field
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "params.path"


def test_the_kind_is_listed_with_its_schema(layout: ServerProcess) -> None:
    kinds = {k["name"]: k for k in layout.call("GET", "kinds").json()["kinds"]}
    schema = kinds["notebook"]["schema"]
    assert schema["required"] == ["path"]
    assert set(schema["properties"]) == {"path", "parameters", "kernel_name", "cwd"}


@pytest.mark.parametrize("number", ["9" * 400, "-" + "9" * 30, "18446744073709551616"])
def test_an_integer_the_store_cannot_hold_is_refused(layout: ServerProcess, number: str) -> None:
    # When a parameter is an integer the store would not read back as it is (a float, or
    # beyond a float's range: then every read of the task list failed), as typed
    body = '{"kind": "notebook", "params": {"path": "ok.ipynb", "parameters": {"n": %s}}}' % number
    r = layout.call("POST", "tasks", data=body)
    # Then it is refused naming it, and the list of tasks still reads
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "params.parameters.n", r.json()
    assert layout.call("GET", "tasks?limit=500").status_code == 200


def test_a_notebook_in_a_read_only_folder_is_refused(layout: ServerProcess) -> None:
    # Given a notebook in a folder that cannot take new files
    folder = layout.root / "readonly"
    write_notebook(folder.parent, "readonly/report.ipynb", "print(1)")
    with read_only(folder):
        # When it is posted as a job
        r = layout.call("POST", "tasks", json={"kind": "notebook",
                                               "params": {"path": "readonly/report.ipynb"}})
    # Then it is refused before it runs: its executed copy could not be written
    assert r.status_code == 400, r.text
    assert r.json()["field"] == "params.path"
    assert "'readonly' is not writable" in r.json()["message"]


def test_a_kernelspec_name_that_is_no_name_runs_with_the_default_kernel(layout: ServerProcess) -> None:
    # When a notebook whose metadata.kernelspec.name is a list is posted
    r = layout.call("POST", "tasks", json={"kind": "notebook", "params": {"path": "spec_list.ipynb"}})
    # Then it is admitted and runs with python3, as a notebook without one would
    assert r.status_code == 201, r.text
    task = layout.wait_end(r.json()["id"])
    assert task["state"] == "finished", task
    assert task["result_preview"]["kernel_name"] == "python3"
