"""The engine imports nothing from Jupyter, tornado, IPython or ipywidgets."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("jupyter_server", "jupyter_client", "tornado", "IPython", "ipywidgets", "ipykernel", "traitlets")


def test_core_store_executors_import_no_jupyter() -> None:
    # Given a fresh interpreter
    code = (
        "import sys\n"
        "import bgtasks_ext.core.engine, bgtasks_ext.store.sqlite, bgtasks_ext.store.memory\n"
        "import bgtasks_ext.executors.thread, bgtasks_ext.executors.process, bgtasks_ext.kinds\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    # When the engine and its plug-ins are imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Then none of the Jupyter side came with them
    assert out.stdout.strip() == ""
