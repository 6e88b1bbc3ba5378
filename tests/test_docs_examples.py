"""Every example file the docs include runs, and does what the docs say it does."""

from __future__ import annotations

import importlib.util
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
