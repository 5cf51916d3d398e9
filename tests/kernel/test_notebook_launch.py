"""Notebook jobs launched from a notebook: ``%bgtask --notebook PATH [-p NAME=VALUE ...]``
and ``bgtasks_ext.run_notebook(path, parameters)``, in a real kernel started by a real
server (conftest.py) whose workers run the notebook with nbclient.

The first part is the grammar and the path arithmetic alone (pure functions, no
server): a ``-p`` value, the line's words, a path relative to a kernel's working
directory turned into one relative to the server's root.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests

from bgtasks_ext.core.errors import InvalidInput
from bgtasks_ext.kernel.notebook_jobs import parse_parameter, root_relative, split_words
from tests.kernel.conftest import ExecResult, Kernel
from tests.server_process import ServerProcess

Rest = Callable[..., requests.Response]


# -- the grammar of -p and the line ---------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("n=3", ("n", 3)),
    ("rate=0.5", ("rate", 0.5)),
    ("flag=True", ("flag", True)),
    ("nothing=None", ("nothing", None)),
    ("region=north", ("region", "north")),
    ("code='3'", ("code", "3")),
    ('title="Q3 sales"', ("title", "Q3 sales")),
    ("xs=[1, 2]", ("xs", [1, 2])),
    ("pair=(1, 'a')", ("pair", [1, "a"])),
    ('opts={"a": 1}', ("opts", {"a": 1})),
    ("expr=1 + x", ("expr", "1 + x")),
    ("empty=", ("empty", "")),
    ('"quoted=a b"', ("quoted", "a b")),
])
def test_a_parameter_value_is_a_literal_when_it_parses_else_a_string(text: str, expected: Any) -> None:
    assert parse_parameter(text) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("n3", "NAME=VALUE"),
    ("1n=3", "not a Python name"),
    ("my-name=3", "not a Python name"),
    ("s={1, 2}", "set"),
    ("b=b'x'", "bytes"),
    ("z=1j", "complex"),
    ("big=1e999", "float"),
])
def test_a_bad_parameter_is_refused_naming_p(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_parameter(text)
    assert exc.value.field == "-p" and says in str(exc.value), str(exc.value)


def test_words_keep_quoted_and_bracketed_values_whole() -> None:
    line = """--notebook "my dir/r.ipynb" -p title="Q3 sales" -p xs=[1, 2] -p d={"a": [1, 2]} --name 'A b'"""
    assert split_words(line) == ["--notebook", '"my dir/r.ipynb"', "-p", 'title="Q3 sales"', "-p",
                                 "xs=[1, 2]", "-p", 'd={"a": [1, 2]}', "--name", "'A b'"]


# -- paths: relative to the kernel's cwd in, relative to the root out --------------------------
def test_a_path_is_made_relative_to_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "notes" / "sub").mkdir(parents=True)
    cwd = str(root / "notes")
    assert root_relative("sub/r.ipynb", root=str(root), cwd=cwd) == "notes/sub/r.ipynb"
    assert root_relative("../jobs/./r.ipynb", root=str(root), cwd=cwd) == "jobs/r.ipynb"
    assert root_relative(str(root / "a" / "r.ipynb"), root=str(root), cwd=cwd) == "a/r.ipynb"
    assert root_relative(Path("sub") / "r.ipynb", root=str(root), cwd=cwd) == "notes/sub/r.ipynb"


def test_a_root_reached_through_a_symlink_still_contains_its_files(tmp_path: Path) -> None:
    # Given a server root given by its real path, and a kernel working in it by a link
    real = tmp_path / "real-root"
    (real / "notes").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    # Then a path from the linked working directory is inside the root
    cwd = str(tmp_path / "link" / "notes")
    assert root_relative("r.ipynb", root=str(real), cwd=cwd) == "notes/r.ipynb"


@pytest.mark.parametrize("path", ["../../elsewhere/r.ipynb", "/etc/r.ipynb", "../..", "  ", 3])
def test_a_path_outside_the_root_or_no_path_is_refused_naming_the_field(tmp_path: Path, path: Any) -> None:
    root = tmp_path / "root"
    (root / "notes").mkdir(parents=True)
    with pytest.raises(InvalidInput) as exc:
        root_relative(path, "--notebook", root=str(root), cwd=str(root / "notes"))
    assert exc.value.field == "--notebook"


def test_without_the_servers_root_the_error_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BGTASKS_ROOT", raising=False)
    with pytest.raises(InvalidInput) as exc:
        root_relative("r.ipynb")
    assert "BGTASKS_ROOT" in str(exc.value) and "root" in str(exc.value)


# -- in a real kernel --------------------------------------------------------------------------
def _usage_error(result: ExecResult) -> str:
    """The one line IPython shows for a ``UsageError`` (the cell failed, no traceback)."""
    assert result.reply is not None and result.reply["status"] == "error", result.reply
    assert result.reply["ename"] == "UsageError", result.reply
    err = "".join(o["text"] for o in result.outputs if o.get("name") == "stderr")
    assert err.startswith("UsageError: ") and err.count("\n") == 1, err
    return err


def _task_count(rest: Rest) -> int:
    return len(rest("GET", "tasks", params={"limit": 1000}).json()["tasks"])


def _report(path: Path) -> Path:
    """A parametrised notebook: ``n = 1`` in the cell tagged ``parameters``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Report"),
        nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('n times ten is', n * 10)"),
        nbformat.v4.new_code_cell("import os\nprint('working in', os.path.basename(os.getcwd()))"),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def folder(bg_server: ServerProcess) -> Path:
    """A folder of the server's root, with ``notes/`` (where the launching notebook's
    kernel works) and ``notes/sub/report.ipynb``."""
    where = bg_server.root / f"nbjobs-{uuid.uuid4().hex[:8]}"
    _report(where / "notes" / "sub" / "report.ipynb")
    return where


