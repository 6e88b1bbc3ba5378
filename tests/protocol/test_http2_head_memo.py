"""A connection's remembered request heads are the heads :func:`parse_request_head` makes.

:class:`RequestHeadMemo` returns what it parsed before for a header list that repeats
(most of a client's requests): a differential test over generated lists (well formed
and not, with repeats) holds it to the plain parse, and an app that edits its
``scope["headers"]`` must not change what the next request on the connection sees.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakValueDictionary

import pytest
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.protocol.http2_helpers import REQUEST, Pair
from trio_asgi._protocol._http2_events import RequestReceived
from trio_asgi._protocol._http2_request import (
    HEAD_MEMO_ENTRIES,
    HEAD_MEMO_MAX_BYTES,
    RequestHeadMemo,
    RequestRules,
    parse_request_head,
)
from trio_asgi.testing import BACKENDS, Backend, open_test_server, run_in_virtual_time

RULES = RequestRules(
    scheme="https", max_header_list_size=600, max_header_count=4, connect_protocol=True
)

pseudo = st.sampled_from(
    [
        (b":method", b"GET"),
        (b":method", b"CONNECT"),
        (b":path", b"/a?b=1"),
        (b":path", b"*"),
        (b":scheme", b"http"),
        (b":authority", b"example.com"),
        (b":protocol", b"websocket"),
    ]
)
regular = st.sampled_from(
    [
        (b"host", b"example.com"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"content-length", b"3"),
        (b"te", b"trailers"),
        (b"x-long", b"v" * 500),
        (b"X-Upper", b"1"),
        (b"x", b" padded"),
    ]
)
header_list = st.tuples(st.lists(pseudo, max_size=5), st.lists(regular, max_size=5)).map(
    lambda parts: parts[0] + parts[1]
)
tuple_type = st.sampled_from([lambda n, v: (n, v), HeaderTuple, NeverIndexedHeaderTuple])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(header_list, tuple_type), max_size=30), st.data())
def test_remembered_heads_equal_the_plain_parse(steps: list[Any], data: st.DataObject) -> None:
    memo = RequestHeadMemo(RULES)
    seen: list[list[tuple[bytes, bytes]]] = []
    for fields, kind in steps:
        if seen and data.draw(st.booleans()):
            fields = data.draw(st.sampled_from(seen))  # a repeat
        seen.append(fields)
        decoded = [kind(name, value) for name, value in fields]  # as h2 hands them over
        assert memo.parse(decoded) == parse_request_head(list(fields), RULES)


def test_the_memo_is_bounded() -> None:
    memo = RequestHeadMemo(RULES)
    for n in range(3 * HEAD_MEMO_ENTRIES):
        memo.parse([*REQUEST[:3], (b":path", b"/%d" % n)])
    assert len(memo._heads) == HEAD_MEMO_ENTRIES
    big = [*REQUEST, (b"x-big", b"v" * HEAD_MEMO_MAX_BYTES)]
    memo.parse(big)
    assert tuple(big) not in memo._heads


def test_a_repeated_request_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import trio_asgi._protocol._http2_request as request_module

    parses: list[object] = []
    real = request_module.parse_request_head

    def counted(fields: list[tuple[bytes, bytes]], rules: RequestRules) -> object:
        parses.append(fields)
        return real(fields, rules)

    monkeypatch.setattr(request_module, "parse_request_head", counted)
    # No memo left by other tests (one lives as long as a connection that uses it).
    monkeypatch.setattr(request_module, "_SHARED_HEAD_MEMOS", WeakValueDictionary(), False)
    pair = Pair()
    for _ in range(5):
        pair.request(REQUEST)
        pair.exchange()
    heads = [e for e in pair.server_events if isinstance(e, RequestReceived)]
    assert len(heads) == 5
    # The first block inserts into the client's HPACK table, the next four are indices:
    # two distinct byte strings, one decoded list.
    assert len(parses) == 1
    # A second connection of the server (same rules) finds the head parsed already;
    # one with other rules parses it for itself.
    same, other = Pair(), Pair(scheme="https")
    for each in (same, other):
        each.request(REQUEST)
        each.exchange()
    assert len(parses) == 2
    (again,) = [e for e in same.server_events if isinstance(e, RequestReceived)]
    assert again.head is heads[0].head


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_app_editing_its_headers_changes_no_later_request(backend: Backend) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(list(scope["headers"]))
        scope["headers"].append((b"x-added", b"by the app"))  # as Starlette's MutableHeaders can
        scope["headers"][0] = (b"host", b"rewritten")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        async with open_test_server(app, lifespan="off") as server:
            client = await server.connect_http2()
            for _ in range(3):
                response = await client.request("GET", "/same", headers=[("x-a", "1")])
                assert response.status == 200

    run_in_virtual_time(main, backend=backend)
    assert len(seen) == 3
    assert seen[0] == seen[1] == seen[2]
    assert (b"x-added", b"by the app") not in seen[2]
