"""Test configuration for the end-to-end framework tests (``test_frameworks_*.py``).

Those modules are marked ``pytest.mark.anyio`` and run once per ``anyio_backend``
(``trio`` and ``asyncio``, from ``tests/conftest.py``); a module for an asyncio-only
framework overrides ``anyio_backend`` to return ``"asyncio"``. Their helpers (a live
server, a WebSocket client) are in ``frameworks_helpers.py``.
"""

from __future__ import annotations