@pytest.fixture
def loaded(kernel: Kernel, folder: Path) -> Kernel:
    """The kernel of a notebook in ``folder/notes`` (its working directory)."""
    kernel.execute_ok(f"%load_ext bgtasks_ext\nimport os\nos.chdir({str(folder / 'notes')!r})")
    return kernel


def _copy_text(root: Path, rel: str) -> str:
    nb = nbformat.read(root / rel, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_a_kernel_knows_the_root_and_its_workers_do_not_get_it(loaded: Kernel,
                                                              bg_server: ServerProcess) -> None:
    # Then a kernel the server started has the server's root in its environment
    assert loaded.eval("os.environ.get('BGTASKS_ROOT')") == os.path.abspath(bg_server.root)
    # And a task's worker (started by the server, not by this kernel) has nothing of it
    loaded.execute_ok("import bgtasks_ext\nh = bgtasks_ext.submit(lambda: os.environ.get('BGTASKS_ROOT'))")
    assert loaded.eval("h.result(timeout=60)") is None


def test_the_magic_runs_a_notebook_of_another_folder_with_parameters(
        loaded: Kernel, folder: Path, bg_server: ServerProcess) -> None:
    # When a notebook in notes/ runs sub/report.ipynb as a job with n=3
    result = loaded.execute_ok("h = %bgtask --notebook sub/report.ipynb -p n=3")
    # Then the task's widget is shown, and the magic gave the handle (also _)
    assert loaded.widgets_of("FloatProgressModel"), result.outputs
    assert loaded.eval("type(h).__name__") == "TaskHandle"
    assert loaded.eval("h is _") is True
    # And the server was asked for that notebook relative to its root, with n=3
    rel = f"{folder.name}/notes/sub/report.ipynb"
    task = loaded.eval("h.task")
    assert task["kind"] == "notebook" and task["params"]["path"] == rel
    assert task["params"]["parameters"] == {"n": 3}
    assert task["name"] == "report.ipynb"
    # And when it ends, its result names the executed copy, beside the source, run with n=3
    done = loaded.eval("h.result(timeout=120)", timeout=150)
    copy = done["executed_copy"]
    assert copy.startswith(f"{folder.name}/notes/sub/report.") and copy.endswith(".ipynb"), done
    text = _copy_text(bg_server.root, copy)
    assert "n times ten is 30" in text and "working in sub" in text


def test_run_notebook_takes_a_path_parameters_and_a_name(loaded: Kernel, folder: Path,
                                                         bg_server: ServerProcess) -> None:
    # Given a notebook in a sibling folder of this kernel's working directory
    _report(folder / "jobs" / "weekly.ipynb")
    # When the Python API runs it with parameters
    loaded.execute_ok("import bgtasks_ext\n"
                      "h = bgtasks_ext.run_notebook('../jobs/weekly.ipynb', {'n': 4}, name='weekly', "
                      "cwd='.', kernel_name='python3', timeout=300)")
    task = loaded.eval("h.task")
    assert task["params"]["path"] == f"{folder.name}/jobs/weekly.ipynb" and task["name"] == "weekly"
    assert task["params"]["cwd"] == f"{folder.name}/notes" and task["params"]["kernel_name"] == "python3"
    assert task["timeout"] == 300
    # Then the job runs with n=4, in this kernel's folder, and the result names its executed copy
    done = loaded.eval("h.result(timeout=120)", timeout=150)
    text = _copy_text(bg_server.root, done["executed_copy"])
    assert "n times ten is 40" in text and "working in notes" in text
    # And displayed, the handle is the task's widget
    shown = loaded.execute_ok("h")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in shown.outputs)


