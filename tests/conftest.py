"""Shared test configuration: hypothesis profiles, and both backends for anyio tests.

``ci`` (the default) keeps property tests fast; ``fuzz`` (``HYPOTHESIS_PROFILE=fuzz``,
used by ``nox -s fuzz``) runs them long, 100,000 examples a test unless
``TRIO_ASGI_FUZZ_EXAMPLES`` says otherwise (a smoke run of the session: 200); ``dev`` is
hypothesis's default size.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=50, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("TRIO_ASGI_FUZZ_EXAMPLES", "100000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Leave tests marked ``anyio`` to the anyio plugin.

    ``trio_mode`` marks every coroutine test ``trio`` (in this same hook, earlier), and
    pytest-trio then swaps the test function for one that calls ``trio.run``: the
    ``asyncio`` parameter would silently run on trio too. Without that mark the anyio
    plugin runs each test on its ``anyio_backend`` (``tests/server/test_backends.py``
    checks it).
    """
    for item in items:
        if item.get_closest_marker("anyio") is not None:
            item.own_markers[:] = [mark for mark in item.own_markers if mark.name != "trio"]


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Every test marked ``anyio`` runs on both backends.

    ``tests/server`` adds virtual time to this; asyncio-only framework modules in
    ``tests/e2e`` override it to return ``"asyncio"``.
    """
    backend: str = request.param
    return backend
