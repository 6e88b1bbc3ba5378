"""``run()`` and the command on each ``--loop``: trio, asyncio and uvloop.

Like ``test_run.py`` these are sync tests on the main thread (``run()`` starts the
loop itself); its fixtures and helpers are reused. What differs between loops is
only which event loop the app finds itself on, and that signals still stop the
server gracefully (a second SIGINT forcing it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from typing import Any

import anyio
import httpx
import pytest
import sniffio

from tests.test_run import CONFIG, TIMEOUT, LogLines, in_thread, url_from
from tests.test_run import log as log  # the fixture, shared
from trio_asgi import Config, ConfigError
from trio_asgi._cli import main
from trio_asgi._run import run

LOOPS = ["trio", "asyncio", "uvloop"]


def _loop_name() -> str:
    """The library the app runs on, and for asyncio which loop implementation."""
    library = sniffio.current_async_library()
    if library == "asyncio":
        loop_module = type(asyncio.get_running_loop()).__module__
        return "uvloop" if loop_module.startswith("uvloop") else "asyncio"
    return library


@pytest.mark.parametrize("loop", LOOPS)
def test_sigterm_shuts_down_gracefully_on_each_loop(log: LogLines, loop: str) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(f"{scope['type']} on {_loop_name()}")
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def client() -> None:
        assert httpx.get(url_from(log), timeout=TIMEOUT).text == "ok"
        os.kill(os.getpid(), signal.SIGTERM)

    join = in_thread(client, signal.SIGTERM)
    assert run(app, CONFIG.replace(loop=loop)) == 0
    join()
    assert seen == [f"lifespan on {loop}", f"http on {loop}"]
    lines = log.all()
    assert "Shutting down (signal SIGTERM)..." in lines
    assert lines[-1] == f"Finished server process [{os.getpid()}]"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_second_sigint_forces_on_asyncio(log: LogLines, loop: str) -> None:
    started = threading.Event()

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        started.set()
        await anyio.sleep_forever()  # a request that never finishes

    def client() -> None:
        url = url_from(log)
        join_request = in_thread(lambda: _request_until_closed(url))
        assert started.wait(TIMEOUT)
        for line in ["Shutting down (signal SIGINT)", "Second SIGINT"]:
            os.kill(os.getpid(), signal.SIGINT)
            log.wait_for(line)
        join_request()

    join = in_thread(client, signal.SIGINT, signal.SIGINT)
    config = CONFIG.replace(loop=loop, lifespan="off", timeout_graceful_shutdown=60)
    assert run(slow, config) == 130
    join()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_signal_during_startup_stops_at_once_on_asyncio(log: LogLines, loop: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep_forever()  # startup never completes

    assert run(app, CONFIG.replace(loop=loop)) == 0
    assert "Stopping during startup (signal SIGINT)" in log.all()


def _request_until_closed(url: str) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(url, timeout=TIMEOUT)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_failed_startup_is_exit_3_on_asyncio(log: LogLines, loop: str) -> None:
    from tests.fixtures import apps

    config = CONFIG.replace(loop=loop)
    assert run(apps.startup_fails, config, install_signal_handlers=False) == 3
    assert log.all()[-1] == (
        "Cannot start: lifespan startup failed: database unreachable at db:5432"
    )


def test_uvloop_not_installed_is_exit_2_and_one_line(
    log: LogLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures import apps

    # A None entry in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert run(apps.app, CONFIG.replace(loop="uvloop"), install_signal_handlers=False) == 2
    assert log.all() == [
        "Cannot use --loop uvloop: uvloop is not installed (pip install 'trio-asgi[uvloop]')"
    ]


def test_loop_is_validated() -> None:
    assert Config().loop == "auto"
    with pytest.raises(
        ConfigError, match=r"^loop: 'tokio' is not one of auto, trio, asyncio, uvloop$"
    ):
        Config(loop="tokio")  # type: ignore[arg-type]


def test_the_command_with_loop_asyncio(log: LogLines) -> None:
    def client() -> None:
        response = httpx.get(url_from(log) + "/hello", timeout=TIMEOUT)
        assert response.json()["message"] == "Hello from trio-asgi!"
        os.kill(os.getpid(), signal.SIGTERM)

    join = in_thread(client, signal.SIGTERM)
    with pytest.raises(SystemExit) as info:
        main(["--port", "0", "--no-access-log", "--loop", "asyncio"])
    join()
    assert info.value.code == 0


def test_the_command_refuses_an_unknown_loop(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--loop", "tokio"])
    assert info.value.code == 2
    assert "--loop: invalid choice: 'tokio'" in capsys.readouterr().err
