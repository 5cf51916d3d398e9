"""The installed package wires itself into Jupyter: the server extension and the labextension;
and what it depends on is what running needs, no more.

These read the installation as `make` leaves it (editable install in the venv, labextension
linked into sys.prefix), with empty user-level Jupyter dirs so only sys.prefix counts.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import bgtasks_ext

try:
    import tomllib
except ImportError:  # Python 3.10: hatchling, a build tool here, brings tomli
    import tomli as tomllib  # type: ignore[no-redef]

JUPYTER = Path(sys.executable).parent / "jupyter"
REPO = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(tmp_path: Path, *args: str) -> str:
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    proc = subprocess.run(
        [str(JUPYTER), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    output = ANSI.sub("", proc.stdout + proc.stderr)
    assert proc.returncode == 0, output
    return output


def test_server_extension_is_enabled_and_loads(tmp_path: Path) -> None:
    # Given the package installed in this venv
    # When Jupyter lists its server extensions (and validates each by importing it)
    output = _jupyter(tmp_path, "server", "extension", "list")

    # Then bgtasks_ext is enabled by the installed config and validates OK
    assert re.search(r"^\s*bgtasks_ext\s+enabled\s*$", output, re.M), output
    assert re.search(r"^\s*bgtasks_ext\s+\S+\s+OK\s*$", output, re.M), output


def test_labextension_is_installed_enabled_and_ok(tmp_path: Path) -> None:
    # Given the package installed in this venv
    # When JupyterLab lists its prebuilt extensions
    output = _jupyter(tmp_path, "labextension", "list")

    # Then jupyter-bgtasks is there, enabled, its package checks out, at the Python version
    found = re.search(r"^\s*jupyter-bgtasks\s+v(\S+)\s+enabled\s+OK\b", output, re.M)
    assert found, output
    assert found.group(1) == bgtasks_ext.__version__, "labextension/package.json version"


def test_wheel_ships_the_labextension_and_the_server_config(tmp_path: Path) -> None:
    # Given the source tree with its labextension built (as `make` leaves it)
    # When a wheel is built from it, as `pip install .` would
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("jupyter_bgtasks-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    # Then it installs the prebuilt labextension and the config that enables the server extension
    data = f"jupyter_bgtasks-{bgtasks_ext.__version__}.data/data/"
    labext = data + "share/jupyter/labextensions/jupyter-bgtasks/"
    assert labext + "package.json" in names
    assert labext + "install.json" in names
    assert any(n.startswith(labext + "static/remoteEntry.") for n in names), sorted(names)
    assert data + "etc/jupyter/jupyter_server_config.d/bgtasks_ext.json" in names
    assert "bgtasks_ext/py.typed" in names
    # And installed into an existing JupyterLab, it asks for no JupyterLab of its own
    meta = zipfile.ZipFile(wheel).read(
        f"jupyter_bgtasks-{bgtasks_ext.__version__}.dist-info/METADATA").decode()
    lab = [line for line in meta.splitlines()
           if line.startswith("Requires-Dist: jupyterlab") and "extra ==" not in line]
    assert lab == [], lab


# -- what running needs ------------------------------------------------------------------

OPTIONAL = {"distributed": "dask", "dask": "dask (distributed brings it)", "tqdm": "imported only when the task's code has imported it"}
"""Third-party modules the package may import that running does not need: what makes each
optional. A new entry needs a reason."""


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_closure() -> set[str]:
    """Every distribution the runtime dependencies in pyproject.toml bring (no extras), by
    the metadata installed here."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    found: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if _key(req.name) in found:
            continue
        found.add(_key(req.name))
        try:
            todo.extend(Requirement(r) for r in metadata.requires(req.name) or [])
        except metadata.PackageNotFoundError:
            pass
    return found


def _imported_modules() -> dict[str, str]:
    """Top-level modules the package imports (anywhere, lazily too) -> one file importing it."""
    found: dict[str, str] = {}
    for path in sorted((REPO / "bgtasks_ext").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def test_running_needs_only_the_runtime_dependencies() -> None:
    # Given the runtime dependencies of pyproject.toml (what `pip install` of the wheel
    # brings, and all `make lab` adds besides JupyterLab)
    closure = _runtime_closure()
    providers = metadata.packages_distributions()

    # When every third-party module the package imports is traced to its distribution
    missing = {}
    for module, where in _imported_modules().items():
        if module in sys.stdlib_module_names or module == "bgtasks_ext" or module in OPTIONAL:
            continue
        dists = {_key(d) for d in providers.get(module, [])}
        if not dists & closure:
            missing[module] = where

    # Then each comes with them (not only with the test extras installed here)
    assert missing == {}, f"imported at run time, not brought by `dependencies`: {missing}"
    # And they bring neither JupyterLab (the `lab` extra) nor the test tools
    assert {"jupyterlab", "pytest", "playwright", "distributed"}.isdisjoint(closure)


def _dry_run(target: str) -> str:
    """The commands `make TARGET` would run from scratch (`-n -B`: printed, none run)."""
    proc = subprocess.run(["make", "-n", "-B", target], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(not (REPO / "Makefile").exists(), reason="not a source checkout")
def test_make_lab_installs_no_test_extras_and_make_test_lints() -> None:
    # When `make lab` and `make test` are dry-run from scratch
    lab, test = _dry_run("lab"), _dry_run("test")
    installs = re.compile(r"pip install .*-e \"\.\[([^\]]*)\]\"")

    # Then `make lab` installs the package with JupyterLab only: no test or dask extras
    assert installs.findall(lab) == ["lab"], lab
    # And `make test` adds the test extras, lints the labextension, then runs the tests
    assert installs.findall(test) == ["lab,test"], test
    lint = test.index("lint:check")
    assert lint < test.index("-m pytest tests")
    assert installs.search(test, 0, lint) is not None, "linting runs after the set-up"
