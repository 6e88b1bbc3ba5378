"""The lifespan protocol's message order, as a table.

The server sends ``lifespan.startup`` then, at the end, ``lifespan.shutdown``;
the app answers each with ``.complete`` or ``.failed``. :class:`LifespanOrder`
says which app message is valid when, and what it means.
"""

from __future__ import annotations

import enum
from typing import Final

from .._errors import ASGIProtocolError
from .._types import Message


class LifespanPhase(enum.Enum):
    #: ``lifespan.startup`` delivered (or about to be); waiting for the app's answer.
    STARTING = enum.auto()
    #: Startup complete; the server is serving.
    STARTED = enum.auto()
    #: ``lifespan.shutdown`` delivered; waiting for the app's answer.
    STOPPING = enum.auto()
    #: Shutdown answered: nothing more is valid.
    STOPPED = enum.auto()
    #: Startup failed: nothing more is valid.
    FAILED = enum.auto()


#: (phase, app message type) -> next phase
TRANSITIONS: Final[dict[tuple[LifespanPhase, str], LifespanPhase]] = {
    (LifespanPhase.STARTING, "lifespan.startup.complete"): LifespanPhase.STARTED,
    (LifespanPhase.STARTING, "lifespan.startup.failed"): LifespanPhase.FAILED,
    (LifespanPhase.STOPPING, "lifespan.shutdown.complete"): LifespanPhase.STOPPED,
    (LifespanPhase.STOPPING, "lifespan.shutdown.failed"): LifespanPhase.STOPPED,
}


class LifespanOrder:
    __slots__ = ("phase",)

    def __init__(self) -> None:
        self.phase = LifespanPhase.STARTING

    def advance(self, message: Message) -> str | None:
        """Apply an app message; return its failure text for ``*.failed`` messages, else None.

        Raises:
            ASGIProtocolError: the message is not valid now.
        """
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str):
            raise ASGIProtocolError(
                f"a lifespan message must be a dict with a 'type', got {message!r}"
            )
        following = TRANSITIONS.get((self.phase, kind))
        if following is None:
            raise ASGIProtocolError(f"unexpected {kind!r} during lifespan {self.phase.name}")
        self.phase = following
        if kind.endswith(".failed"):
            text = message.get("message", "")
            return text if isinstance(text, str) else repr(text)
        return None

    def begin_shutdown(self) -> None:
        self.phase = LifespanPhase.STOPPING
