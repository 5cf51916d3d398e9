"""A notebook job's files: paths relative to the server's root (as the file browser and
the contents API name them), and the executed copy written beside the source.

One resolver serves the admission check and the run, so what was admitted is what runs:
a path is ``/``-separated, relative, and must stay inside the root once symlinks are
followed.
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..core.errors import InvalidInput

SUFFIX = ".ipynb"


def resolve(root: Path, rel: str, field: str) -> Path:
    """``rel`` under ``root`` (both followed through symlinks), or :class:`InvalidInput`
    naming ``field`` when it is empty, absolute, or leaves the root."""
    if not rel.strip():
        raise InvalidInput(field, "must not be empty")
    if "\0" in rel:
        raise InvalidInput(field, f"{rel!r} holds a NUL character, which no file name can")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("\\") or (len(rel) > 1 and rel[1] == ":"):
        raise InvalidInput(field, f"{rel!r} must be relative to the server's root directory, "
                           "not absolute")
    if ".." in pure.parts:
        raise InvalidInput(field, f"{rel!r} must stay inside the server's root directory (no '..')")
    try:
        full = (root / pure).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop: RuntimeError before 3.13, ELOOP after
        why = "a symlink loop" if isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP else exc
        raise InvalidInput(field, f"cannot follow {rel!r}: {why}") from None
    if full != root and root not in full.parents:
        raise InvalidInput(field, f"{rel!r} leaves the server's root directory (a symlink "
                           "points outside it)")
    return full


def _exists(full: Path, rel: str, field: str) -> bool:
    """Whether ``full`` exists; what the system refuses to look up (a name too long)
    is :class:`InvalidInput` naming ``field``, not a server error."""
    try:
        os.stat(full)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise InvalidInput(field, f"cannot look up {rel!r}: {exc.strerror or exc}") from None
    return True


def root_of(root_dir: str | None) -> Path:
    """The root, followed through symlinks (the current directory when there is no server)."""
    return Path(root_dir or os.getcwd()).resolve()


def notebook_file(root: Path, rel: str, field: str = "params.path") -> Path:
    """The notebook at ``rel``: an existing file ending ``.ipynb`` inside the root."""
    full = resolve(root, rel, field)
    if not _exists(full, rel, field):
        raise InvalidInput(field, f"no such file: {rel!r} (relative to the server's root directory)")
    if not full.is_file():
        what = "a directory" if full.is_dir() else "not a regular file"
        raise InvalidInput(field, f"{rel!r} is {what}, not a notebook file")
    if full.suffix != SUFFIX:
        raise InvalidInput(field, f"{rel!r} is not a notebook (a file ending {SUFFIX})")
    return full


def read_notebook(full: Path, rel: str, field: str = "params.path") -> Any:
    """The notebook as nbformat v4, or :class:`InvalidInput` saying why it cannot be read."""
    import nbformat

    try:
        text = full.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(field, f"cannot read {rel!r}: {exc}") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(field, f"{rel!r} is not a readable notebook: {reason}") from None
    if not isinstance(nb.get("cells"), list):
        raise InvalidInput(field, f"{rel!r} is not a readable notebook: it has no cells")
    return nb


def peek_notebook(full: Path, rel: str, field: str = "params.path") -> dict[str, Any]:
    """The notebook's metadata, checked as admission needs it: JSON with v4 cells (what
    :func:`read_notebook` takes), without nbformat's schema validation (~25 ms for a
    300-cell notebook, on the server's event loop). Older formats go through nbformat."""
    try:
        text = full.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(field, f"cannot read {rel!r}: {exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise InvalidInput(field, f"{rel!r} is not a readable notebook: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int):
        raise InvalidInput(field, f"{rel!r} is not a readable notebook: no 'nbformat' version")
    if data["nbformat"] > 4:
        raise InvalidInput(field, f"{rel!r} is not a readable notebook: unsupported nbformat "
                           f"version {data['nbformat']}")
    if data["nbformat"] < 4 or not isinstance(data.get("cells"), list):
        return dict(read_notebook(full, rel, field).metadata)
    # What the run's nbformat.reads needs of each part (a quick look, not the schema):
    # refused here rather than failing the task once it starts.
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidInput(field, f"{rel!r} is not a readable notebook: its metadata is not an object")
    for n, cell in enumerate(data["cells"], 1):
        if not (isinstance(cell, dict) and isinstance(cell.get("cell_type"), str)
                and "source" in cell and isinstance(cell.get("metadata"), dict)):
            raise InvalidInput(field, f"{rel!r} is not a readable notebook: cell {n} is not a "
                               "notebook cell (an object with cell_type, source and metadata)")
    return metadata