def test_quoted_and_bracketed_values_reach_the_task_whole(loaded: Kernel) -> None:
    # When the line holds values with spaces, in quotes and brackets
    loaded.execute_ok('h = %bgtask --notebook sub/report.ipynb --name "weekly sales" '
                      '-p title="Q3 sales" -p xs=[1, 2] -p region=south --no-widget')
    task = loaded.eval("h.task")
    loaded.execute_ok("h.cancel()")
    # Then each is one value: a string literal, a list, a bare word as a string
    assert task["name"] == "weekly sales"
    assert task["params"]["parameters"] == {"title": "Q3 sales", "xs": [1, 2], "region": "south"}
    # And --no-widget showed nothing
    assert not loaded.widgets_of("FloatProgressModel")


@pytest.mark.parametrize(("line", "says"), [
    ("%bgtask --notebook sub/report.ipynb -p n3", "-p: 'n3': write NAME=VALUE"),
    ("%bgtask --notebook sub/report.ipynb -p 2n=3", "-p: '2n' is not a Python name"),
    ("%bgtask --notebook sub/report.ipynb -p n=1 -p n=2", "-p: n is given twice"),
    ("%bgtask -p n=3", "-p: goes with --notebook PATH"),
    ("%bgtask --notebook sub/report.ipynb --every 5", "--every: not with --notebook"),
    ("%bgtask --notebook sub/report.ipynb --executor kernel", "--executor kernel: not with --notebook"),
    ("%bgtask --notebook sub/report.ipynb --kernel", "--kernel: expected one argument"),
    ("%bgtask --notebook", "--notebook: expected one argument"),
    ("%bgtask --notebook a.ipynb b.ipynb", "unexpected argument 'b.ipynb'"),
    ("%bgtask --notebook ../../../elsewhere/r.ipynb", "--notebook: '../../../elsewhere/r.ipynb' is outside"),
    ("%bgtask --notebook /etc/r.ipynb", "--notebook: '/etc/r.ipynb' is outside the server's root"),
    ("%bgtask --kernel python3 f(1)", "--kernel: goes with %bgtask --notebook PATH"),
    ("%%bgtask --name x\ny = 1", "--name: goes with %bgtask --notebook PATH"),
    ("%%bgtask -p n=1\ny = 1", "-p: goes with %bgtask --notebook PATH"),
])
def test_bad_notebook_lines_are_usage_errors_naming_the_option(loaded: Kernel, rest: Rest,
                                                               line: str, says: str) -> None:
    tasks = _task_count(rest)
    # When the magic is given a bad line
    err = _usage_error(loaded.execute(line))
    # Then one line names what is wrong, and nothing is created
    assert says in err, err
    assert _task_count(rest) == tasks


def test_the_servers_refusal_reaches_the_user_as_it_is(loaded: Kernel, rest: Rest, folder: Path) -> None:
    tasks = _task_count(rest)
    # When the file does not exist (the server is the one that knows)
    err = _usage_error(loaded.execute("%bgtask --notebook sub/missing.ipynb"))
    # Then the server's 400 is what the user reads, naming params.path, and nothing is created
    assert err.startswith("UsageError: %bgtask: params.path") and "missing.ipynb" in err, err
    err = _usage_error(loaded.execute("%bgtask --notebook sub/report.ipynb --kernel no-such-kernel"))
    assert err.startswith("UsageError: %bgtask: params.kernel_name") and "no-such-kernel" in err, err
    # And the Python API raises the server's error as it is
    result = loaded.execute("import bgtasks_ext\nbgtasks_ext.run_notebook('sub/missing.ipynb')")
    assert result.error is not None and result.error["ename"] == "ServerError", result.error
    assert result.error["evalue"].startswith("params.path") and "missing.ipynb" in result.error["evalue"]
    # And a path outside the root never reaches the server
    result = loaded.execute("bgtasks_ext.run_notebook('/etc/r.ipynb')")
    assert result.error is not None and result.error["ename"] == "InvalidInput", result.error
    assert result.error["evalue"].startswith("path: '/etc/r.ipynb' is outside the server's root")
    result = loaded.execute("bgtasks_ext.run_notebook('sub/report.ipynb', {'when': object()})")
    assert result.error is not None and "parameters.when" in result.error["evalue"], result.error
    assert _task_count(rest) == tasks


def test_without_a_server_the_magic_says_so(plain_kernel: Kernel) -> None:
    plain_kernel.execute_ok("%load_ext bgtasks_ext")
    err = _usage_error(plain_kernel.execute("%bgtask --notebook report.ipynb -p n=3"))
    assert "no bgtasks server" in err, err


def test_the_help_shows_the_notebook_form(loaded: Kernel) -> None:
    text = loaded.execute_ok("%bgtask --help").text
    assert "%bgtask --notebook PATH [-p NAME=VALUE ...] [--kernel K] [--name N]" in text
    assert "-p NAME=VALUE" in text and "--kernel K" in text and "--name N" in text
