"""``python -m trio_asgi``: the same as the ``trio-asgi`` command."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    main()