def kernelspec_name(metadata: dict[str, Any]) -> str | None:
    """The notebook's ``metadata.kernelspec.name`` when it is a name (else ``None``)."""
    spec = metadata.get("kernelspec")
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else None


@dataclass(frozen=True)
class Target:
    """Where a job runs, found before the Jupyter stack is imported (so that its kernel
    starts meanwhile)."""

    root: Path
    path: str
    """The notebook, root-relative, as given."""
    source: Path
    kernel_name: str
    folder: str
    """The kernel's working directory (absolute)."""


def locate(root_dir: str | None, path: str, kernel_name: str | None, cwd: str | None,
           default_kernel: str = "python3") -> Target:
    """The notebook at ``path``, its kernel (``kernel_name``, else its kernelspec's) and
    the kernel's folder (``cwd``, else the notebook's)."""
    root = root_of(root_dir)
    source = notebook_file(root, path)
    name = kernel_name or kernelspec_name(peek_notebook(source, path)) or default_kernel
    folder = source.parent if cwd is None else directory(root, cwd)
    return Target(root, path, source, str(name), str(folder))


def directory(root: Path, rel: str, field: str = "params.cwd") -> Path:
    """The existing directory at ``rel`` inside the root (``""`` or ``"."``: the root)."""
    if rel.strip() in ("", "."):
        return root
    full = resolve(root, rel, field)
    exists = _exists(full, rel, field)
    if not (exists and full.is_dir()):
        what = "a file" if exists else "no such directory"
        raise InvalidInput(field, f"{rel!r} is {what}: it must be an existing directory "
                           "inside the server's root directory")
    return full


def check_writable_beside(root: Path, rel: str, field: str = "params.path") -> None:
    """The executed copy goes beside the notebook: refuse a job whose folder cannot take
    it (read-only, not ours) before it runs, rather than fail it once every cell ran."""
    folder = root / PurePosixPath(rel).parent
    if not os.access(folder, os.W_OK | os.X_OK):
        where = PurePosixPath(rel).parent.as_posix()
        where = "the root directory" if where == "." else f"folder {where!r}"
        raise InvalidInput(field, f"the executed copy is written beside the notebook, and "
                           f"{where} is not writable")


def copy_name(source: PurePosixPath, started: float, taken: int = 1) -> PurePosixPath:
    """``<stem>.<YYYY-MM-DDTHH-MM-SS>.ipynb`` beside ``source`` (local time of ``started``);
    ``-2``, ``-3``... after the time when that name is taken."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.localtime(started))
    extra = f"-{taken}" if taken > 1 else ""
    return source.with_name(f"{source.stem}.{stamp}{extra}{SUFFIX}")


def write_copy(nb: Any, root: Path, source: str, started: float) -> str:
    """Write ``nb`` beside ``source`` (root-relative) under its first free timestamped
    name; returns that name, root-relative. Written whole to a temp file, then linked to
    its name (a link never replaces a file): a reader never sees half a notebook, and two
    jobs ending together never take one name."""
    import nbformat

    src = PurePosixPath(source)
    folder = root / src.parent
    tmp = folder / f".{src.stem}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    try:
        nbformat.write(nb, str(tmp))
        taken = 1
        while True:
            rel = copy_name(src, started, taken)
            try:
                os.link(tmp, root / rel)
                return rel.as_posix()
            except FileExistsError:
                taken += 1
    except OSError as exc:  # the folder became read-only, the disk is full...: say which copy
        raise OSError(f"the executed copy could not be written beside {source}: "
                      f"{exc.strerror or exc}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def first_line(source: str, limit: int = 80) -> str:
    """A cell's first non-blank line, cut to ``limit`` characters."""
    for line in source.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
