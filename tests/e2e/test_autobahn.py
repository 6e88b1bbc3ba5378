"""Autobahn's fuzzing-client cases 1 to 11 against trio-asgi (about half a minute).

The suite has no sections 8 or 11, so this is every case but the slow compression
ones (12.x and 13.x); ``nox -s autobahn`` runs those too. kosoku runs in a child
process: it patches the interpreter it runs in (``sys.path``, ``binascii``) for
Autobahn's Python 2 era case files, which must not leak into the test session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("kosoku", reason="kosoku is not installed: pip install -e '.[test]'")

pytestmark = pytest.mark.slow

RUNNER = Path(__file__).with_name("run_autobahn.py")
#: Far more than the half minute the cases take on two busy cores.
TIMEOUT = 600


def test_autobahn_cases_1_to_11_pass(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    command = [sys.executable, str(RUNNER), "-x", "12.*", "-x", "13.*"]
    run = subprocess.run(
        [*command, "--summary-json", str(summary_file)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    print(run.stdout, run.stderr)
    summary = json.loads(summary_file.read_text())
    assert summary["failures"] == []
    assert summary["counts"].get("FAILED", 0) == 0
    # Every case ran: a selection that silently matched nothing must not pass.
    assert sum(summary["counts"].values()) >= 301
    assert run.returncode == 0
