"""``loop="auto"``: which loop ``run()`` picks, why it says so, and the once-only hint."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import types
from typing import Any

import httpx
import pytest
import sniffio
import trio

from tests.test_run import CONFIG, TIMEOUT, LogLines, in_thread, url_from
from tests.test_run import log as log  # the fixture, shared
from trio_asgi import Config, serve
from trio_asgi._loop_choice import ASYNCIO_LIBRARIES, LoopChoice, choose_loop
from trio_asgi._run import run


@pytest.mark.parametrize("loop", ["trio", "asyncio", "uvloop"])
def test_a_forced_loop_is_used_whatever_the_app_imports(loop: str) -> None:
    modules = {"django": types.ModuleType("django")}
    assert choose_loop(loop, modules) == LoopChoice(loop, f"asked for with --loop {loop}")  # type: ignore[arg-type]


@pytest.mark.parametrize(("module", "name"), list(ASYNCIO_LIBRARIES.items()))
def test_auto_picks_asyncio_for_each_asyncio_only_library(module: str, name: str) -> None:
    modules = {"trio": trio, module: types.ModuleType(module)}
    choice = choose_loop("auto", modules)
    assert choice == LoopChoice("asyncio", f"the app imports {name}")
    assert choice.log_line() == f"Using the asyncio loop: the app imports {name}"


def test_auto_picks_trio_otherwise() -> None:
    # asyncio itself is in every process (anyio imports it): it decides nothing.
    modules = {"asyncio": asyncio, "trio": trio, "redis": types.ModuleType("redis"), "quart": None}
    assert choose_loop("auto", modules).log_line() == (
        "Using the trio loop: the app imports no library known to need asyncio "
        "(--loop asyncio forces it)"
    )


def _app_reporting_its_loop(seen: list[str]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(sniffio.current_async_library())
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    return app


@pytest.mark.parametrize(("imported", "expected"), [(True, "asyncio"), (False, "trio")])
def test_run_with_auto_serves_on_the_loop_it_logs(
    log: LogLines, monkeypatch: pytest.MonkeyPatch, imported: bool, expected: str
) -> None:
    for module in ASYNCIO_LIBRARIES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    if imported:
        monkeypatch.setitem(sys.modules, "quart", types.ModuleType("quart"))
    seen: list[str] = []

    def client() -> None:
        assert httpx.get(url_from(log), timeout=TIMEOUT).text == "ok"
        os.kill(os.getpid(), signal.SIGTERM)

    config = CONFIG.replace(loop="auto", lifespan="off")
    assert Config().loop == "auto"
    join = in_thread(client, signal.SIGTERM)
    assert run(_app_reporting_its_loop(seen), config) == 0
    join()
    assert seen == [expected]
    first = log.all()[0]
    assert first.startswith(f"Using the {expected} loop: ")
    if imported:
        assert first == "Using the asyncio loop: the app imports quart"


async def test_the_wrong_loop_hint_is_an_error_once_per_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_asgi")

    async def asyncio_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(0)  # asyncio's loop is not running under trio

    async def two_requests() -> None:
        config = Config(bind=("127.0.0.1:0",), lifespan="off", access_log=False)
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve, asyncio_app, config)
            async with httpx.AsyncClient(base_url=f"http://{server.addresses[0]}") as client:
                assert (await client.get("/a")).status_code == 500
                assert (await client.get("/b")).status_code == 500
            server.shutdown()

    with trio.fail_after(TIMEOUT):
        await two_requests()
        await two_requests()  # another server says it again
    hints = [r for r in caplog.records if "use --loop asyncio" in r.getMessage()]
    levels = [r.levelno for r in hints]
    assert levels == [logging.ERROR, logging.DEBUG, logging.ERROR, logging.DEBUG]
    assert all(r.exc_info for r in hints if r.levelno == logging.DEBUG)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r not in hints]
