"""A real Jupyter server with the extension, through pytest-jupyter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest



@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"bgtasks_ext": True}},
        "BgTasks": {"store_path": str(tmp_path / "store" / "tasks.sqlite"), "workers": 1},
    }


@pytest.fixture
def bgtasks_app(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The server with its extensions started, as a real server's ``_post_start`` does
    (pytest-jupyter starts the app but never runs that hook)."""
    jp_asyncio_loop.run_until_complete(jp_serverapp.extension_manager.start_all_extensions())
    return jp_serverapp
