"""A connection's remembered response heads are the heads :func:`checked_response_head` makes.

:class:`ResponseHeadMemo` returns the checked fields it made before for a status and
fields that repeat; a differential test over generated heads (valid and not, repeats,
look-alike values that compare equal to plain ones) holds it to the plain check,
field types (never-indexed credentials) and errors included.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakValueDictionary

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi._protocol import _http2_response
from trio_asgi._protocol._http2_response import (
    RESPONSE_MEMO_ENTRIES,
    ResponseHeadMemo,
    checked_response_head,
)
from trio_asgi.testing import BACKENDS, Backend, open_test_server, run_in_virtual_time

plain_field = st.sampled_from(
    [
        (b"content-type", b"text/plain"),
        (b"Content-Length", b"13"),
        (b"authorization", b"secret"),
        (b"cookie", b"short"),
        (b"connection", b"close"),
        (b"x", b" padded "),
        (b"x", b"a\r\nb"),
        (b"bad name", b"1"),
        (b":status", b"200"),
    ]
)
look_alike = plain_field.map(lambda f: (f[0], memoryview(f[1])))
field = st.one_of(plain_field, plain_field, look_alike, plain_field.map(list))
status = st.sampled_from([200, 204, 404, 100, 1000, True, 200.0])


def _outcome(check: Any, status: Any, fields: list[Any]) -> tuple[str, Any]:
    try:
        head = check(status, fields)
    except Exception as exc:
        return "error", (type(exc), str(exc))
    return "ok", [(type(f), tuple(bytes(x) for x in f)) for f in head]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(status, st.lists(field, max_size=5)), max_size=30), st.data())
def test_remembered_heads_equal_the_plain_check(steps: list[Any], data: st.DataObject) -> None:
    memo = ResponseHeadMemo()
    seen: list[Any] = []
    for head in steps:
        if seen and data.draw(st.booleans()):
            head = data.draw(st.sampled_from(seen))
        seen.append(head)
        code, fields = head
        assert _outcome(memo.checked, code, list(fields)) == _outcome(
            checked_response_head, code, list(fields)
        )


def test_the_memo_is_bounded() -> None:
    memo = ResponseHeadMemo()
    for n in range(3 * RESPONSE_MEMO_ENTRIES):
        memo.checked(200, [(b"x-n", b"%d" % n)])
    assert len(memo._heads) == RESPONSE_MEMO_ENTRIES
    memo.checked(200, [(b"x-big", b"v" * 4096)])
    assert (200, (b"x-big", b"v" * 4096)) not in memo._heads


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_repeated_response_head_is_checked_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[object] = []
    real = _http2_response.checked_response_head

    def counted(status: int, fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        checks.append(fields)
        return real(status, fields)

    monkeypatch.setattr(_http2_response, "checked_response_head", counted)
    # No memo left by other tests (one lives as long as a connection that uses it).
    monkeypatch.setattr(_http2_response, "_SHARED_RESPONSE_MEMOS", WeakValueDictionary(), False)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hi"})

    async def main() -> None:
        async with open_test_server(app, lifespan="off", date_header=False) as server:
            client = await server.connect_http2()
            for _ in range(5):
                response = await client.request("GET", "/")
                assert (response.status, response.header("content-type")) == (200, b"text/plain")
            # Another connection of the server answers with the head checked already.
            other = await server.connect_http2()
            response = await other.request("GET", "/")
            assert (response.status, response.header("content-type")) == (200, b"text/plain")

    run_in_virtual_time(main, backend=backend)
    assert len(checks) == 1
