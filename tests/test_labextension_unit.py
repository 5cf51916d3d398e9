"""The labextension's own unit tests (the TypeScript model: event merging, reconnects,
backoff, paging) run by ``jlpm test`` with Node's built-in test runner; this makes
``make test`` run them and fail when they fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

LABEXTENSION = Path(__file__).resolve().parents[1] / "labextension"
JLPM = Path(sys.executable).parent / "jlpm"


def test_the_labextension_unit_tests_pass() -> None:
    # Given the labextension with its dependencies installed (`make setup`)
    jlpm = str(JLPM) if JLPM.exists() else shutil.which("jlpm")
    assert jlpm, "jlpm not found: run `make setup`"
    assert (LABEXTENSION / "node_modules").is_dir(), "run `make setup` first"

    # When its test script runs
    proc = subprocess.run(
        [jlpm, "test"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_COLOR": "1", "CI": "true"},
    )
    out = proc.stdout + proc.stderr

    # Then every test passed, and there were tests to pass
    assert proc.returncode == 0, out
    counts = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", out, re.M))
    assert int(counts.get("tests", 0)) >= 10, out
    assert counts.get("fail") == "0", out
