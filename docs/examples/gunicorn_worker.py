"""A Gunicorn worker class with trio-asgi options Gunicorn has no setting for.

Run it with ``gunicorn -k gunicorn_worker.MyWorker myapp.asgi:app`` (this file on the
Python path, e.g. with ``--pythonpath``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from trio_asgi.workers import TrioWorker


class MyWorker(TrioWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "ws_max_size": 1 << 20,
        "timeout_request_head": 5.0,
        "headers": (("x-served-by", "trio-asgi under gunicorn"),),
    }
