"""The comparison page, re-created small: four planted bugs, our tests and TestClient's.

One app, four bugs (a crash, an event stream that never notices its client left, a
response never completed, a broadcast that races joins and leaves). The toolkit's
tests find every one; Starlette's TestClient + hypothesis, written for the same bugs
in the same module, finds the crash only: it waits for a whole response (so it cannot
drop a client from an endless stream), accepts a response the app never completed,
and runs one client at a time. Lines of test code per bug found are counted from the
source and compared.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import anyio
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from trio_asgi.testing import (
    BACKENDS,
    HungRequest,
    IncompleteResponse,
    Receive,
    Scope,
    Send,
    TestServer,
    with_test_server,
)
from trio_asgi.testing.strategies import (
    Disconnect,
    RawRequest,
    Scenario,
    client_scenarios,
    disconnects,
    http_requests,
    run_scenario,
)


async def _respond(send: Send, body: bytes, *, complete: bool = True) -> None:
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": body, "more_body": not complete})


async def _chat(receive: Receive, send: Send, members: dict[int, Send]) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    members[id(send)] = send
    while (message := await receive())["type"] == "websocket.receive":
        for member in members.values():  # bug 4: the dict changes while this awaits
            await member({"type": "websocket.send", "text": message.get("text") or ""})
    members.pop(id(send), None)


async def shop(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            scope["state"]["members"] = {}
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "websocket":
        await _chat(receive, send, scope["state"]["members"])
    elif scope["path"] == "/items":
        query = parse_qs(scope["query_string"].decode())
        per_page = int(query.get("per_page", ["10"])[0])
        await _respond(send, b"%d pages" % (100 // per_page))  # bug 1: per_page=0
    elif scope["path"] == "/news":
        await send({"type": "http.response.start", "status": 200})
        await anyio.sleep_forever()  # bug 2: waits for news, never notices the client left
    else:
        await _respond(send, b"partial", complete=False)  # bug 3: never completed


with warnings.catch_warnings():  # it asks for httpx2, and warns when it uses httpx
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PAGES = st.integers(0, 20)
OURS: dict[str, Callable[[str], None]] = {}
THEIRS: dict[str, Callable[[], None]] = {}
# Found at once: no shrinking in the suite (each step of it costs time, not knowledge).
FIND = settings(max_examples=100, deadline=None, database=None, phases=[Phase.generate])


# --- the toolkit's tests ------------------------------------------------------------------------


def ours_crash(backend: str) -> None:
    @FIND
    @given(request=http_requests(paths=["/items"], methods=["GET"], query={"per_page": PAGES}))
    @with_test_server(shop, backend=backend)
    async def test(server: TestServer, request: RawRequest) -> None:
        client = await server.connect()
        await client.send(request.data)
        await client.read_response(request.method)

    test()


def ours_leak(backend: str) -> None:
    @FIND
    @given(request=http_requests(paths=["/news"], methods=["GET"]), leave=disconnects())
    @with_test_server(shop, backend=backend)
    async def test(server: TestServer, request: RawRequest, leave: Disconnect) -> None:
        await leave.play(await server.connect(), request.data)

    test()


def ours_incomplete(backend: str) -> None:
    @FIND
    @given(request=http_requests(paths=["/about"], methods=["GET"]))
    @with_test_server(shop, backend=backend)
    async def test(server: TestServer, request: RawRequest) -> None:
        client = await server.connect()
        await client.send(request.data)
        await client.read_response(request.method)

    test()


def ours_race(backend: str) -> None:
    @settings(FIND, max_examples=300)
    @given(scenario=client_scenarios(websocket_clients=3, path="/chat"))
    @with_test_server(shop, backend=backend)
    async def test(server: TestServer, scenario: Scenario) -> None:
        await run_scenario(server, scenario)

    test()


OURS.update(crash=ours_crash, leak=ours_leak, incomplete=ours_incomplete, race=ours_race)


# --- TestClient + hypothesis, for the same bugs -------------------------------------------------


def theirs_crash() -> None:
    @FIND
    @given(per_page=PAGES)
    def test(per_page: int) -> None:
        with TestClient(shop) as client:
            response = client.get("/items", params={"per_page": per_page})
            assert response.status_code == 200

    test()


def theirs_incomplete() -> None:
    @FIND
    @given(path=st.sampled_from(["/about", "/contact"]))
    def test(path: str) -> None:
        with TestClient(shop) as client:
            assert client.get(path).status_code == 200

    test()


def theirs_race() -> None:
    @FIND
    @given(messages=st.lists(st.text(max_size=5), max_size=3))
    def test(messages: list[str]) -> None:
        with (
            TestClient(shop) as client,
            client.websocket_connect("/chat") as first,
            client.websocket_connect("/chat") as second,
        ):
            for message in messages:
                first.send_text(message)
                assert second.receive_text() == message
                assert first.receive_text() == message

    test()


# The leak: TestClient waits for the whole response of GET /news, which never ends, so
# the test hangs instead of failing. It is written here to count its lines, not run.
def theirs_leak() -> None:
    @FIND
    @given(st.just("/news"))
    def test(path: str) -> None:
        with TestClient(shop) as client, client.stream("GET", path) as response:
            assert response.status_code == 200

    test()


THEIRS.update(crash=theirs_crash, incomplete=theirs_incomplete, race=theirs_race)
EXPECTED = {"crash": ZeroDivisionError, "leak": HungRequest, "incomplete": IncompleteResponse}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bug", ["crash", "leak", "incomplete", "race"])
def test_the_toolkit_finds_every_planted_bug(bug: str, backend: str) -> None:
    with pytest.raises(EXPECTED.get(bug, RuntimeError)):
        OURS[bug](backend)


def test_testclient_finds_the_crash_only() -> None:
    with pytest.raises(ZeroDivisionError):
        theirs_crash()
    theirs_incomplete()  # a response the app never completed, accepted as a 200
    theirs_race()  # one message at a time, one client after the other: no race


def _lines(function: Callable[..., Any]) -> int:
    source = inspect.getsource(function).splitlines()
    return sum(1 for line in source if line.strip() and not line.strip().startswith("#"))


def test_fewer_lines_of_test_code_per_bug_found() -> None:
    ours = sum(_lines(f) for f in OURS.values()) / len(OURS)  # finds all four
    theirs = sum(_lines(f) for f in [*THEIRS.values(), theirs_leak]) / 1  # finds one
    assert ours < theirs, (ours, theirs)
