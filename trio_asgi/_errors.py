"""Exceptions that cross the boundary between the server and apps or callers."""

from __future__ import annotations


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the client is gone (ASGI HTTP/WebSocket spec 2.4).

    It subclasses :class:`OSError` as the spec asks. When an app lets it escape,
    the server treats it as the normal end of that request and logs nothing.
    """


class ASGIProtocolError(RuntimeError):
    """Raised by ``send()`` when an app sends an invalid message or sends out of order."""


class LifespanFailure(RuntimeError):
    """Lifespan startup failed (``lifespan.startup.failed``, an error or a timeout).

    :func:`trio_asgi.serve` raises it before binding; the command exits with code 3.
    """


class AppLoadError(RuntimeError):
    """The app named on the command line could not be imported or built."""


def only_disconnects(exc: BaseException) -> bool:
    """True for our :class:`ClientDisconnected`, alone or in exception groups (app task groups)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(only_disconnects(inner) for inner in exc.exceptions)
    return isinstance(exc, ClientDisconnected)
