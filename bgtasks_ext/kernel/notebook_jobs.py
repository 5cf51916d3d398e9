"""What a notebook sends to run another notebook as a job (the ``notebook`` kind).

The kind names its notebook relative to the server's ``root_dir``, as the file browser
and the contents API do; a user in a notebook thinks relative to the kernel's working
directory (``sub/report.ipynb``, ``../data/clean.ipynb``). The server gives the kernels
it starts its root (``BGTASKS_ROOT``), so :func:`root_relative` turns one into the
other here, and refuses a path outside the root before anything is sent (the server
would refuse it too, but could only name the root-relative path the user never typed).

:func:`parse_parameter` and :func:`split_words` are the ``%bgtask --notebook`` line's
grammar: ``-p NAME=VALUE`` with a Python literal (or else a string) as its value, a
value that may hold spaces inside quotes or brackets (``-p title="Q3 sales"``,
``-p xs=[1, 2]``). IPython's own splitting cuts those at the space.

Whether the file exists, is a notebook, or its kernel is known is the server's to say
(it is the one that runs it, maybe on another machine than this kernel); its 400s
reach the user as they are.
"""

from __future__ import annotations

import ast
import json
import os
from typing import Any

from ..core.constants import ENV_ROOT
from ..core.errors import InvalidInput

NO_ROOT = (f"this kernel does not know the server's root directory ({ENV_ROOT} is not set: "
           "it was not started by a Jupyter server running jupyter-bgtasks); set "
           f"os.environ[{ENV_ROOT!r}] to the server's root_dir, or give the path relative to it "
           "with the REST API")


def server_root() -> str:
    """The server's ``root_dir`` (absolute), from this kernel's environment."""
    root = os.environ.get(ENV_ROOT)
    if not root:
        raise InvalidInput(ENV_ROOT, NO_ROOT)
    return os.path.abspath(os.path.expanduser(root))


def _inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` (``/``-separated), None when it leaves the root."""
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


def root_relative(path: Any, field: str = "path", *, root: str | None = None,
                  cwd: str | None = None) -> str:
    """``path`` (relative to ``cwd``, the kernel's working directory by default, or
    absolute) as the server names it: relative to its root, ``/``-separated.

    Lexically first (``a/../b``), so a symlink inside the root is sent as the user
    named it and the server judges where it leads; then through real paths, for a root
    or a working directory reached by another name (a symlinked home). Raises
    :class:`InvalidInput` naming ``field`` for a path that is empty, not a string, or
    outside the root."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput(field, f"give the notebook's path as a non-empty string, not {path!r}")
    root = server_root() if root is None else os.path.abspath(root)
    full = os.path.normpath(os.path.join(cwd or os.getcwd(), os.path.expanduser(path)))
    rel = _inside(full, root)
    if rel is None:
        rel = _inside(os.path.realpath(full), os.path.realpath(root))
    if rel is None:
        raise InvalidInput(field, f"{path!r} is outside the server's root directory {root} "
                           f"(it resolves to {full}); jobs run files under the root only")
    return rel


def _json_value(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def parse_parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> ``(NAME, value)``: ``VALUE`` as a Python literal when
    :func:`ast.literal_eval` takes it (``3``, ``0.5``, ``'x'``, ``[1, 2]``, ``None``),
    else as the string it is (``-p region=north``). Raises :class:`InvalidInput` naming
    ``-p`` for a missing ``=``, a name that is not a Python name, or a literal JSON
    cannot carry (a set, bytes, a complex number, inf)."""
    text = unquote(text)
    name, eq, raw = text.partition("=")
    name = name.strip()
    if not eq:
        raise InvalidInput("-p", f"{text!r}: write NAME=VALUE, e.g. -p n=3")
    if not name.isidentifier():
        raise InvalidInput("-p", f"{name!r} is not a Python name (NAME=VALUE sets a variable)")
    raw = raw.strip()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return name, raw
    if isinstance(value, tuple):
        value = list(value)
    if not _json_value(value):
        raise InvalidInput("-p", f"{name}={raw}: a {type(value).__name__} cannot be a notebook "
                           "parameter (numbers, strings, booleans, None, lists and dicts can)")
    return name, value


def unquote(text: str) -> str:
    """``"a b"`` -> ``a b``: one pair of matching outer quotes off."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


_CLOSE = {"(": ")", "[": "]", "{": "}"}


def split_words(line: str) -> list[str]:
    """Split at whitespace outside quotes and brackets; quotes are kept (a ``-p``
    value's quotes make it a string literal)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    nesting: list[str] = []
    escaped = False
    for ch in line:
        if quote:
            word.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in _CLOSE:
            nesting.append(_CLOSE[ch])
        elif nesting and ch == nesting[-1]:
            nesting.pop()
        elif ch.isspace() and not nesting:
            if word:
                words.append("".join(word))
                word = []
            continue
        word.append(ch)
    if word:
        words.append("".join(word))
    return words
