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

from collections.abc import Callable
from contextlib import AbstractContextManager
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


class open_stream_group:
    """Open the connection's task group: trio's own nursery when on trio.

    A class rather than an ``@asynccontextmanager`` generator: the generator and its
    frame would stay suspended for the whole life of every connection (about 0.5 KiB
    of an idle HTTP/2 connection); this holds one reference to the group's manager.
    """

    __slots__ = ("_manager",)

    def __init__(self) -> None:
        self._manager: Any = None

    async def __aenter__(self) -> StreamGroup:
        if ENABLED and running_on_trio():
            self._manager = trio.open_nursery()
            nursery = await self._manager.__aenter__()
            return StreamGroup(nursery.start_soon, nursery.cancel_scope, trio.CancelScope)
        self._manager = group = anyio.create_task_group()
        await group.__aenter__()
        return StreamGroup(group.start_soon, group.cancel_scope, anyio.CancelScope)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        result: bool | None = await self._manager.__aexit__(*exc_info)
        return result
