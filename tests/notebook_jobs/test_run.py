"""Notebook jobs run on a real server: parameters, progress, live log, the executed copy,
a failing cell, cancel and timeout (issue 13)."""

from __future__ import annotations

import re
import time

from tests.notebook_jobs.conftest import (MAKE_READ_ONLY, NotebookMaker, alive, kernel_processes,
                                          log_text, post, read_copy, read_only, wait_log)
from tests.server_process import ServerProcess

PID = "import os; print('PID', os.getpid())"


def pid_in(text: str) -> int:
    match = re.search(r"PID (\d+)", text)
    assert match, text
    return int(match.group(1))


def test_parameters_override_the_tagged_cell(nb_server: ServerProcess, notebook: NotebookMaker) -> None:
    # Given a notebook whose second cell holds the defaults, tagged "parameters"
    path = notebook("params.ipynb", "print('first')", "alpha = 1\nname = 'x'", "print(alpha, name, beta)",
                    tags={1: ["parameters"]})
    # When it runs with parameters
    task = nb_server.wait_end(post(nb_server, {"path": path, "parameters": {
        "alpha": 5, "name": "it's", "beta": [1, {"k": None}]}})["id"])
    # Then the injected values win over the defaults, and the copy shows the injected cell
    # right after the tagged one
    assert task["state"] == "finished", task
    assert "5 it's [1, {'k': None}]" in log_text(nb_server, task["id"])
    copy = read_copy(nb_server, task["result_preview"]["executed_copy"])
    assert copy.cells[2].metadata["tags"] == ["injected-parameters"]
    assert "alpha = 5" in copy.cells[2].source
    assert task["result_preview"]["cells"] == 4


def test_parameters_go_first_without_a_tagged_cell(nb_server: ServerProcess,
                                                   notebook: NotebookMaker) -> None:
    # Given a notebook without a "parameters" cell
    path = notebook("untagged.ipynb", "print('value', value)")
    # When it runs with a parameter
    task = nb_server.wait_end(post(nb_server, {"path": path, "parameters": {"value": 7}})["id"])
    # Then the parameter cell runs first
    assert task["state"] == "finished", task
    assert "value 7" in log_text(nb_server, task["id"])
    copy = read_copy(nb_server, task["result_preview"]["executed_copy"])
    assert copy.cells[0].metadata["tags"] == ["injected-parameters"]


def test_progress_log_and_copy(nb_server: ServerProcess, notebook: NotebookMaker) -> None:
    # Given a notebook of three code cells (one markdown between) that print
    path = notebook("report.ipynb", "print('one')", "md:# Two", "x = 2\nprint('two', x)", "x * 21")
    # When it runs
    created = post(nb_server, {"path": path})
    task = nb_server.wait_end(created["id"])
    # Then it is named after the file, its progress reached the total, the log shows each
    # cell's header and output, and the executed copy beside it holds the outputs
    assert created["name"] == "report.ipynb"
    assert task["state"] == "finished", task
    assert task["progress"]["current"] == task["progress"]["total"] == 3
    assert task["progress"]["message"] == "3 code cells run"  # not the last cell's first line
    log = log_text(nb_server, task["id"])
    assert "[cell 1] print('one')\none\n" in log and "two 2" in log
    result = task["result_preview"]
    assert result["kernel_name"] == "python3" and result["cells"] == 3
    assert re.fullmatch(r"report\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(-\d+)?\.ipynb", result["executed_copy"])
    copy = read_copy(nb_server, result["executed_copy"])
    assert copy.cells[2].outputs[0]["text"] == "two 2\n"
    assert copy.cells[3].outputs[0]["data"]["text/plain"] == "42"


