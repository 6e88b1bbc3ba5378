"""The machinery shared by the request mutations: a registry and head rebuilding helpers.

A mutation takes a valid :class:`RawRequest` and returns the bytes of the same
request with one defect. Mutations are registered in a table under their kind
name, with the status a strict server answers and the base requests they need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from hypothesis import strategies as st

from ._http_requests import FRAMINGS, Framing, Headers, RawRequest, field_lines, serialize_head


class Limits(NamedTuple):
    """The server limits some mutations must exceed."""

    max_header_size: int
    max_header_count: int
    max_target_length: int
    max_body_size: int | None


Mutator = Callable[[st.DrawFn, RawRequest, Limits], bytes]


class Mutation(NamedTuple):
    """One kind of defect: how to make it, the strict answer, and what base it needs."""

    mutate: Mutator
    status: int | None
    framings: tuple[Framing, ...]
    methods: tuple[str, ...] | None  # None: any method


def registrar(
    table: dict[str, Mutation],
) -> Callable[..., Callable[[Mutator], Mutator]]:
    """A decorator factory that adds mutations to ``table`` under a kind name."""

    def kind(
        name: str,
        status: int | None,
        framings: tuple[Framing, ...] = FRAMINGS,
        methods: tuple[str, ...] | None = None,
    ) -> Callable[[Mutator], Mutator]:
        def register(mutate: Mutator) -> Mutator:
            table[name] = Mutation(mutate, status, framings, methods)
            return mutate

        return register

    return kind


def rebuild(
    base: RawRequest,
    *,
    method: bytes | None = None,
    target: bytes | None = None,
    version: bytes = b"1.1",
    fields: Sequence[tuple[bytes, bytes]] | None = None,
    lines: Sequence[bytes] | None = None,
    body: bytes | None = None,
) -> bytes:
    """Serialise ``base`` again, with some parts replaced."""
    if lines is None:
        lines = field_lines(base.headers if fields is None else fields)
    head = serialize_head(
        base.method.encode() if method is None else method,
        base.target.encode() if target is None else target,
        version,
        lines,
    )
    return head + (base.framed_body if body is None else body)


def index(draw: st.DrawFn, items: Sequence[object], *, extra: int = 0) -> int:
    return draw(st.integers(0, len(items) - 1 + extra))


def insert(draw: st.DrawFn, fields: Headers, new: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    result = list(fields)
    result.insert(index(draw, result, extra=1), new)
    return result


def find(fields: Headers, name: bytes) -> int:
    return next(i for i, (n, _) in enumerate(fields) if n.lower() == name)


def replace_value(fields: Headers, name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    result = list(fields)
    i = find(fields, name)
    result[i] = (result[i][0], value)
    return result


def inside(draw: st.DrawFn, value: bytes, inserted: bytes) -> bytes:
    i = draw(st.integers(0, len(value)))
    return value[:i] + inserted + value[i:]
