"""Short reprs for drawn values, so a failing example with a 16 MiB frame stays readable.

Hypothesis prints failing examples with its pretty-printer, which prefers a
``_repr_pretty_`` method; the mixin gives both that and ``__repr__``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

_LIMIT = 80
_ITEMS = 8


def short(value: object) -> str:
    """``repr(value)``, with long bytes and strings cut and long sequences elided."""
    if isinstance(value, bytes | str) and len(value) > _LIMIT:
        unit = "bytes" if isinstance(value, bytes) else "characters"
        return f"{value[:_LIMIT]!r}...({len(value)} {unit})"
    if isinstance(value, tuple | list):
        items = [short(item) for item in value[:_ITEMS]]
        if len(value) > _ITEMS:
            items.append(f"...({len(value)} items)")
        text = ", ".join(items)
        return (
            f"[{text}]" if isinstance(value, list) else f"({text}{',' if len(value) == 1 else ''})"
        )
    return repr(value)


class CompactRepr:
    """A dataclass mixin (use with ``repr=False``): a repr built with :func:`short`."""

    def __repr__(self) -> str:
        fields = dataclasses.fields(self)  # type: ignore[arg-type]
        parts = (f"{f.name}={short(getattr(self, f.name))}" for f in fields if f.repr)
        return f"{type(self).__name__}({', '.join(parts)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))
