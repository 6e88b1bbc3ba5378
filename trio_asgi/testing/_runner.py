"""Running a test in virtual time, on trio or on asyncio, in one call.

:func:`run_in_virtual_time` owns the event loop and its clock: trio with
``MockClock(autojump_threshold=0)``, or asyncio on a
:class:`~trio_asgi.testing.VirtualClockEventLoop`. Either way the clock jumps to the
next deadline whenever every task waits, so a 30-second server timeout takes no
time and a run depends only on its inputs (what hypothesis drew).
:func:`with_test_server` is the decorator form: a fresh server per call, which is
what a hypothesis test needs (one server per example).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeAlias, TypeVar

import trio
import trio.testing

from .._types import ASGIApp
from ._test_server import open_test_server
from ._virtual_clock import VirtualClockEventLoop

_T = TypeVar("_T")

#: The event loops the toolkit runs on.
Backend: TypeAlias = Literal["trio", "asyncio"]
BACKENDS: tuple[Backend, ...] = ("trio", "asyncio")


def run_in_virtual_time(async_fn: Callable[[], Awaitable[_T]], *, backend: Backend = "trio") -> _T:
    """Run ``async_fn()`` in a new event loop whose clock is virtual; return its result.

    Args:
        async_fn: The coroutine function to run.
        backend: ``"trio"`` or ``"asyncio"``.

    Example:
        >>> import anyio
        >>> async def wait_an_hour():
        ...     await anyio.sleep(3600)
        ...     return anyio.current_time()
        >>> run_in_virtual_time(wait_an_hour, backend="asyncio")
        3600.0
    """
    if backend == "trio":
        clock = trio.testing.MockClock(autojump_threshold=0)
        return trio.run(_as_coroutine, async_fn, clock=clock)
    if backend == "asyncio":
        with asyncio.Runner(loop_factory=VirtualClockEventLoop) as runner:
            return runner.run(_as_coroutine(async_fn))
    raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")


async def _as_coroutine(async_fn: Callable[[], Awaitable[_T]]) -> _T:
    return await async_fn()


def with_test_server(
    app: ASGIApp, *, backend: Backend = "trio", **server_options: Any
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., None]]:
    """Decorate ``async def test(server, ...)`` into a plain test that serves ``app`` per call.

    Each call runs a new event loop in virtual time (:func:`run_in_virtual_time`) with a
    new :func:`open_test_server` around the test body, so it works under hypothesis's
    ``@given`` (put ``@given`` above it) and under pytest without any async plugin. The
    test's first parameter receives the :class:`TestServer`; the others are the test's.

    Args:
        app: The app to serve.
        backend: ``"trio"`` or ``"asyncio"``.
        **server_options: Passed to :func:`open_test_server` (``Config`` options too).

    Example:
        >>> async def app(scope, receive, send):
        ...     await send({"type": "http.response.start", "status": 204})
        ...     await send({"type": "http.response.body"})
        >>> @with_test_server(app, lifespan="off")
        ... async def test_no_content(server, path="/"):
        ...     client = await server.connect()
        ...     assert (await client.request("GET", path)).status == 204
        >>> test_no_content(path="/x")
    """

    def decorate(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        signature = inspect.signature(test)
        rest = list(signature.parameters.values())[1:]

        @functools.wraps(test)
        def run_test(*args: Any, **kwargs: Any) -> None:
            async def body() -> None:
                async with open_test_server(app, **server_options) as server:
                    await test(server, *args, **kwargs)

            run_in_virtual_time(body, backend=backend)

        # What pytest and hypothesis see: the test's parameters without the server.
        run_test.__signature__ = signature.replace(parameters=rest)  # type: ignore[attr-defined]
        del run_test.__wrapped__
        return run_test

    return decorate
