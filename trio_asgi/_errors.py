"""Exceptions that cross the boundary between the server and apps or callers."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line that names the option."""


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


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups, or ``[exc]`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def one_line(exc: BaseException, limit: int | None = None) -> str:
    """``str(exc)`` on one line (its type name if empty), cut to ``limit`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."


def only_disconnects(exc: BaseException) -> bool:
    """True for our :class:`ClientDisconnected`, alone or in exception groups (app task groups)."""
    return all(isinstance(leaf, ClientDisconnected) for leaf in leaves(exc))


def raised_for_disconnect(exc: BaseException) -> bool:
    """Our ClientDisconnected as a framework re-raised it, alone or in exception groups.

    Frameworks turn it into their own exception, raised while handling ours
    (Starlette's ``ClientDisconnect`` and ``WebSocketDisconnect``), and task groups
    wrap that in a group (FastAPI's event streams on trio). Once the server knows the
    client is gone, that is the client leaving, not an app error.
    """
    return all(
        isinstance(leaf, ClientDisconnected) or isinstance(leaf.__context__, ClientDisconnected)
        for leaf in leaves(exc)
    )
