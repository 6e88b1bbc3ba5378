"""``--reload``: a real server process restarted by real file changes (watchfiles)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from process_helpers import POLL, ServerProcess, server

from trio_asgi._config import Config
from trio_asgi._reload import ChangeFilter, watched_dirs

pytest.importorskip("watchfiles")

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"{version}"}})
"""


def serves(proc: ServerProcess, body: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if proc.get(timeout=5)[1] == body:
                return
        except OSError:
            pass  # between two server processes: the port stays bound, this waits or fails
        assert time.monotonic() < deadline, f"never served {body!r}:\n{proc.log}"
        time.sleep(POLL)


def test_reload_picks_up_an_edit_and_survives_a_syntax_error(tmp_path: Path) -> None:
    module = tmp_path / "reloadable.py"
    module.write_text(APP.format(version="v1"))
    args = ("--reload", "--reload-delay", "0.05", "--port", "0", "--app-dir", str(tmp_path))
    with server(*args, "reloadable:app", cwd=str(tmp_path)) as proc:
        serves(proc, "v1")
        proc.wait_for("Watching for changes")
        module.write_text(APP.format(version="v2"))
        serves(proc, "v2")
        module.write_text("def broken(:\n")
        proc.wait_for(r"waiting for a file change")
        assert "SyntaxError" in proc.log
        assert "Traceback" not in proc.log  # one line, not a traceback
        assert proc.process.poll() is None  # the reloader waits, it does not exit
        module.write_text(APP.format(version="v3"))
        serves(proc, "v3")
        proc.signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert proc.log.count("Started worker process") == 4  # v1, v2, broken, v3


def test_files_that_do_not_match_do_not_reload(tmp_path: Path) -> None:
    accept = ChangeFilter((), ())
    assert accept(None, str(tmp_path / "app.py"))
    assert not accept(None, str(tmp_path / "notes.txt"))
    assert not accept(None, str(tmp_path / ".git" / "x.py"))
    assert not accept(None, str(tmp_path / "__pycache__" / "x.py"))
    custom = ChangeFilter(("*.html",), ("drafts",))
    assert custom(None, str(tmp_path / "page.html"))
    assert not custom(None, str(tmp_path / "drafts" / "page.html"))


def test_watched_dirs_default_to_cwd_and_app_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    assert watched_dirs(Config(), "src") == [tmp_path]  # inside the current directory
    other = tmp_path.parent
    assert watched_dirs(Config(reload_dir=(str(other),)), ".") == [other]
