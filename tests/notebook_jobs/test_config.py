"""``c.BgTasks.notebook_kernels``: validated by traitlets, handed to the notebook kind's
settings (with the server's root) and its admission check (root and kernel names)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from traitlets import TraitError

from bgtasks_ext.server.app import BgTasks


def test_notebook_kernels_below_0_is_refused() -> None:
    with pytest.raises(TraitError):
        BgTasks(notebook_kernels=-1)


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"bgtasks_ext": True}},
        "BgTasks": {"store_path": str(tmp_path / "store" / "tasks.sqlite"), "workers": 1,
                    "notebook_kernels": 3},
    }


def test_the_kind_gets_its_settings_and_the_servers_root(jp_serverapp: Any) -> None:
    # Given a real server with the extension, keeping 3 kernels per worker
    app = next(e for e in jp_serverapp.extension_manager.extension_apps["bgtasks_ext"]
               if isinstance(e, BgTasks))
    # When its engine is made
    engine = app.engine
    # Then the notebook kind's settings and its admission check know the root and kernels
    root = os.path.abspath(jp_serverapp.root_dir)
    assert engine.config.kind_settings["notebook"] == {"kernels": 3, "root_dir": root}
    assert engine.kinds.site.root_dir == root
    names = engine.kinds.site.kernel_names
    assert names is not None and "python3" in (names() or ())
