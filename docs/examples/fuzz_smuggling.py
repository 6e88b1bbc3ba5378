"""No malformed or smuggled request reaches the app: the how-to's second example, whole.

Run it with ``pytest docs/examples/fuzz_smuggling.py``.
"""

from __future__ import annotations

from hypothesis import given, settings

from trio_asgi.testing import (
    Receive,
    RecordingApp,
    Scope,
    Send,
    TestServer,
    assert_app_not_called,
    expect_one_response_each,
    with_test_server,
)
from trio_asgi.testing.strategies import RawInvalidRequest, invalid_requests


async def my_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"hello"})


app = RecordingApp(my_app)


@settings(max_examples=50, deadline=None)
@given(request=invalid_requests(kinds=["cl-and-te", "duplicate-content-length", "obs-fold"]))
@with_test_server(app, lifespan="off")
async def test_smuggling_never_reaches_the_app(
    server: TestServer, request: RawInvalidRequest
) -> None:
    app.clear()
    client = await server.connect()
    await client.send(request.data)
    [response] = await expect_one_response_each(client, ["GET"])
    assert response.status == request.expected_status
    assert_app_not_called(app, request.kind)
