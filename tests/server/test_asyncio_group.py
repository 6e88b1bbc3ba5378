"""The connections group on asyncio (``_asyncio_group``): a task group's contract, kept.

Each test checks one promise of the module's docstring: leaving waits for every
task; the group's deadline, its cancellation and a cancellation from outside
cancel the tasks the anyio way (again at every wait until they leave, held back by
a shielded scope); a failing task cancels the rest and is raised; a task started
after the cancellation begins cancelled. On asyncio and on uvloop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from trio_asgi._server._asyncio_group import open_asyncio_group

pytestmark = pytest.mark.anyio

TIMEOUT = 5


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> str | tuple[str, dict[str, Any]]:
    if request.param == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return "asyncio"


async def test_leaving_the_group_waits_for_every_task() -> None:
    finished: list[int] = []
    release = anyio.Event()

    async def connection(number: int) -> None:
        await release.wait()
        await anyio.lowlevel.checkpoint()
        finished.append(number)

    with anyio.fail_after(TIMEOUT):
        async with open_asyncio_group() as group:
            for number in range(3):
                group.start_soon(connection, number, name="connection")
            await anyio.wait_all_tasks_blocked()
            assert finished == []
            release.set()
    assert sorted(finished) == [0, 1, 2]
    assert not group.cancel_scope.cancelled_caught


async def test_the_deadline_cancels_what_remains_and_shielded_cleanup_completes() -> None:
    """The graceful-shutdown shape: the deadline set after the body cancels the tasks.

    Each task swallows the first cancellation and waits again: anyio's cancellation
    comes back at that wait (a bare ``Task.cancel()`` would not, and the group would
    wait forever). The shielded wait inside runs to its end despite the cancellation.
    """
    events: list[str] = []

    async def stubborn(_: None) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            events.append("cancelled")
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.01)  # the last word of a cancelled request, say
            events.append("shielded work done")
        try:
            await anyio.sleep_forever()
        finally:
            events.append("cancelled again")

    with anyio.fail_after(TIMEOUT):
        async with open_asyncio_group() as group:
            group.start_soon(stubborn, None, name="stubborn")
            await anyio.wait_all_tasks_blocked()
            group.cancel_scope.deadline = anyio.current_time() + 0.01
    assert group.cancel_scope.cancelled_caught
    assert events == ["cancelled", "shielded work done", "cancelled again"]


async def test_cancelling_from_outside_cancels_the_tasks_and_waits_for_them() -> None:
    closed: list[str] = []

    async def connection(_: None) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()
                closed.append("closed")

    with anyio.fail_after(TIMEOUT):
        with anyio.CancelScope() as outer:
            async with open_asyncio_group() as group:
                group.start_soon(connection, None, name="connection")
                group.start_soon(connection, None, name="connection")
                await anyio.wait_all_tasks_blocked()
                outer.cancel()
                await anyio.sleep_forever()
    assert outer.cancelled_caught
    assert closed == ["closed", "closed"]


class Boom(BaseException):
    """What a connection task must not catch (as KeyboardInterrupt), in this test."""


async def test_a_failing_task_cancels_the_others_and_the_body_and_is_raised() -> None:
    cancelled: list[str] = []
    fail = anyio.Event()

    async def failing(_: None) -> None:
        await fail.wait()
        raise Boom

    async def bystander(_: None) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append("bystander")
            raise

    async def serve() -> None:
        async with open_asyncio_group() as group:
            group.start_soon(failing, None, name="failing")
            group.start_soon(bystander, None, name="bystander")
            await anyio.wait_all_tasks_blocked()
            fail.set()
            try:
                await anyio.sleep_forever()  # the accept loop, say
            except anyio.get_cancelled_exc_class():
                cancelled.append("body")
                raise

    with anyio.fail_after(TIMEOUT), pytest.raises(BaseExceptionGroup) as raised:
        await serve()
    assert [type(exc) for exc in raised.value.exceptions] == [Boom]
    assert sorted(cancelled) == ["body", "bystander"]


async def test_a_task_started_once_the_group_cancels_begins_cancelled() -> None:
    """As in a cancelled task group: it runs up to its first wait, which is cancelled."""
    ran: list[str] = []
    started_late = anyio.Event()

    async def late(_: None) -> None:
        ran.append("started")
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            ran.append("cancelled")
            raise

    async def first(_: None) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            # Started while the group cancels, as the accept loop's last batch could be.
            group.start_soon(late, None, name="late")
            started_late.set()

    with anyio.fail_after(TIMEOUT):
        async with open_asyncio_group() as group:
            group.start_soon(first, None, name="first")
            await anyio.wait_all_tasks_blocked()
            group.cancel_scope.cancel()
    assert started_late.is_set()
    assert ran == ["started", "cancelled"]


async def test_the_tasks_are_plain_asyncio_tasks_with_the_given_name() -> None:
    names: list[str] = []

    async def connection(_: None) -> None:
        task = asyncio.current_task()
        assert task is not None
        names.append(task.get_name())

    async with open_asyncio_group() as group:
        group.start_soon(connection, None, name="trio_asgi connection")
    assert names == ["trio_asgi connection"]
