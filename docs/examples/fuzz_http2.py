"""Fuzz an app over HTTP/2: streams interleaved on one connection, and attacks.

Run it with ``pytest docs/examples/fuzz_http2.py``. ``leaky_app`` keeps per-request
state in a module-level dict, which HTTP/1.1 tests never catch (one request at a
time per connection); HTTP/2 streams run concurrently, and the interleaving test
finds the mix-up in a few examples. ``my_app`` is the fix: state in locals.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi.testing import (
    ASGIApp,
    Receive,
    RecordingApp,
    Scope,
    Send,
    TestServer,
    assert_h2_attack_answered,
    assert_h2_requests_delivered,
    assert_h2_responses_complete,
    assert_h2_still_serving,
    with_test_server,
)
from trio_asgi.testing.strategies import (
    H2Attack,
    H2Interleaving,
    h2_interleavings,
    h2_requests,
    malicious_h2_frames,
    send_interleaving,
)

current: dict[str, str] = {}


async def leaky_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    current["user"] = scope["path"]  # the bug: shared by every request in flight
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": current["user"].encode()})


async def my_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    user = scope["path"]
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": user.encode()})


def each_stream_gets_its_own_answer(app: ASGIApp) -> Callable[[], None]:
    """A hypothesis test: concurrent streams each get the answer to their own request."""
    recording = RecordingApp(app)
    users = st.sampled_from(["/alice", "/bob", "/carol"])

    @settings(max_examples=50, deadline=None)
    @given(interleaving=h2_interleavings(h2_requests(methods=["POST"], paths=users)))
    @with_test_server(recording, lifespan="off")
    async def test(server: TestServer, interleaving: H2Interleaving) -> None:
        recording.clear()
        client = await server.connect_http2()
        responses = await send_interleaving(client, interleaving)
        assert_h2_responses_complete(responses)
        assert_h2_requests_delivered(recording, interleaving.requests)
        for request, response in zip(interleaving.requests, responses, strict=True):
            assert response.body == request.path.encode(), (request.path, response.body)

    return test


test_each_stream_gets_its_own_answer = each_stream_gets_its_own_answer(my_app)

recorded = RecordingApp(my_app)


@settings(max_examples=30, deadline=None)
@given(attack=malicious_h2_frames())
@with_test_server(recorded, lifespan="off")
async def test_attacks_are_answered_and_never_reach_the_app(
    server: TestServer, attack: H2Attack
) -> None:
    recorded.clear()
    client = await server.connect_http2()
    await assert_h2_attack_answered(client, attack, recorded)
    await assert_h2_still_serving(server)
