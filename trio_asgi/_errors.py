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


def raised_for_disconnect(exc: BaseException) -> bool:
    """Our ClientDisconnected as a framework re-raised it, alone or in exception groups.

    Frameworks turn it into their own exception, raised while handling ours
    (Starlette's ``ClientDisconnect`` and ``WebSocketDisconnect``), and task groups
    wrap that in a group (FastAPI's event streams on trio). Once the server knows the
    client is gone, that is the client leaving, not an app error.
    """
    if isinstance(exc, BaseExceptionGroup):
        return all(raised_for_disconnect(inner) for inner in exc.exceptions)
    return isinstance(exc, ClientDisconnected) or isinstance(exc.__context__, ClientDisconnected)
