"""What a Uvicorn user types and reads: Uvicorn's spellings, and Uvicorn's log lines.

Flags are checked through the parser; the logs, ``--env-file``, ``--log-config`` and
exit codes on real ``python -m trio_asgi`` processes (and ``trio_asgi.run()`` in one).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_cli import ROOT, TIMEOUT, Lines, config_for, listening_url, run_main
from tests.test_cli import _restore_logging as _restore_logging  # the autouse fixture
from tests.test_cli import start as start  # the fixture, shared

# --- Uvicorn's spellings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], True),
        (["--ws-per-message-deflate"], True),
        (["--no-ws-per-message-deflate"], False),
        (["--ws-per-message-deflate", "false"], False),
        (["--ws-per-message-deflate", "0"], False),
        (["--ws-per-message-deflate", "True"], True),
    ],
)
def test_ws_per_message_deflate_takes_a_value_as_in_uvicorn(
    argv: list[str], expected: bool
) -> None:
    assert config_for(argv).ws_per_message_deflate is expected


def test_ws_per_message_deflate_with_a_bad_value_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_main(["--ws-per-message-deflate", "maybe"], capsys)
    assert code == 2
    assert "argument --ws-per-message-deflate: expected 1/0, true/false" in err


def test_loop_auto_and_log_level_trace_are_accepted() -> None:
    assert config_for(["--loop", "auto"]).loop == "auto"
    from trio_asgi._logging import LOG_LEVELS, configure_logging

    configure_logging("trace", None, False)
    assert logging.getLogger("trio_asgi").level == LOG_LEVELS["trace"] == 5
    assert logging.getLevelName(5) == "TRACE"


def test_h11_max_incomplete_event_size_is_our_head_limit() -> None:
    assert config_for(["--h11-max-incomplete-event-size", "32768"]).max_header_size == 32768
    both = ["--h11-max-incomplete-event-size", "32768", "--max-header-size", "4096"]
    assert config_for(both).max_header_size == 4096  # our own name wins


def test_env_file_without_python_dotenv_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("TRIO_ASGI_PORT=0\n")
    monkeypatch.setitem(sys.modules, "dotenv", None)  # how Python marks "not importable"
    code, _, err = run_main(["--env-file", str(tmp_path / ".env")], capsys)
    assert code == 2
    assert err == (
        "trio-asgi: error: env_file: reading it needs python-dotenv "
        "(pip install 'trio-asgi[dotenv]')\n"
    )


def test_env_file_that_is_not_there(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_main(["--env-file", str(tmp_path / "nope.env")], capsys)
    assert (code, err.count("\n")) == (2, 1)
    assert "env_file: " in err


def test_env_file_sets_options_and_the_apps_environment(start: Any, tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("TRIO_ASGI_PORT=0\nTRIO_ASGI_ACCESS_LOG=false\nGREETING=from the file\n")
    process, stdout, stderr = start("tests.fixtures.env_app:app", "--env-file", str(env_file))
    url = listening_url(stderr)  # port 0 came from the file (the default is 8000)
    assert httpx.get(url, timeout=TIMEOUT).text == "from the file"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0
    assert stdout.rest() == []  # the file turned the access log off


# --- Uvicorn's log lines ------------------------------------------------------------------------


def test_startup_and_shutdown_lines_as_in_uvicorn(start: Any) -> None:
    process, _, stderr = start("tests.fixtures.apps:app", "--port", "0")
    listening_url(stderr)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0
    lines = [line.split(maxsplit=1)[1] for line in stderr.rest() if line.startswith("INFO")]
    expected = [
        f"Started server process [{process.pid}]",
        "Waiting for application startup.",
        "Application startup complete.",
        "Shutting down (signal SIGTERM)...",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
        f"Finished server process [{process.pid}]",
    ]
    assert [line for line in lines if line in expected] == expected


def test_a_log_config_with_only_a_root_handler_keeps_our_info_lines(
    start: Any, tmp_path: Path
) -> None:
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"mine": {"format": "mine|%(levelname)s|%(name)s|%(message)s"}},
        "handlers": {
            "out": {
                "class": "logging.StreamHandler",
                "formatter": "mine",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["out"]},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    process, _, stderr = start("tests.fixtures.apps:app", "--port", "0", "--log-config", str(path))
    line = stderr.wait_for(lambda line: "Listening on http://" in line)
    url = line.rpartition(" ")[2]
    assert httpx.get(f"{url}/x", timeout=TIMEOUT).status_code == 200
    access = stderr.wait_for(lambda line: "GET /x" in line)
    assert access.startswith("mine|INFO|trio_asgi.access|127.0.0.1:")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=TIMEOUT) == 0
    lines = stderr.seen + stderr.rest()
    assert f"mine|INFO|trio_asgi|Started server process [{process.pid}]" in lines
    assert "mine|INFO|trio_asgi|Application startup complete." in lines
    assert f"mine|INFO|trio_asgi|Finished server process [{process.pid}]" in lines


def test_a_port_in_use_exits_3_with_one_line(start: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process, _, stderr = start("tests.fixtures.apps:app", "--port", str(port))
        assert process.wait(timeout=TIMEOUT) == 3
    lines = stderr.rest()
    assert lines[-1] == f"ERROR    Cannot listen on 127.0.0.1:{port}: Address already in use"
    assert not any("Traceback" in line for line in lines)


# --- trio_asgi.run() ----------------------------------------------------------------------------


def _python(code: str) -> subprocess.Popen[str]:
    environ = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environ,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_run_with_a_string_that_does_not_load_is_one_line_and_exit_3() -> None:
    process = _python("import sys, trio_asgi; sys.exit(trio_asgi.run('tests.fixtures.apps:nope'))")
    _, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 3
    assert err == "ERROR    Cannot load the app: 'tests.fixtures.apps' has no attribute 'nope'\n"


def test_run_sets_up_logging_like_the_command() -> None:
    process = _python(
        "import sys, trio_asgi\n"
        "config = trio_asgi.Config(bind=('127.0.0.1:0',))\n"
        "sys.exit(trio_asgi.run('tests.fixtures.apps:app', config))\n"
    )
    assert process.stderr is not None
    stderr = Lines(process.stderr)
    try:
        url = listening_url(stderr)
        assert httpx.get(f"{url}/y", timeout=TIMEOUT).text == "hello from /y"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 0
        lines = stderr.rest()
    finally:
        if process.poll() is None:
            process.kill()
        out, _ = process.communicate(timeout=TIMEOUT)
        stderr.close()
    assert f"INFO     Started server process [{process.pid}]" in lines
    assert "INFO     Application startup complete." in lines
    assert '"GET /y HTTP/1.1" 200 OK' in out  # the access log, on stdout
