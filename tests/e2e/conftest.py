"""Test configuration for the end-to-end framework tests (``test_frameworks_*.py``).

Those modules are marked ``pytest.mark.anyio`` and run once per ``anyio_backend``
(``trio`` and ``asyncio``); a module for an asyncio-only framework overrides
``anyio_backend`` to return ``"asyncio"``. Their helpers (a live server, a WebSocket
client) are in ``frameworks_helpers.py``.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Leave tests marked ``anyio`` to the anyio plugin.

    ``trio_mode`` marks every coroutine test ``trio`` (in this same hook, earlier),
    and pytest-trio then swaps the test function for one that calls ``trio.run``: the
    ``asyncio`` parameter would silently run on trio too. Without that mark the anyio
    plugin runs each test on its ``anyio_backend``.
    """
    for item in items:
        if item.get_closest_marker("anyio") is not None:
            item.own_markers[:] = [mark for mark in item.own_markers if mark.name != "trio"]


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Both backends; asyncio-only framework modules override this fixture."""
    backend: str = request.param
    return backend
