"""Route-aware requests: what a test names reaches the app, through the real server, as meant."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from fuzz_apps import echo_app
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi.testing import (
    BACKENDS,
    Receive,
    RecordingApp,
    Scope,
    Send,
    TestRequest,
    TestServer,
    expect_one_response_each,
    with_test_server,
)
from trio_asgi.testing.strategies import (
    RawRequest,
    WebSocketHandshake,
    field_values,
    http_requests,
    websocket_handshakes,
)

PATHS = ["/items", "/users/é", "/a b/c%d"]
QUERY = {"page": st.integers(0, 50), "q": st.none() | st.text(max_size=6)}
HEADERS = {"x-token": field_values, "x-user": st.none() | st.text(max_size=6)}
ROUTED = http_requests(
    paths=PATHS,
    methods=["GET", "POST", "PATCH"],
    query=QUERY,
    headers=HEADERS,
    body=st.binary(max_size=40),
    max_headers=2,
)
recorder = RecordingApp(echo_app)


async def _one_call(server: TestServer, request: RawRequest) -> None:
    recorder.clear()
    client = await server.connect()
    await client.send_in_pieces(request.data, 7)
    [response] = await expect_one_response_each(client, [request.method])
    assert response.status == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_named_parts_reach_the_app_as_meant(backend: str) -> None:
    @settings(max_examples=40, deadline=None)
    @given(request=ROUTED)
    @with_test_server(recorder, backend=backend, lifespan="off")  # type: ignore[arg-type]
    async def check(server: TestServer, request: RawRequest) -> None:
        await _one_call(server, request)
        [call] = recorder.calls
        scope = call.scope
        assert scope["method"] == request.method
        assert scope["path"] in PATHS
        query = dict(parse_qsl(scope["query_string"].decode("ascii"), keep_blank_values=True))
        assert set(query) <= {"page", "q"}
        assert "page" in query
        assert 0 <= int(query["page"]) <= 50
        headers = dict(scope["headers"])
        assert b"x-token" in headers
        assert call.body == request.body

    check()


def test_the_wire_varies_while_the_meaning_stays() -> None:
    # Over many draws the same route is written in more than one way: header case, the
    # percent-encoding's hex case, the order of query parameters, absolute-form targets.
    seen: set[tuple[bool, bool, bool]] = set()

    @settings(max_examples=200, deadline=None)
    @given(ROUTED)
    def collect(request: RawRequest) -> None:
        names = [name for name, _ in request.headers]
        seen.add(
            (
                any(name != name.lower() for name in names),
                "%c3" in request.target,
                request.target_form == "absolute",
            )
        )

    collect()
    assert {flag for kinds in seen for flag in kinds} == {True, False}
    assert len(seen) >= 4


@given(
    method=st.sampled_from(["GET", "BRÜH", "POST"]),
    target=st.text(max_size=10),
    value=st.text(max_size=10),
)
def test_a_hand_built_request_always_serialises(method: str, target: str, value: str) -> None:
    # h11 would refuse spaces or non-ASCII in the target and non-Latin-1 values
    # (LocalProtocolError); a test client sends what it is asked to.
    data = TestRequest(method, "/" + target, headers=[("x-v", value)], body=b"x").data
    assert data.startswith(method.encode("latin-1") + b" /")
    assert b"\r\n\r\nx" in data


def test_a_hand_built_target_is_percent_encoded() -> None:
    assert TestRequest("GET", "/café a?x=ü").data.startswith(b"GET /caf%C3%A9%20a?x=%C3%BC ")


async def _ws_echo_scope(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    await receive()
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    text = f"{scope['path']}?{scope['query_string'].decode()}|{dict(scope['headers'])[b'x-room']!r}"
    await send({"type": "websocket.send", "text": text})
    await receive()


@pytest.mark.parametrize("backend", BACKENDS)
def test_named_websocket_handshakes_reach_the_app(backend: str) -> None:
    @settings(max_examples=20, deadline=None)
    @given(
        handshake=websocket_handshakes(
            paths=["/chat/é"],
            query={"room": st.integers(1, 3)},
            headers={"X-Room": st.sampled_from(["a", "b"])},
            subprotocols=["v1", "v2"],
        )
    )
    @with_test_server(_ws_echo_scope, backend=backend, lifespan="off")
    async def check(server: TestServer, handshake: WebSocketHandshake) -> None:
        ws = await handshake.open(await server.connect())
        path, _, header = str(await ws.receive()).partition("|")
        assert path.startswith("/chat/é?room=")
        assert header in ("b'a'", "b'b'")
        assert ws.subprotocol == (handshake.subprotocols[0] if handshake.subprotocols else None)

    check()
