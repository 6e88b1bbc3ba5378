"""Fuzzing the real server's HTTP/2 side with trio_asgi.testing's strategies, on both loops.

Valid streams, interleaved at random on one connection, each reach the app exactly
as sent and get one complete answer; every attack of issue 13 gets the answer the
RFCs (and our documented bounds) owe, while a stream on another connection keeps
being served; a client that floods and does not read never makes the server read
beyond a bound. The checks are the public ones users call
(``assert_h2_*`` in :mod:`trio_asgi.testing`); the last tests show each can fail.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from fuzz_apps import describe, echo_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_asgi import Config
from trio_asgi.testing import (
    BACKENDS,
    Backend,
    RecordedCall,
    RecordingApp,
    TestServer,
    assert_h2_attack_answered,
    assert_h2_bounded_buffering,
    assert_h2_requests_delivered,
    assert_h2_responses_complete,
    assert_h2_still_serving,
    max_h2_buffered_bytes,
    open_test_server,
    run_in_virtual_time,
)
from trio_asgi.testing.strategies import (
    H2_ATTACK_KINDS,
    H2Attack,
    H2Interleaving,
    H2Request,
    data_frame,
    h2_interleavings,
    headers_frame,
    malicious_h2_frames,
    ping_frame,
    request_fields,
    send_interleaving,
)

# Each example starts a server: fewer examples than hypothesis's default, no deadline
# (a loaded 2-core CI machine runs one example in well over 200 ms).
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(backend: Backend, app: Any, test: Any, **options: Any) -> None:
    async def main() -> None:
        async with open_test_server(app, lifespan="off", **options) as server:
            await test(server)

    run_in_virtual_time(main, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(interleaving=h2_interleavings())
def test_interleaved_streams_reach_the_app_as_sent(
    backend: Backend, interleaving: H2Interleaving
) -> None:
    app = RecordingApp(echo_app)

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        responses = await send_interleaving(client, interleaving)
        assert_h2_responses_complete(responses)
        for request, response in zip(interleaving.requests, responses, strict=True):
            path, _, query = request.path.encode("ascii").partition(b"?")
            assert response.body == describe(request.method, path, query, request.body)

    run(backend, app, test)
    assert_h2_requests_delivered(app, interleaving.requests)


@pytest.mark.parametrize("kind", sorted(H2_ATTACK_KINDS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_attack_is_answered_and_other_connections_served(backend: Backend, kind: str) -> None:
    @settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(attack=malicious_h2_frames([kind]))
    def fuzz(attack: H2Attack) -> None:
        attack_while_a_victim_waits(backend, attack)

    fuzz()


def attack_while_a_victim_waits(backend: Backend, attack: H2Attack) -> None:
    app = RecordingApp(echo_app)

    async def test(server: TestServer) -> None:
        # A stream in flight on another connection, its body unfinished, during the attack.
        victim = await server.connect_http2()
        stream = await victim.start_request("POST", "/victim", end_stream=False)
        await victim.send_body(stream, b"before")
        attacker = await server.connect_http2()
        await assert_h2_attack_answered(attacker, attack, app)
        await victim.send_body(stream, b" after", end_stream=True)
        response = await victim.read_response(stream)
        assert_h2_responses_complete([response])
        assert response.body == describe("POST", b"/victim", b"", b"before after")
        await assert_h2_still_serving(server)

    run(backend, app, test)


def test_each_attack_kind_is_drawn() -> None:
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(attack=malicious_h2_frames())
    def draw(attack: H2Attack) -> None:
        seen.add(attack.kind)

    draw()
    assert seen == set(H2_ATTACK_KINDS)


async def no_reader(scope: Any, receive: Any, send: Any) -> None:
    """Answers without reading the body: what it leaves unread is the server's to bound."""
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"x" * 100_000})


def _body_flood(streams: int) -> bytes:
    """Streams whose bodies fill their whole window, with nobody reading them."""
    frames = []
    for stream_id in range(1, 2 * streams, 2):
        frames.append(headers_frame(stream_id, request_fields("POST", "/"), end_stream=False))
        frames += [data_frame(stream_id, b"b" * 16384) for _ in range(4)]
    return b"".join(frames)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    flood=st.one_of(
        st.integers(1, 90).map(_body_flood),
        st.integers(10_000, 40_000).map(
            lambda n: b"".join(headers_frame(s, request_fields()) for s in range(1, 2 * n, 2))
        ),
        st.integers(1, 99).map(lambda n: ping_frame() * n),
    ),
    window=st.sampled_from([1024, 65536]),
)
def test_a_client_that_floods_and_does_not_read_is_bounded(
    backend: Backend, flood: bytes, window: int
) -> None:
    async def test(server: TestServer) -> None:
        client = await server.connect_http2(receive_window=window)
        await assert_h2_bounded_buffering(client, server.config, flood)
        await client.close()

    run(backend, no_reader, test, raise_app_exceptions=False)


# --- the checks can fail ------------------------------------------------------------------


def test_a_wrong_answer_fails_the_attack_check() -> None:
    wrong = H2Attack("ping_flood", ping_frame() * 150, frozenset({("reset", 0x1)}))

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        with pytest.raises(AssertionError, match=r"expected one of \[\('reset', 1\)\]"):
            await assert_h2_attack_answered(client, wrong)

    run("trio", echo_app, test)


def test_a_changed_request_fails_the_delivery_check() -> None:
    app = RecordingApp(echo_app)
    sent = H2Request("POST", "/a", body_pieces=(b"one",))
    seen = {"method": "POST", "raw_path": b"/a", "query_string": b"", "headers": []}
    app.calls.append(RecordedCall(seen, received=[{"type": "http.request", "body": b"two"}]))
    with pytest.raises(AssertionError, match="other requests than were sent"):
        assert_h2_requests_delivered(app, [sent])
    app.calls.append(RecordedCall(seen))
    with pytest.raises(AssertionError):
        assert_h2_requests_delivered(app, [sent, sent])


def test_a_server_reading_past_the_bound_fails_the_buffering_check() -> None:
    config = Config()
    flood = _body_flood(2)

    async def test(server: TestServer) -> None:
        client = await server.connect_http2()
        # As if the server had read this much more than it took: over the bound.
        with pytest.raises(AssertionError, match="over the bound"):
            await assert_h2_bounded_buffering(
                client, config, flood, delivered=lambda: -max_h2_buffered_bytes(config)
            )

    run("trio", no_reader, test, raise_app_exceptions=False)


@pytest.mark.parametrize(
    "module",
    [
        "trio_asgi.testing._h2_client",
        "trio_asgi.testing._h2_strategies",
        "trio_asgi.testing._h2_attacks",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    results = doctest.testmod(importlib.import_module(module), raise_on_error=True)
    assert results.attempted > 0


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fuzz_http2.py"


def test_the_howto_example_passes_and_finds_the_leak() -> None:
    spec = importlib.util.spec_from_file_location("docs_example_fuzz_http2", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # "fuzz_http2.py" in the docs
    example.test_each_stream_gets_its_own_answer()
    example.test_attacks_are_answered_and_never_reach_the_app()
    with pytest.raises(AssertionError, match="/"):
        example.each_stream_gets_its_own_answer(example.leaky_app)()
