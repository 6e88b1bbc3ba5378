"""The http scope built from a request an h11 client sent (ASGI HTTP spec, ../shared/ASGI.md)."""

from __future__ import annotations

from typing import Any

import pytest

from trio_asgi._protocol._http11 import RequestHead
from trio_asgi._protocol._scope import (
    HTTP_SPEC_VERSION,
    LIFESPAN_SPEC_VERSION,
    http_scope,
    websocket_scope,
)


def parse(hp: Any, data: bytes) -> RequestHead:
    head = hp.feed(hp.conn(), data)[0]
    assert type(head) is RequestHead
    return head


def scope_for(hp: Any, target: bytes = b"/", method: bytes = b"GET", **kw: Any) -> dict[str, Any]:
    request = parse(hp, hp.Client().request(method, target, kw.pop("headers", ())))
    options: dict[str, Any] = {
        "scheme": "http",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "extensions": {},
    }
    options.update(kw)
    return http_scope(request, **options)


def test_asgi_md_example(hp: Any) -> None:
    scope = scope_for(hp, b"/caf%C3%A9/a%2Fb/%FF?q=%20x")
    assert scope["path"] == "/caf\u00e9/a/b/\ufffd"
    assert scope["raw_path"] == b"/caf%C3%A9/a%2Fb/%FF"
    assert scope["query_string"] == b"q=%20x"
    assert scope["root_path"] == ""


def test_every_field(hp: Any) -> None:
    state = {"db": object()}
    extensions: dict[str, dict[str, Any]] = {"http.response.trailers": {}}
    scope = scope_for(
        hp,
        b"/x?y",
        b"PUT",
        scheme="https",
        client=("::1", 1234),
        server=("::1", 443),
        state=state,
        extensions=extensions,
        headers=[(b"X-A", b"1")],
    )
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": HTTP_SPEC_VERSION},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "https",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"y",
        "root_path": "",
        "headers": [(b"host", b"example.com"), (b"x-a", b"1")],
        "client": ("::1", 1234),
        "server": ("::1", 443),
        "state": state,
        "extensions": extensions,
    }
    assert scope["extensions"] is extensions
    assert scope["state"]["db"] is state["db"]


def test_spec_versions() -> None:
    # 2.4 is what holds for HTTP today: 2.2 (unix server) and 2.4 (send() after
    # disconnect raises OSError). 2.5 only once every WebSocket item is in.
    assert HTTP_SPEC_VERSION in ("2.4", "2.5")
    assert LIFESPAN_SPEC_VERSION == "2.0"


def test_state_is_a_shallow_copy_per_scope(hp: Any) -> None:
    shared: dict[str, Any] = {"pool": []}
    first = scope_for(hp, state=shared)
    second = scope_for(hp, state=shared)
    first["state"]["added"] = 1
    assert "added" not in shared
    assert "added" not in second["state"]
    first["state"]["pool"].append("conn")
    assert shared["pool"] == ["conn"]


def test_asgi_dict_not_shared_between_scopes(hp: Any) -> None:
    first = scope_for(hp)
    first["asgi"]["spec_version"] = "changed"
    assert scope_for(hp)["asgi"]["spec_version"] == HTTP_SPEC_VERSION


def test_unix_socket_server(hp: Any) -> None:
    scope = scope_for(hp, client=None, server=("/run/app.sock", None))
    assert scope["server"] == ("/run/app.sock", None)
    assert scope["client"] is None


@pytest.mark.parametrize(
    ("target", "root_path", "path", "raw_path"),
    [
        (b"/api/x", "/mount", "/mount/api/x", b"/mount/api/x"),
        (b"/caf%C3%A9", "/mount", "/mount/caf\u00e9", b"/mount/caf%C3%A9"),
        (b"/", "/mount", "/mount/", b"/mount/"),
        (b"/a%2Fb", "", "/a/b", b"/a%2Fb"),
    ],
)
def test_root_path_prefixes_path_and_raw_path(
    hp: Any, target: bytes, root_path: str, path: str, raw_path: bytes
) -> None:
    scope = scope_for(hp, target + b"?q=1", root_path=root_path)
    assert scope["path"] == path
    assert scope["raw_path"] == raw_path
    assert scope["root_path"] == root_path
    assert scope["query_string"] == b"q=1"


def test_asterisk_is_not_prefixed(hp: Any) -> None:
    scope = scope_for(hp, b"*", b"OPTIONS", root_path="/mount")
    assert (scope["path"], scope["raw_path"]) == ("*", b"*")


def test_headers_keep_order_and_duplicates(hp: Any) -> None:
    scope = scope_for(hp, headers=[(b"Cookie", b"a=1"), (b"Accept", b"*/*"), (b"COOKIE", b"b=2")])
    assert scope["headers"] == [
        (b"host", b"example.com"),
        (b"cookie", b"a=1"),
        (b"accept", b"*/*"),
        (b"cookie", b"b=2"),
    ]
    assert all(type(n) is bytes and type(v) is bytes for n, v in scope["headers"])


def test_http10(hp: Any) -> None:
    request = parse(hp, b"GET /old HTTP/1.0\r\n\r\n")
    scope = http_scope(
        request, scheme="http", root_path="", client=None, server=None, state={}, extensions={}
    )
    assert scope["http_version"] == "1.0"
    assert scope["headers"] == []


def test_method_as_sent(hp: Any) -> None:
    assert scope_for(hp, method=b"PROPFIND")["method"] == "PROPFIND"


def test_websocket_scope(hp: Any) -> None:
    request = parse(
        hp,
        hp.Client().request(
            b"GET",
            b"/ws/caf%C3%A9?x=1",
            [
                (b"Upgrade", b"websocket"),
                (b"Connection", b"Upgrade"),
                (b"Sec-WebSocket-Protocol", b"chat, superchat"),
            ],
        ),
    )
    state = {"k": "v"}
    for scheme, ws_scheme in (("http", "ws"), ("https", "wss")):
        scope = websocket_scope(
            request,
            scheme=scheme,
            root_path="/m",
            client=("1.2.3.4", 5),
            server=("/s.sock", None),
            state=state,
            subprotocols=("chat", "superchat"),
        )
        assert scope["type"] == "websocket"
        assert scope["scheme"] == ws_scheme
        assert "method" not in scope
        assert scope["path"] == "/m/ws/caf\u00e9"
        assert scope["raw_path"] == b"/m/ws/caf%C3%A9"
        assert scope["query_string"] == b"x=1"
        assert scope["subprotocols"] == ["chat", "superchat"]
        assert scope["extensions"] == {"websocket.http.response": {}}
        assert scope["state"] == state
        assert scope["state"] is not state
        assert scope["server"] == ("/s.sock", None)
    first = websocket_scope(
        request, scheme="http", root_path="", client=None, server=None, state={}, subprotocols=()
    )
    first["extensions"]["websocket.http.response"]["x"] = 1
    second = websocket_scope(
        request, scheme="http", root_path="", client=None, server=None, state={}, subprotocols=()
    )
    assert second["extensions"] == {"websocket.http.response": {}}
