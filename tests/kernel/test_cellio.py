"""Cell analysis and input packing: pure ``ast``/``cloudpickle``, no kernel needed."""

from __future__ import annotations

import socket
import threading

import cloudpickle
import pytest

from bgtasks_ext.core.errors import BgTasksError
from bgtasks_ext.kernel.cellio import UnpicklableInput, analyze, find_unpicklable, pack_inputs, select_inputs


@pytest.mark.parametrize(("cell", "reads", "writes"), [
    ("y = x + 1", ["x"], ["y"]),
    ("x = x + 1", ["x"], ["x"]),                      # read before it is rebound
    ("x = 1\ny = x", [], ["x", "y"]),                 # bound earlier: not an input
    ("total += step", ["step", "total"], ["total"]),
    ("for i in range(n):\n    acc = i", ["range", "n"], ["i", "acc"]),
    ("a, (b, *c) = data", ["data"], ["a", "b", "c"]),
    ("obj.attr = v\nd[k] = w", ["v", "obj", "w", "d", "k"], []),
    ("import numpy as np\nimport os.path\nfrom m import f as g", [], []),  # imports make no output
    ("import json\njson = json.dumps(d)", ["d"], ["json"]),   # rebound by assignment: an output
    ("with open(p) as fh:\n    s = fh.read()", ["open", "p"], ["fh", "s"]),
    ("def f(a, b=dflt):\n    return a + k\nr = f(z)", ["dflt", "z", "k"], ["f", "r"]),
    ("class A(Base):\n    z = w", ["Base", "w"], ["A"]),
    ("[v * 2 for v in vs if v > t]", ["vs", "t"], []),
    ("{k: v for k, v in items}", ["items"], []),
    ("out = [y := f(x) for x in d]\nprint(y)", ["d", "f", "print"], ["y", "out"]),
    ("fn = lambda q: q + u", ["u"], ["fn"]),
    ("del q\nq", ["q"], []),
    ("try:\n    import foo\nexcept ImportError as e:\n    foo = None\nfoo",
     ["ImportError", "foo"], ["foo"]),
])
def test_reads_and_writes(cell: str, reads: list[str], writes: list[str]) -> None:
    # Given a cell / When it is analyzed / Then inputs and outputs are as Python scopes them
    got_reads, got_writes = analyze(cell)
    assert sorted(got_reads) == sorted(reads)
    assert got_writes == writes


def test_only_names_bound_on_every_path_hide_a_read() -> None:
    # Given a name bound in one arm of an if and then read
    # When analyzed / Then it is still an input (the other arm needs the kernel's value)
    assert "a" in analyze("if c:\n    a = 1\nprint(a)")[0]
    assert "a" not in analyze("if c:\n    a = 1\nelse:\n    a = 2\nprint(a)")[0]
    assert "a" in analyze("while c:\n    a = 1\nprint(a)")[0]


def test_function_bodies_read_late() -> None:
    # Given a function that uses a name the cell binds after defining it
    reads, _ = analyze("def f():\n    return helper() + g\ndef helper():\n    return 1\nf()")
    # Then that name is not an input, but the truly free one is
    assert reads == ["g"]


def test_global_declaration_writes_the_module() -> None:
    _, writes = analyze("def f():\n    global counter\n    counter = 1\nf()")
    assert "counter" in writes


def test_syntax_errors_surface() -> None:
    with pytest.raises(SyntaxError):
        analyze("x = (")


def test_select_leaves_out_builtins_hidden_names_and_dunders() -> None:
    # Given a namespace like IPython's, where `In` and `_` are its own
    hidden = {"In": [], "get_ipython": len}
    ns = {"x": 1, "In": hidden["In"], "get_ipython": len, "__name__": "__main__", "print": print,
          "len": "shadowed"}
    # When inputs are selected
    picked = select_inputs(["x", "In", "get_ipython", "__name__", "print", "len", "missing"], ns, hidden)
    # Then only the user's own values are kept (a shadowed builtin is the user's)
    assert picked == {"x": 1, "len": "shadowed"}


def test_pack_inputs_names_the_unpicklable_variable() -> None:
    # Given a namespace holding a lock among picklable values
    ns = {"ok": [1, 2], "lk": threading.Lock()}
    # When packed / Then the error names the variable and suggests the kernel executor
    with pytest.raises(UnpicklableInput) as info:
        pack_inputs(["ok", "lk"], ns)
    assert info.value.name == "lk"
    assert "'lk'" in str(info.value) and "--executor kernel" in str(info.value)
    assert isinstance(info.value, BgTasksError)
    assert "\n" not in str(info.value)


def test_the_culprit_is_the_input_that_reaches_a_socket() -> None:
    # Given a function whose globals hold an open socket, beside plain inputs and a module
    import json
    sock = socket.socket()
    try:
        ns: dict[str, object] = {"sock": sock}
        exec("def send():\n    return sock", ns)  # noqa: S102
        inputs = {"n": 3, "json": json, "send": ns["send"]}
        # When the inputs are searched / Then the function is named, not the module
        culprit = find_unpicklable(inputs)
        assert culprit is not None and culprit.name == "send"
        assert find_unpicklable({"n": 3, "json": json}) is None
    finally:
        sock.close()


def test_modules_travel_by_reference() -> None:
    import json
    back = cloudpickle.loads(cloudpickle.dumps(pack_inputs(["json", "x"], {"json": json, "x": 2})))
    assert back == {"json": json, "x": 2}
