"""``run()`` in this process: signals, exit codes, and one-line failures.

``run()`` calls ``trio.run`` itself, so these are plain (sync) tests on the main
thread, where signal handlers can be installed. A client thread waits for the
"Listening on" log line, makes its request, then signals this process.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from trio_asgi import AppLoadError, Config
from trio_asgi._cli import main
from trio_asgi._run import run

ROOT = str(Path(__file__).resolve().parent.parent)
TIMEOUT = 15.0


class LogLines(logging.Handler):
    """The messages of the trio_asgi logger, for a thread to wait on."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.put(record.getMessage())

    def wait_for(self, text: str) -> str:
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            self.seen.append(line)
            if text in line:
                return line

    def all(self) -> list[str]:
        while not self.lines.empty():
            self.seen.append(self.lines.get_nowait())
        return self.seen


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Iterator[LogLines]:
    monkeypatch.setattr(sys, "path", [ROOT, *sys.path])
    # run() installs its own handlers while it runs; outside it, a stray signal from a
    # failing client thread must not end the test session.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    for name in [name for name in os.environ if name.startswith("TRIO_ASGI_")]:
        monkeypatch.delenv(name)
    loggers = [logging.getLogger("trio_asgi"), logging.getLogger("trio_asgi.access")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    handler = LogLines()
    loggers[0].addHandler(handler)
    loggers[0].setLevel(logging.INFO)
    yield handler
    for logger, handlers, level, propagate in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    for sig, handler_before in previous.items():
        signal.signal(sig, handler_before)


def _ignore(signum: int, frame: object) -> None:
    pass


def in_thread(work: Callable[[], None], *stop: signal.Signals) -> Callable[[], None]:
    """Start ``work`` on a thread; the returned function joins it and re-raises its error.

    If ``work`` fails, the ``stop`` signals are sent anyway, so ``run()`` cannot hang.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
            for sig in stop:
                os.kill(os.getpid(), sig)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        if errors:
            raise errors[0]

    return join


def url_from(log: LogLines) -> str:
    match = re.search(r"http://\S+", log.wait_for("Listening on"))
    assert match is not None
    return match[0]


# trio forced: with "auto", what other tests imported into this process would decide.
CONFIG = Config(bind=("127.0.0.1:0",), access_log=False, loop="trio")


def test_sigterm_shuts_down_gracefully(log: LogLines) -> None:
    from tests.fixtures import apps

    def client() -> None:
        assert httpx.get(url_from(log) + "/x", timeout=TIMEOUT).text == "hello from /x"
        os.kill(os.getpid(), signal.SIGTERM)

    join = in_thread(client, signal.SIGTERM)
    assert run(apps.app, CONFIG) == 0
    join()
    lines = log.all()
    assert "Shutting down (signal SIGTERM)..." in lines
    assert lines[-1] == f"Finished server process [{os.getpid()}]"


def test_second_sigterm_only_reminds_second_sigint_forces(log: LogLines) -> None:
    started = threading.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            started.set()
            await anyio.sleep_forever()  # a request that never finishes

    def client() -> None:
        url = url_from(log)
        join_request = in_thread(lambda: _request_until_closed(url))
        assert started.wait(TIMEOUT)
        for sig, line in [
            (signal.SIGTERM, "Shutting down (signal SIGTERM)"),
            (signal.SIGTERM, "Already shutting down"),
            (signal.SIGINT, "Second SIGINT"),
        ]:
            os.kill(os.getpid(), sig)
            log.wait_for(line)
        join_request()

    join = in_thread(client, signal.SIGINT, signal.SIGINT)
    assert run(slow, CONFIG.replace(timeout_graceful_shutdown=60, lifespan="off")) == 130
    join()
    lines = log.all()
    assert "Shutting down (signal SIGTERM)..." in lines
    assert "Already shutting down (signal SIGTERM); send SIGINT to force it" in lines
    assert "Second SIGINT: forcing shutdown, cancelling what is still running" in lines


def _request_until_closed(url: str) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=TIMEOUT)


def test_signal_during_startup_stops_at_once(log: LogLines) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep_forever()  # startup never completes

    assert run(app, CONFIG) == 0
    assert "Stopping during startup (signal SIGINT)" in log.all()


def test_failed_startup_is_exit_3_and_one_line(log: LogLines) -> None:
    from tests.fixtures import apps

    assert run(apps.startup_fails, CONFIG, install_signal_handlers=False) == 3
    assert log.all()[-1] == (
        "Cannot start: lifespan startup failed: database unreachable at db:5432"
    )


def test_address_in_use_is_exit_3_and_one_line(log: LogLines) -> None:
    from tests.fixtures import apps

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = CONFIG.replace(bind=(f"127.0.0.1:{port}",))
        assert run(apps.app, config, install_signal_handlers=False) == 3  # as Uvicorn
    assert log.all()[-1] == f"Cannot listen on 127.0.0.1:{port}: Address already in use"


def test_unexpected_errors_are_not_hidden() -> None:
    # Not an expected failure (the command checks apps before run()): it is raised.
    with pytest.raises(BaseExceptionGroup) as info:
        run(42, CONFIG, install_signal_handlers=False)  # type: ignore[arg-type]
    assert info.group_contains(AppLoadError)


def test_the_command_in_this_process(log: LogLines) -> None:
    def client() -> None:
        response = httpx.get(url_from(log) + "/hello", timeout=TIMEOUT)
        assert response.json()["message"] == "Hello from trio-asgi!"
        os.kill(os.getpid(), signal.SIGTERM)

    join = in_thread(client, signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        main(["--port", "0", "--no-access-log"])
    join()
    assert info.value.code == 0
    assert "No app given: serving the built-in demo app (trio_asgi._demo:app)" in log.all()
