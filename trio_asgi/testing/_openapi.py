"""Requests drawn from an OpenAPI 3 document: an app's own routes and parameters, on the wire.

:func:`requests_from_openapi` reads the parts of an OpenAPI 3.0/3.1 document (a dict,
e.g. FastAPI's ``app.openapi()``) that say what a valid request looks like: each
path and method, the path, query and header parameters with simple schemas, and a
JSON request body. Each operation becomes :func:`~trio_asgi.testing.strategies.http_requests`
with those parts, so the requests keep every wire variation (header case, whitespace,
chunked bodies, percent-encoding) and go through the real server to the app.

It is a small reader, not a validator: ``$ref`` to ``#/components/...``, ``enum``,
``const``, numeric bounds, string lengths, ``anyOf``/``oneOf`` (one branch drawn),
arrays of simple items (repeated query parameters) and objects are understood;
anything else draws any JSON value. Cookie parameters are left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from ._http_requests import RawRequest, http_requests
from ._http_routes import percent_encode

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_CHARACTERS = st.characters(codec="utf-8")
_TEXT = st.text(_CHARACTERS, max_size=20)
_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT
_ANY_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_QUERY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_VALUE_SAFE = _QUERY_SAFE | frozenset("!$&'()*+,;=:@")

Schema = Mapping[str, Any]


def requests_from_openapi(
    schema: Schema, *, operations: Sequence[str] | None = None
) -> st.SearchStrategy[RawRequest]:
    """Valid requests to the operations of an OpenAPI 3 document.

    Args:
        schema: The document, as a dict (``app.openapi()`` for FastAPI).
        operations: Only these, as ``"METHOD /path"`` (the path as in the document,
            e.g. ``"GET /items/{item_id}"``). Default: every operation.

    Returns:
        A strategy of :class:`~trio_asgi.testing.strategies.RawRequest`.

    Raises:
        ValueError: The document has no (selected) operation.

    Example:
        >>> doc = {"paths": {"/items/{id}": {"get": {"parameters": [
        ...     {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        ... ]}}}}
        >>> from hypothesis import given
        >>> @given(requests_from_openapi(doc))
        ... def test_item_targets(request):
        ...     assert request.method == "GET" and request.raw_path.startswith(b"/items/")
        >>> test_item_targets()
    """
    reader = _Reader(schema)
    strategies = [
        reader.operation(path, method.upper(), operation, common)
        for path, item in schema.get("paths", {}).items()
        for common in [item.get("parameters", [])]
        for method, operation in item.items()
        if method in _METHODS and (operations is None or f"{method.upper()} {path}" in operations)
    ]
    if not strategies:
        raise ValueError("the OpenAPI document has no operation to draw requests for")
    return st.one_of(strategies)


class _Reader:
    """Turns the parts of one document into strategies, resolving its ``$ref``."""

    def __init__(self, document: Schema) -> None:
        self._document = document

    def resolve(self, node: Schema) -> Schema:
        while "$ref" in node:
            target: Any = self._document
            for part in str(node["$ref"]).removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def operation(
        self, path: str, method: str, operation: Schema, common: Sequence[Schema]
    ) -> st.SearchStrategy[RawRequest]:
        parameters = {}  # by (location, name): an operation's own override the path's
        for raw in [*common, *operation.get("parameters", [])]:
            parameter = self.resolve(raw)
            parameters[parameter.get("in"), parameter.get("name")] = parameter
        by_place: dict[str, list[Schema]] = {"path": [], "query": [], "header": []}
        for (place, _), parameter in parameters.items():
            by_place.get(str(place), []).append(parameter)
        body = self.body(operation.get("requestBody"))
        headers: dict[str, Any] = {p["name"]: self.optional(p) for p in by_place["header"]}
        if body is not None:
            headers["content-type"] = "application/json"
        return http_requests(
            paths=self.paths(path, by_place["path"]),
            methods=[method],
            query=self.query(by_place["query"]),
            headers=headers,
            body=body,
            framings=["content-length", "chunked"] if body is not None else ["none"],
            max_headers=2,
        )

    def paths(self, template: str, parameters: Sequence[Schema]) -> st.SearchStrategy[str]:
        values = {p["name"]: self.values(p.get("schema", {})) for p in parameters}

        def fill(drawn: dict[str, object]) -> str:
            path = template
            for name, value in drawn.items():
                text = _as_text(value)
                # A path segment: "/" and "%" encoded, so the value stays one segment.
                path = path.replace("{" + name + "}", percent_encode(text, _PATH_VALUE_SAFE, True))
            return path

        # Values that are empty would leave an empty segment: a different route.
        segments = {n: v.filter(lambda x: _as_text(x) != "") for n, v in values.items()}
        return st.fixed_dictionaries(segments).map(fill)

    def query(self, parameters: Sequence[Schema]) -> st.SearchStrategy[str]:
        pairs = [
            st.tuples(st.just(p["name"]), self.optional(p)).map(_query_pairs) for p in parameters
        ]
        return st.tuples(*pairs).flatmap(_joined_query)

    def optional(self, parameter: Schema) -> st.SearchStrategy[object]:
        values = self.values(parameter.get("schema", {}))
        return values if parameter.get("required", False) else st.none() | values

    def body(self, request_body: Schema | None) -> st.SearchStrategy[bytes] | None:
        if request_body is None:
            return None
        content = self.resolve(request_body).get("content", {})
        media = next((m for t, m in content.items() if "json" in t), None)
        if media is None:
            return None
        return self.values(media.get("schema", {})).map(
            lambda value: json.dumps(value).encode("utf-8")
        )

    def values(self, node: Schema) -> st.SearchStrategy[Any]:
        node = self.resolve(node)
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            return st.sampled_from(node["enum"])
        branches = node.get("anyOf") or node.get("oneOf")
        if branches:
            return st.one_of([self.values(branch) for branch in branches])
        kind = node.get("type")
        if isinstance(kind, list):
            return st.one_of([self.values({**node, "type": k}) for k in kind])
        if kind == "integer":
            return st.integers(_bound(node, "minimum", 1), _bound(node, "maximum", -1))
        if kind == "number":
            return st.floats(
                node.get("minimum"), node.get("maximum"), allow_nan=False, allow_infinity=False
            )
        if kind == "string":
            return st.text(
                _CHARACTERS,
                min_size=node.get("minLength", 0),
                max_size=min(node.get("maxLength", 20), 64),
            )
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            return st.lists(self.values(node.get("items", {})), max_size=3)
        if kind == "object" or "properties" in node:
            return self.objects(node)
        return _ANY_JSON

    def objects(self, node: Schema) -> st.SearchStrategy[dict[str, Any]]:
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        return st.fixed_dictionaries(
            {name: self.values(s) for name, s in properties.items() if name in required},
            optional={
                name: self.values(s) for name, s in properties.items() if name not in required
            },
        )


def _bound(node: Schema, key: str, exclusive_step: int) -> int | None:
    """An integer bound: ``minimum``/``maximum``, or the exclusive ones moved by one."""
    exclusive = node.get("exclusiveMinimum" if exclusive_step > 0 else "exclusiveMaximum")
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):  # OpenAPI 3.1
        return math.floor(exclusive) + 1 if exclusive_step > 0 else math.ceil(exclusive) - 1
    value: float | None = node.get(key)
    if value is None:
        return None
    if exclusive is True:  # OpenAPI 3.0: a flag next to the bound
        return math.floor(value) + exclusive_step
    return math.ceil(value) if exclusive_step > 0 else math.floor(value)


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query_pairs(named: tuple[str, object]) -> list[tuple[str, str]]:
    """One ``name=value`` pair, one per item for an array (``explode``, the default)."""
    name, value = named
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [(name, _as_text(item)) for item in items]


def _joined_query(groups: tuple[list[tuple[str, str]], ...]) -> st.SearchStrategy[str]:
    pairs = [pair for group in groups for pair in group]
    return st.tuples(st.permutations(pairs), st.booleans()).map(
        lambda drawn: "&".join(
            percent_encode(n, _QUERY_SAFE, drawn[1])
            + "="
            + percent_encode(v, _QUERY_SAFE, drawn[1])
            for n, v in drawn[0]
        )
    )