def test_the_log_shows_each_cell_while_a_later_one_runs(nb_server: ServerProcess,
                                                       notebook: NotebookMaker) -> None:
    # Given a notebook whose second cell sleeps
    path = notebook("live.ipynb", "print('early output')", "import time\ntime.sleep(60)",
                    "print('never')")
    task = post(nb_server, {"path": path})
    # When its log is read while the second cell sleeps
    text = wait_log(nb_server, task["id"], "early output")
    # Then the first cell's print is there already, and the progress names the running cell
    assert nb_server.call("GET", f"tasks/{task['id']}").json()["state"] == "running"
    deadline = time.monotonic() + 30
    while (progress := nb_server.call("GET", f"tasks/{task['id']}").json()["progress"])["message"] != "import time":
        assert time.monotonic() < deadline, progress
        time.sleep(0.05)
    assert progress["current"] == 1 and progress["total"] == 3
    assert "never" not in text
    nb_server.call("POST", f"tasks/{task['id']}/cancel")
    nb_server.wait_end(task["id"])


def test_a_raising_cell_fails_the_task_and_writes_the_copy(nb_server: ServerProcess,
                                                          notebook: NotebookMaker) -> None:
    # Given a notebook whose fourth cell (the third code cell) raises
    path = notebook("sub/fails.ipynb", "print('fine')", "md:a note", "a = 1", "\na / 0\nprint('after')",
                    "print('not run')")
    # When it runs
    task = nb_server.wait_end(post(nb_server, {"path": path})["id"])
    # Then the task failed with the cell's error, naming the cell, and the copy is there
    assert task["state"] == "failed", task
    error = task["error"]
    assert error["type"] == "ZeroDivisionError"
    assert error["message"] == "cell 4 (a / 0): ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in error["traceback"] and "\x1b[" not in error["traceback"]
    assert error["data"]["cell"] == 4
    copy_path = error["data"]["executed_copy"]
    assert copy_path.startswith("sub/fails.") and (nb_server.root / copy_path).is_file()
    copy = read_copy(nb_server, copy_path)
    assert copy.cells[3].outputs[-1]["output_type"] == "error"
    assert copy.cells[4].outputs == []
    assert "ZeroDivisionError" in log_text(nb_server, task["id"])
    # and its progress counts the code cells done before the failing one, not all of them
    assert (task["progress"]["current"], task["progress"]["total"]) == (2, 4), task["progress"]
    assert task["progress"]["message"] == "a / 0"


def test_a_kernel_that_dies_fails_the_task_naming_the_cell(nb_server: ServerProcess,
                                                            notebook: NotebookMaker) -> None:
    # Given a notebook whose second cell ends its kernel's process
    path = notebook("dies.ipynb", "print('alive')", "import os\nos._exit(3)", "print('after')")
    # When it runs
    task = nb_server.wait_end(post(nb_server, {"path": path})["id"], timeout=60)
    # Then the task failed naming that cell, and the copy holds what ran before
    assert task["state"] == "failed", task
    assert task["error"]["type"] == "DeadKernelError"
    assert task["error"]["message"].startswith("cell 2 (import os): DeadKernelError")
    copy = read_copy(nb_server, task["error"]["data"]["executed_copy"])
    assert copy.cells[0].outputs[0]["text"] == "alive\n"


def test_cancel_mid_sleep_ends_the_job_and_its_kernel(nb_server: ServerProcess,
                                                     notebook: NotebookMaker) -> None:
    # Given a job sleeping in its second cell
    path = notebook("sleeper.ipynb", PID, "import time\ntime.sleep(120)")
    task = post(nb_server, {"path": path})
    pid = pid_in(wait_log(nb_server, task["id"], "[cell 2]"))
    assert alive(pid)
    # When it is cancelled
    asked = time.monotonic()
    assert nb_server.call("POST", f"tasks/{task['id']}/cancel").ok
    ended = nb_server.wait_end(task["id"], timeout=30)
    # Then it ends cancelled within seconds, its kernel is gone and its copy is written
    assert ended["state"] == "cancelled", ended
    assert time.monotonic() - asked < 5
    deadline = time.monotonic() + 3
    while alive(pid):
        assert time.monotonic() < deadline, f"kernel {pid} still running"
        time.sleep(0.05)
    copies = sorted(nb_server.root.glob("sleeper.*.ipynb"))
    assert len(copies) == 1
    # (the record names the copy, so the panel's row can open it)
    assert ended["error"]["data"] == {"executed_copy": copies[0].name}, ended["error"]
    copy = read_copy(nb_server, copies[0].name)
    assert "PID" in copy.cells[0].outputs[0]["text"]


def test_cancel_right_after_the_post_leaves_no_kernel(nb_server: ServerProcess,
                                                      notebook: NotebookMaker) -> None:
    # Given jobs cancelled as soon as they are created (their kernel still on its way)
    path = notebook("quick_cancel.ipynb", "import time\ntime.sleep(120)")
    tasks = [post(nb_server, {"path": path}) for _ in range(3)]
    for task in tasks:
        nb_server.call("POST", f"tasks/{task['id']}/cancel")
    # When they have ended
    ended = [nb_server.wait_end(t["id"], timeout=30) for t in tasks]
    # Then none finished, and soon no kernel is left but the worker's one ready kernel
    assert {t["state"] for t in ended} == {"cancelled"}, ended
    deadline = time.monotonic() + 10
    while len(left := kernel_processes(nb_server)) > 1:
        assert time.monotonic() < deadline, f"kernels left: {left}"
        time.sleep(0.1)


def test_timeout_ends_the_job_and_its_kernel(nb_server: ServerProcess, notebook: NotebookMaker) -> None:
    # Given a job that would sleep two minutes, with a 3 s timeout
    path = notebook("slow.ipynb", PID, "import time\ntime.sleep(120)")
    task = post(nb_server, {"path": path}, timeout=3)
    pid = pid_in(wait_log(nb_server, task["id"], "PID"))
    # When the timeout passes
    ended = nb_server.wait_end(task["id"], timeout=30)
    # Then it failed by its timeout, its kernel is gone and its copy is written
    assert ended["state"] == "failed" and ended["error"]["reason"] == "timeout", ended
    deadline = time.monotonic() + 3
    while alive(pid):
        assert time.monotonic() < deadline, f"kernel {pid} still running"
        time.sleep(0.05)
    copies = list(nb_server.root.glob("slow.*.ipynb"))
    assert len(copies) == 1
    assert ended["error"]["data"] == {"executed_copy": copies[0].name}, ended["error"]


def test_a_copy_that_cannot_be_written_fails_the_job_saying_so(nb_server: ServerProcess,
                                                               notebook: NotebookMaker) -> None:
    # Given a notebook whose cell makes its own folder read-only (admitted while writable)
    path = notebook("turns_ro/report.ipynb", MAKE_READ_ONLY, "print('done')")
    folder = nb_server.root / "turns_ro"
    try:
        # When it runs
        task = nb_server.wait_end(post(nb_server, {"path": path})["id"])
    finally:
        with read_only(folder):  # (undone on the way out)
            pass
    # Then it fails saying the copy could not be written, beside which notebook
    assert task["state"] == "failed", task
    assert task["error"]["message"].startswith(
        "the executed copy could not be written beside turns_ro/report.ipynb: "), task["error"]


def test_a_cancelled_job_whose_copy_cannot_be_written_says_so_once(nb_server: ServerProcess,
                                                                    notebook: NotebookMaker) -> None:
    # Given a running job whose folder turned read-only
    path = notebook("turns_ro2/report.ipynb", MAKE_READ_ONLY, "print('GO', flush=True)\nimport time\ntime.sleep(60)")
    folder = nb_server.root / "turns_ro2"
    try:
        task = post(nb_server, {"path": path})
        wait_log(nb_server, task["id"], "GO")
        # When it is cancelled
        nb_server.call("POST", f"tasks/{task['id']}/cancel")
        ended = nb_server.wait_end(task["id"])
    finally:
        with read_only(folder):  # (undone on the way out)
            pass
    # Then the cancel stands, and the log says once which copy could not be written
    assert ended["state"] == "cancelled", ended
    text = log_text(nb_server, task["id"])
    assert text.count("the executed copy could not be written") == 1, text
    assert "[bgtasks] the executed copy could not be written beside turns_ro2/report.ipynb: " in text, text
