"""Loads pytest-jupyter for the whole suite (pytest only allows this at the top), and
groups tests for ``make test``'s two xdist workers (``--dist loadgroup``): the browser
tests share one JupyterLab and one Chromium, the kernel and notebook tests one server,
so each group runs on one worker while the other takes everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

HERE = Path(__file__).resolve().parent
GROUPS = {"browser": "browser", "kernel": "kernel", "notebooks": "kernel", "dask": "dask"}
"""Top folder under tests/ -> the xdist group its tests run in."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = Path(str(item.fspath)).resolve().relative_to(HERE).parts[0]
        except ValueError:
            continue
        group = GROUPS.get(top)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
