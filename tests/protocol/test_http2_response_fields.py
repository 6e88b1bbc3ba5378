"""Response fields on HTTP/2: checked and normalised by us, in one pass (h2's own outbound
checks are off), with what a client decodes as the proof."""

from __future__ import annotations

from typing import Any

import h2.events
import pytest
from hpack import HeaderTuple, NeverIndexedHeaderTuple
from http2_helpers import REQUEST, Pair

from trio_asgi._protocol._http2_response import H2ResponseError


def only(events: list[h2.events.Event], kind: type[h2.events.Event]) -> Any:
    matching = [event for event in events if isinstance(event, kind)]
    assert len(matching) == 1, events
    return matching[0]


def answer(headers: list[tuple[bytes, bytes]]) -> list[HeaderTuple]:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.server.send_response_head(stream_id, 200, headers, end_stream=True)
    received: list[HeaderTuple] = only(pair.to_client(), h2.events.ResponseReceived).headers
    return received


def test_names_are_lowercased_and_values_trimmed() -> None:
    got = answer([(b"X-Mixed-Case", b"  v \t"), (b"Set-Cookie", b"a=1")])
    assert got == [(b":status", b"200"), (b"x-mixed-case", b"v"), (b"set-cookie", b"a=1")]


def test_credentials_are_never_indexed() -> None:
    got = answer([(b"authorization", b"Basic c2VjcmV0"), (b"cookie", b"short=1"), (b"x", b"y")])
    kinds = {field[0]: type(field) for field in got}
    assert kinds[b"authorization"] is NeverIndexedHeaderTuple
    assert kinds[b"cookie"] is NeverIndexedHeaderTuple
    assert kinds[b"x"] is not NeverIndexedHeaderTuple


@pytest.mark.parametrize("value", [b"a\rb", b"a\nb", b"a\x00b"])
def test_cr_lf_nul_in_a_value_is_the_apps_error(value: bytes) -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    with pytest.raises(H2ResponseError):
        pair.server.send_response_head(stream_id, 200, [(b"x", value)])


def test_trailers_get_the_same_treatment() -> None:
    pair = Pair()
    stream_id = pair.request(REQUEST)
    pair.exchange()
    pair.server.send_response_head(stream_id, 200, [])
    pair.server.send_trailers(stream_id, [(b"Grpc-Status", b" 0 "), (b"connection", b"close")])
    trailers = only(pair.to_client(), h2.events.TrailersReceived)
    assert trailers.headers == [(b"grpc-status", b"0")]
