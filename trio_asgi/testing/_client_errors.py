"""What the test clients raise when the server misbehaves or goes away."""

from __future__ import annotations

from ._responses import TestResponse


class InvalidResponse(AssertionError):
    """The server wrote bytes that are not valid HTTP/1.1 or WebSocket (a server bug)."""


class ConnectionClosed(Exception):
    """The server closed the connection before a complete response.

    Attributes:
        partial: The response head, if the server had sent one before closing
            (it then failed in the middle of the body).
    """

    def __init__(self, message: str, partial: TestResponse | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class WebSocketClosed(Exception):
    """The WebSocket closed while a message was expected.

    Attributes:
        code: The server's close code (1006: the connection dropped without a close frame).
        reason: The server's close reason.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"the WebSocket closed with {code} {reason!r}")
        self.code = code
        self.reason = reason
