"""Every example file the docs include runs, and does what the docs say it does."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def load_example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` as a fresh module (examples are not a package)."""
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_is_included_in_the_docs() -> None:
    # An example that no page includes is untested documentation nobody reads. (The other
    # direction, a page including a missing file, already fails the -W docs build.)
    pages = "\n".join(p.read_text() for p in EXAMPLES.parent.rglob("*.rst"))
    for example in EXAMPLES.glob("*.py"):
        assert f"examples/{example.name}" in pages, f"{example.name} is in no docs page"


def test_every_example_is_run() -> None:
    # Each example is named by a test (load_example("name") here, or "name.py" in any test
    # module), or used by another example: imported, or served by the command as "name:app".
    tests = "\n".join(p.read_text() for p in Path(__file__).parent.rglob("*.py"))
    examples = {p.stem: p.read_text() for p in EXAMPLES.glob("*.py")}
    for stem in examples:
        users = [text for other, text in examples.items() if other != stem]
        used = any(
            f"import {stem}" in text or f"from {stem} import" in text or f'"{stem}:app"' in text
            for text in users
        )
        named = f'load_example("{stem}")' in tests or f'"{stem}.py"' in tests
        assert used or named, f"{stem}.py is run by no test"


async def test_hello_app_answers_directly() -> None:
    hello = load_example("hello_app")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await hello.app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"Hello, world!\n"


async def test_hello_app_ignores_lifespan() -> None:
    hello = load_example("hello_app")

    async def never_called(*args: object) -> Any:
        raise AssertionError("the app must not talk on the lifespan scope")

    await hello.app({"type": "lifespan"}, never_called, never_called)


async def test_embed_trio_prints_the_response(capsys: pytest.CaptureFixture[str]) -> None:
    embed = load_example("embed_trio")
    with trio.fail_after(10):
        await embed.main()
    assert capsys.readouterr().out == "200 Hello from /hello\n"


async def test_testing_howto_example_passes(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The example imports hello_app the way a user's test imports their app.
    monkeypatch.syspath_prepend(str(EXAMPLES))
    example = load_example("test_with_server")
    with trio.fail_after(10):
        await example.test_hello(nursery)


async def test_websocket_howto_example(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    caplog.set_level(logging.INFO, logger="echo")
    example = load_example("websocket_client")
    with trio.fail_after(20):
        await example.main()
    assert capsys.readouterr().out.splitlines() == [
        "subprotocol: echo.v1",
        "echo: hello",
        "closed by the app: 1000 goodbye",
        "echo: b'\\x00\\x01'",
        "too big: 1009 message too big",
        "denied: 404 b'no such WebSocket\\n'",
        "server stopped: 1012 server shutdown",
    ]
    # What the app's websocket.disconnect said, each time the peer or the server ended it
    # (the app's tasks log it concurrently with the client, so in no fixed order).
    assert sorted(r.getMessage() for r in caplog.records if r.name == "echo") == [
        "disconnected: 1009 'message too big'",
        "disconnected: 1012 'server shutdown'",
        "disconnected: 4000 'done here'",
    ]


async def test_websocket_echo_answers_plain_http_with_404() -> None:
    echo = load_example("websocket_echo")
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await echo.app({"type": "http", "path": "/"}, None, send)
    assert sent[0]["status"] == 404


async def test_embed_howto_control_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("embed_control")
    with trio.fail_after(20):
        await example.main()
    assert capsys.readouterr().out.splitlines() == [
        "ServerStatistics(open_connections=1, requests_in_flight=1, requests_served=0)",
        "done: /stop",
        "lifespan shutdown ran",
        "done: /slow",
        "ServerStatistics(open_connections=0, requests_in_flight=0, requests_served=2)",
        "done: /",
        "lifespan shutdown ran",
    ]


async def test_embed_howto_tls_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("embed_tls")
    with trio.fail_after(20):
        await example.main()
    assert capsys.readouterr().out == "200 Hello over https\n"


def test_deploy_howto_socket_activation(capsys: pytest.CaptureFixture[str]) -> None:
    # The real command in a subprocess, on an inherited socket, stopped by SIGTERM.
    example = load_example("run_as_a_service")
    example.socket_activation()
    assert capsys.readouterr().out.splitlines() == [
        "path=/api/hello root_path=/api",
        "exit code: 0",
    ]


def test_deploy_howto_unix_socket(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("run_as_a_service")
    example.unix_socket(str(tmp_path))
    assert capsys.readouterr().out.splitlines() == [
        "path=/hello root_path=",
        "exit code: 0",
        "socket file removed: True",
    ]


async def test_wsgi_howto_example() -> None:
    import httpx

    from trio_asgi import Config, serve

    example = load_example("wsgi_app")
    config = Config(bind=("127.0.0.1:0",), access_log=False, root_path="/app")
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as client:
            server = await nursery.start(serve, example.app, config)
            base = f"http://{server.addresses[0]}"
            assert (await client.get(f"{base}/x")).text == "Hello from WSGI at /app/x\n"
            assert (await client.get(f"{base}/count")).text == "".join(f"{n}\n" for n in range(10))
            upper = await client.post(f"{base}/upper", content=b"a\nbc\n")
            assert upper.text == "A\nBC\n"
            server.shutdown()


async def test_metrics_reference_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example("metrics_embed")
    with trio.fail_after(20):
        await example.main()
    assert capsys.readouterr().out.splitlines() == [
        'trio_asgi_requests_total{pid="PID",method="GET",status_class="2xx"} 1',
        "{('GET', '2xx'): 1}",
    ]
