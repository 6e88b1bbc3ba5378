"""A small app with a planted bug, and the hypothesis test that finds it.

The app upper-cases the text it is sent. It decodes each ``http.request`` message
on its own, which works as long as the body arrives in one piece, or in pieces
that happen to end between characters. A client whose bytes arrive split inside
a multi-byte UTF-8 character makes it raise, and the server answers 500.

Run the test with ``pytest docs/examples/fuzz_sample_app.py``: hypothesis draws
texts and the points where the request's bytes are cut, and finds the bug in a
few dozen examples.
"""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_asgi.testing import Receive, Scope, Send, TestRequest, open_test_server


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    text = ""
    more_body = True
    while more_body:
        message = await receive()
        # The planted bug: a message may end in the middle of a character.
        text += message.get("body", b"").decode("utf-8")
        more_body = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": text.upper().encode("utf-8")})


@settings(max_examples=500, deadline=None)
@given(text=st.text(min_size=1), data=st.data())
def test_shouts_any_text(text: str, data: st.DataObject) -> None:
    wire = TestRequest("POST", "/shout", body=text.encode("utf-8")).data
    # Where the client's bytes are cut: each piece reaches the server in its own read.
    cuts = data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=4), label="cuts")

    async def check() -> None:
        async with open_test_server(app, lifespan="off") as server:
            client = await server.connect()
            await client.send_in_pieces(wire, cuts)
            response = await client.read_response("POST")
        assert response.status == 200, response
        assert response.body == text.upper().encode("utf-8")

    # Virtual time: server timeouts pass instantly, and the run depends only on the draw.
    trio.run(check, clock=trio.testing.MockClock(autojump_threshold=0))
