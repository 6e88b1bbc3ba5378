"""The group that owns an HTTP/2 connection's tasks, and each stream's cancel scope.

A connection starts one task per stream, so what starting a task and making a
cancel scope cost is paid per request. anyio's TaskGroup on trio wraps every task
(a task handle with its own cancel scope, a wrapper coroutine, a name built from
the function) and an ``anyio.CancelScope`` wraps trio's: together about a sixth of
the server's CPU per request on ``h2_hello`` (py-spy). On trio (with the fast paths
on, see :mod:`._fast_paths`) the connection uses trio's nursery and cancel scopes,
which own and cancel tasks in the same way without the wrapping; elsewhere anyio's.
Either way every stream task belongs to the connection's group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any, Protocol

import anyio
import trio

from ._fast_paths import ENABLED, GroupScope, running_on_trio

#: The name of every stream task (a fixed string, not one built per task).
STREAM_TASK = "trio_asgi HTTP/2 stream"


class StreamScope(AbstractContextManager[Any], Protocol):
    """What a stream uses of its cancel scope (trio's and anyio's both have it)."""

    def cancel(self) -> None: ...


class StreamGroup:
    """A connection's task group (a trio nursery or an anyio TaskGroup), and the cancel
    scopes its stream tasks run in (of the same kind)."""

    __slots__ = ("cancel_scope", "new_scope", "start_soon")

    def __init__(
        self,
        start_soon: Callable[..., object],
        cancel_scope: GroupScope,
        new_scope: Callable[[], StreamScope],
    ) -> None:
        #: ``start_soon(async_fn, *args, name=...)``: a task owned by the group.
        self.start_soon = start_soon
        self.cancel_scope = cancel_scope
        self.new_scope = new_scope


@asynccontextmanager
async def open_stream_group() -> AsyncIterator[StreamGroup]:
    """Open the connection's task group: trio's own nursery when on trio."""
    if ENABLED and running_on_trio():
        async with trio.open_nursery() as nursery:
            yield StreamGroup(nursery.start_soon, nursery.cancel_scope, trio.CancelScope)
    else:
        async with anyio.create_task_group() as group:
            yield StreamGroup(group.start_soon, group.cancel_scope, anyio.CancelScope)
