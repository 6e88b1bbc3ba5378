"""The extensions' messages in the response order table (only where advertised)."""

from __future__ import annotations

import pytest

from trio_asgi import ASGIProtocolError
from trio_asgi._protocol._asgi_http import (
    EXTENSION_MESSAGES,
    EarlyHint,
    ResponseFile,
    ResponseOrder,
    ResponseState,
)

START = {"type": "http.response.start", "status": 200}
HINT = {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]}
PATHSEND = {"type": "http.response.pathsend", "path": "/etc/hostname"}


def test_early_hints_then_pathsend_complete_the_response() -> None:
    order = ResponseOrder(EXTENSION_MESSAGES)
    assert isinstance(order.advance(HINT), EarlyHint)
    assert isinstance(order.advance(HINT), EarlyHint)
    order.advance(START)
    parsed = order.advance(PATHSEND)
    assert isinstance(parsed, ResponseFile)
    assert order.state is ResponseState.DONE


def test_pathsend_is_not_mixed_with_body_messages() -> None:
    order = ResponseOrder(EXTENSION_MESSAGES)
    order.advance(START)
    order.advance({"type": "http.response.body", "body": b"a", "more_body": True})
    with pytest.raises(ASGIProtocolError):
        order.advance(PATHSEND)


def test_zerocopysend_mixes_with_body_messages() -> None:
    order = ResponseOrder(EXTENSION_MESSAGES)
    order.advance(START)
    with open(__file__, "rb") as file:
        zerocopy = {"type": "http.response.zerocopysend", "file": file, "more_body": True}
        order.advance(zerocopy)
        order.advance({"type": "http.response.body", "body": b"a", "more_body": True})
        order.advance({**zerocopy, "offset": 3, "count": 2, "more_body": False})
    assert order.state is ResponseState.DONE


@pytest.mark.parametrize(
    "message",
    [
        {"type": "http.response.pathsend", "path": "relative"},
        {"type": "http.response.pathsend"},
        {"type": "http.response.zerocopysend", "file": "name"},
        {"type": "http.response.zerocopysend", "file": 0, "offset": -1},
    ],
)
def test_malformed_file_messages_are_refused(message: dict[str, object]) -> None:
    order = ResponseOrder(EXTENSION_MESSAGES)
    order.advance(START)
    with pytest.raises(ASGIProtocolError):
        order.advance(message)
    assert order.state is ResponseState.BODY


@pytest.mark.parametrize("links", [b"one", [" str "], None])
def test_malformed_early_hints_are_refused(links: object) -> None:
    with pytest.raises(ASGIProtocolError):
        ResponseOrder(EXTENSION_MESSAGES).advance({**HINT, "links": links})


def test_extensions_not_advertised_are_refused() -> None:
    with pytest.raises(ASGIProtocolError):
        ResponseOrder().advance(HINT)
