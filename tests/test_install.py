"""The installed package wires itself into Jupyter: the server extension and the labextension.

These read the installation as `make` leaves it (editable install in the venv, labextension
linked into sys.prefix), with empty user-level Jupyter dirs so only sys.prefix counts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import bgtasks_ext

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
