"""A diagnostic, not a way to run trio-asgi: the server with trio's batches run in FIFO order.

trio runs the tasks that became ready since its last I/O check as one batch, and
runs each batch in arrival order or in reverse with a probability of one half
(``trio/_core/_run.py``; the randomness is deliberate, see python-trio/trio#32).
Under a busy keep-alive load a request that became ready early can wait for the
whole batch, so trio-asgi's p99 latency on trio spreads wider than its median
suggests. This launcher makes every batch run first-in, first-out and starts
``python -m trio_asgi`` with the given arguments, so that one bench run shows the
same server under both orders: the ``trio-asgi-fifo`` rows.

It swaps trio's private batch-order coin for one that always picks FIFO. That is
acceptable in a measuring tool only; if trio stops having the coin, the launcher
exits with an error instead of measuring something else.

    python bench/trio_fifo.py bench.apps:app --port 8000
"""

from __future__ import annotations

import random
import runpy
import sys

import trio._core._run as trio_run


class _AlwaysReverse(random.Random):
    """``random()`` below one half: trio reverses the batch, then pops from its end (FIFO)."""

    def random(self) -> float:
        return 0.0


def main() -> None:
    if not isinstance(getattr(trio_run, "_r", None), random.Random):
        sys.exit("trio_fifo: this trio has no batch-order coin (trio._core._run._r)")
    trio_run._r = _AlwaysReverse()
    sys.argv = ["trio_asgi", *sys.argv[1:]]
    runpy.run_module("trio_asgi", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
