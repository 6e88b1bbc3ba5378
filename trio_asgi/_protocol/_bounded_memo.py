"""The one eviction rule of the HTTP/2 memos: a bounded dict that drops its oldest entry."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, entries: int) -> None:
    """Keep ``value`` under ``key`` in ``memo``, first dropping the oldest entry if
    ``entries`` are held (dicts keep insertion order).

    ``pop``, not ``del``: a memo shared by servers on several threads may have lost
    that entry to another one meanwhile.
    """
    if len(memo) >= entries:
        memo.pop(next(iter(memo)), None)
    memo[key] = value
