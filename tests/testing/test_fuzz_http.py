"""Fuzzing the real server with trio_asgi.testing: HTTP/1.1 requests, splits, pipelines, apps.

Each example runs the whole server in memory under a fresh
``MockClock(autojump_threshold=0)``, so it is deterministic and replays exactly.
``HYPOTHESIS_PROFILE=fuzz`` (``nox -s fuzz``) runs many more examples.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio
import trio.testing
from fuzz_apps import describe, echo_app
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi import Config
from trio_asgi._protocol._http11 import Limits
from trio_asgi.testing import (
    RecordingApp,
    assert_app_calls,
    assert_app_not_called,
    assert_bounded_buffering,
    assert_no_request_completed,
    expect_one_response_each,
    open_test_server,
)
from trio_asgi.testing.strategies import (
    INVALID_REQUEST_KINDS,
    RawInvalidRequest,
    ScriptedApp,
    asgi_http_apps,
    http_requests,
    invalid_requests,
    splits,
)

MAX_BODY = 1000


def run(test: Callable[[], Awaitable[None]]) -> None:
    """One example: a fresh trio run in virtual time."""
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


def offsets(pieces: list[bytes]) -> list[int]:
    return list(itertools.accumulate(len(p) for p in pieces))[:-1]


_REQUESTS = http_requests(max_body_size=3000, max_headers=4)


# Not pipelines(requests=...): it tests the strategy's truth value, which hypothesis warns about.
@given(st.lists(_REQUESTS, min_size=1, max_size=3), st.data())
def test_valid_pipelines_in_any_split_are_answered_in_order(requests, data) -> None:
    wire = b"".join(r.data for r in requests)
    pieces = data.draw(splits(wire, max_chunks=6), label="pieces")
    app = RecordingApp(echo_app)

    async def example() -> None:
        async with open_test_server(app) as server:
            client = await server.connect()
            await client.send_in_pieces(wire, offsets(pieces))
            responses = await expect_one_response_each(client, [r.method for r in requests])
        assert len(responses) == len(requests)
        for request, response in zip(requests, responses, strict=True):
            assert response.status == 200, (request, response)
            expected = describe(
                request.method, request.raw_path, request.query_string, request.body
            )
            assert response.body == (b"" if request.method == "HEAD" else expected)
        assert_app_calls(app, len(requests))

    run(example)


# The server's max_header_size bounds the header fields (the request line has its own
# limit); the strategy's bounds the whole head, hence the sum.
_INVALID = invalid_requests(
    kinds=list(INVALID_REQUEST_KINDS),
    max_body_size=MAX_BODY,
    max_header_size=Config.max_header_size + Limits().max_request_line,
)
#: Statuses a strict server may also answer for a kind: RFC 9112 section 6.1 suggests
#: 501 for transfer codings it does not understand, which h11 also answers for these.
_ALSO_ACCEPTED = {"bad-transfer-encoding": {501}}


@given(_INVALID, st.data())
def test_invalid_requests_get_their_status_and_never_reach_the_app(request, data) -> None:
    pieces = data.draw(splits(request.data, max_chunks=4), label="pieces")
    run(partial(check_invalid_request, request, offsets(pieces)))


async def check_invalid_request(request: RawInvalidRequest, cuts: list[int]) -> None:
    """The expected status (or a close without one), and the app never sees the request."""
    app = RecordingApp(echo_app)
    async with open_test_server(app, max_body_size=MAX_BODY) as server:
        client = await server.connect()
        await client.send_in_pieces(request.data, cuts)
        if request.expected_status is None:
            await client.send_eof()
        # A malformed head has no method to trust: its answer has a body even after
        # HEAD. Past a valid head (body defects) the method is known and honoured.
        parsed = request.kind.startswith("chunk-") or request.kind == "body-too-large"
        method = request.base.method if parsed else "GET"
        responses = await expect_one_response_each(
            client, [method], allow_close=request.expected_status is None
        )
    if request.expected_status is None:
        assert responses == []
    else:
        accepted = {request.expected_status, *_ALSO_ACCEPTED.get(request.kind, ())}
        assert len(responses) == 1
        assert responses[0].status in accepted, (responses[0], accepted)
        assert responses[0].closes_connection
    if request.kind.startswith("chunk-"):
        assert_no_request_completed(app, request.kind)  # the head was valid
    else:
        assert_app_not_called(app, request.kind)


@given(asgi_http_apps(), st.integers(1, 3), _REQUESTS)
def test_misbehaving_apps_never_break_the_server(app: ScriptedApp, count, request) -> None:
    async def example() -> None:
        # open_test_server fails the test if an exception escapes a connection handler.
        async with open_test_server(app, raise_app_exceptions=False) as server:
            client = await server.connect()
            await client.send(request.data * count)
            with trio.move_on_after(100) as waited:
                responses = await expect_one_response_each(
                    client, [request.method] * count, allow_close=True
                )
            if waited.cancelled_caught:
                # Only an app that waits for the client to leave may leave it waiting.
                assert app.waits_for_disconnect, app.calls
                await client.close()
                responses = []
        expected = app.expected_response
        if expected is not None and responses:
            assert responses[0].status == expected.status
            if request.method != "HEAD" and expected.status not in (204, 304):
                assert responses[0].body == expected.body
        assert len(responses) <= count
        assert len(app.calls) <= count
        assert all(call.outcome is not None for call in app.calls), app.calls
        assert server.statistics().requests_in_flight == 0

    run(example)


async def _never_answer(scope, receive, send) -> None:
    if scope["type"] == "http":
        await trio.sleep_forever()


@given(st.sampled_from(["pipeline", "endless head", "unread body"]))
def test_flooded_connections_buffer_a_bounded_amount(flood: str) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"
    payload = {
        "pipeline": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 40_000,
        "endless head": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 1_000_000,
        "unread body": head + b"b" * 1_000_000,
    }[flood]

    async def example() -> None:
        options: dict[str, Any] = {"lifespan": "off", "raise_app_exceptions": False}
        async with open_test_server(_never_answer, **options) as server:
            client = await server.connect()
            await assert_bounded_buffering(client, server.config, payload)
            await client.close()

    run(example)
