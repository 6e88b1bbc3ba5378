"""Helpers shared by the test_http11*.py modules (conftest is not importable)."""

from __future__ import annotations

from typing import Any

from trio_asgi._protocol._http11 import BodyData, RequestHead


def only_head(events: list[Any]) -> RequestHead:
    heads = [event for event in events if type(event) is RequestHead]
    assert len(heads) == 1, events
    return heads[0]


def body_of(events: list[Any]) -> bytes:
    return b"".join(event.data for event in events if type(event) is BodyData)


def respond(
    conn: Any,
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"ok",
    *,
    close: bool = False,
) -> bytes:
    if headers is None:
        headers = [(b"content-length", str(len(body)).encode())]
    return conn.response_head(status, headers, close=close) + conn.response_body(body, final=True)


def exchange(
    hp: Any,
    method: bytes = b"GET",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"ok",
    **kw: Any,
) -> Any:
    """One request from an h11 client and our response, parsed back by that client."""
    conn = hp.conn(**kw)
    client = hp.Client()
    hp.feed(conn, client.request(method, b"/"))
    return client.response(respond(conn, status, headers, body)), conn
