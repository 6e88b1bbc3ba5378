"""Proxy headers: the trust set, X-Forwarded-*, RFC 7239 Forwarded (synchronous)."""

from __future__ import annotations

import ipaddress
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_asgi import Config
from trio_asgi._config import ConfigError
from trio_asgi._protocol import _forwarded
from trio_asgi._protocol._forwarded import (
    Resolved,
    TrustedPeers,
    parse_forwarded,
    parse_node,
    resolve_proxy_headers,
)

LOCAL = TrustedPeers("127.0.0.1")
CHAIN = TrustedPeers("127.0.0.1, 10.0.0.0/8, 2001:db8::/32")


def resolve(*headers: tuple[str, str], trusted: TrustedPeers = LOCAL) -> Resolved | None:
    return resolve_proxy_headers(
        [(name.lower().encode(), value.encode("latin-1")) for name, value in headers], trusted
    )


# --- the trust set ------------------------------------------------------------------------


def test_trusted_peers_addresses_networks_star_and_unix() -> None:
    peers = TrustedPeers("127.0.0.1, 10.0.0.0/8,::1, unix:")
    assert peers.trusts_peer(("127.0.0.1", 5), unix=False)
    assert peers.trusts_peer(("10.200.3.4", 5), unix=False)
    assert peers.trusts_peer(("::1", 5), unix=False)
    assert peers.trusts_peer(("::ffff:10.1.1.1", 5), unix=False)  # v4-mapped
    assert not peers.trusts_peer(("11.0.0.1", 5), unix=False)
    assert not peers.trusts_peer(None, unix=False)
    assert peers.trusts_peer(None, unix=True)
    assert not TrustedPeers("127.0.0.1").trusts_peer(None, unix=True)
    everyone = TrustedPeers("*")
    assert everyone.trusts_peer(None, unix=True)
    assert everyone.trusts_peer(("203.0.113.9", 1), unix=False)
    assert not TrustedPeers("").trusts_peer(("127.0.0.1", 1), unix=False)


@pytest.mark.parametrize("spec", ["localhost", "10.0.0.0/33", "unix:/path", "1.2.3"])
def test_bad_allow_ips_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="forwarded_allow_ips"):
        Config(forwarded_allow_ips=spec)


def test_allow_ips_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert Config().forwarded_allow_ips == "127.0.0.1"
    assert Config().proxy_headers is True
    assert Config().proxy_protocol is False
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8,unix:")
    config = Config()
    assert config.forwarded_allow_ips == "10.0.0.0/8,unix:"
    assert config.trusted_peers.unix
    # An explicit value wins over the environment, also when it equals the default.
    assert Config(forwarded_allow_ips="127.0.0.1").forwarded_allow_ips == "127.0.0.1"
    assert config.replace(access_log=False).forwarded_allow_ips == "10.0.0.0/8,unix:"


def test_command_line_options() -> None:
    from trio_asgi._cli import all_options, build_parser, collect, make_config

    options = all_options()
    argv = ["--forwarded-allow-ips", "10.0.0.0/8,unix:", "--no-proxy-headers", "--proxy-protocol"]
    config = make_config(collect(build_parser(options), options, argv, {}))
    assert config.forwarded_allow_ips == "10.0.0.0/8,unix:"
    assert (config.proxy_headers, config.proxy_protocol) == (False, True)
    environ = {"TRIO_ASGI_FORWARDED_ALLOW_IPS": "*", "FORWARDED_ALLOW_IPS": "10.0.0.1"}
    config = make_config(collect(build_parser(options), options, [], environ))
    assert config.forwarded_allow_ips == "*"


# --- X-Forwarded-For / -Proto -------------------------------------------------------------


def test_no_proxy_headers_is_none() -> None:
    assert resolve(("Host", "x"), ("User-Agent", "y")) is None
    assert resolve() is None


def test_x_forwarded_for_and_proto() -> None:
    got = resolve(("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"))
    assert got == Resolved(("203.0.113.7", 0), "https")


def test_walked_from_the_right_skipping_trusted_hops() -> None:
    xff = ("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.1.2.3, 127.0.0.1")
    assert resolve(xff, trusted=CHAIN) == Resolved(("203.0.113.7", 0), None)
    # Only 127.0.0.1 trusted: the hop after it is the client, trusted or not to others.
    assert resolve(xff) == Resolved(("10.1.2.3", 0), None)


def test_leftmost_only_when_every_other_hop_is_trusted() -> None:
    xff = ("X-Forwarded-For", "198.51.100.1, 10.0.0.1, 10.0.0.2")
    assert resolve(xff, trusted=CHAIN) == Resolved(("198.51.100.1", 0), None)
    # Even a trusted address on the left is the client when everything is trusted.
    assert resolve(("X-Forwarded-For", "10.0.0.9"), trusted=CHAIN) == Resolved(
        ("10.0.0.9", 0), None
    )


def test_several_fields_are_one_list() -> None:
    got = resolve(
        ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.7, 10.0.0.1"), trusted=CHAIN
    )
    assert got == Resolved(("203.0.113.7", 0), None)


def test_ipv6_and_ports_in_x_forwarded_for() -> None:
    assert resolve(("X-Forwarded-For", "2001:db9::5")) == Resolved(("2001:db9::5", 0), None)
    assert resolve(("X-Forwarded-For", "[2001:db9::5]:4711")) == Resolved(
        ("2001:db9::5", 4711), None
    )
    assert resolve(("X-Forwarded-For", "192.0.2.1:8080")) == Resolved(("192.0.2.1", 8080), None)


@pytest.mark.parametrize(
    ("proto", "scheme"),
    [("https", "https"), ("HTTP", "http"), ("wss", "https"), ("ws", "http"), ("gopher", None)],
)
def test_x_forwarded_proto_values(proto: str, scheme: str | None) -> None:
    got = resolve(("X-Forwarded-Proto", proto))
    assert got == (Resolved(None, scheme) if scheme else None)


def test_proto_list_lines_up_with_the_hops_from_the_right() -> None:
    got = resolve(
        ("X-Forwarded-For", "203.0.113.7, 10.0.0.1"),
        ("X-Forwarded-Proto", "https, http"),
        trusted=CHAIN,
    )
    assert got == Resolved(("203.0.113.7", 0), "https")
    got = resolve(
        ("X-Forwarded-For", "6.6.6.6, 203.0.113.7, 10.0.0.1"),
        ("X-Forwarded-Proto", "https, http"),
        trusted=CHAIN,
    )
    assert got == Resolved(("203.0.113.7", 0), "https")


def test_malformed_address_is_ignored_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, "trio_asgi"):
        got = resolve(("X-Forwarded-For", "not-an-ip"), ("X-Forwarded-Proto", "https"))
    assert got == Resolved(None, "https")
    assert "not an address" in caplog.text
    assert resolve(("X-Forwarded-For", "not-an-ip")) is None
    # Garbage to the left of the client is never looked at.
    assert resolve(("X-Forwarded-For", "garbage, 203.0.113.7")) == Resolved(
        ("203.0.113.7", 0), None
    )


# --- Forwarded (RFC 7239) -----------------------------------------------------------------


def test_forwarded_rfc_examples() -> None:
    assert parse_forwarded('for="_gazonk"') == [{"for": "_gazonk"}]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711"') == [
        {"for": "[2001:db8:cafe::17]:4711"}
    ]
    assert parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}
    ]
    assert parse_forwarded("for=192.0.2.43, for=198.51.100.17") == [
        {"for": "192.0.2.43"},
        {"for": "198.51.100.17"},
    ]
    assert parse_forwarded('for="a\\"b,c;d"') == [{"for": 'a"b,c;d'}]


@pytest.mark.parametrize(
    "value",
    ['for="unterminated', "for", "=x", "for=a b", "for=1;for=2", 'for="x"y', "for=[::1]", "for=é"],
)
def test_malformed_forwarded_is_refused(value: str) -> None:
    assert parse_forwarded(value) is None


def test_forwarded_gives_client_and_proto_of_the_same_hop() -> None:
    got = resolve(
        ("Forwarded", 'for=6.6.6.6;proto=http, for="[2001:db9::1]:4711";proto=https'),
        ("Forwarded", "for=10.0.0.1;proto=http"),
        trusted=CHAIN,
    )
    assert got == Resolved(("2001:db9::1", 4711), "https")


def test_forwarded_wins_over_x_forwarded() -> None:
    got = resolve(
        ("X-Forwarded-For", "198.51.100.99"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", "for=203.0.113.7"),
    )
    assert got == Resolved(("203.0.113.7", 0), None)
    # A malformed Forwarded does not fall back to the X-Forwarded fields.
    assert resolve(("X-Forwarded-For", "198.51.100.99"), ("Forwarded", 'for="x')) is None
    # An empty one is no Forwarded at all.
    got = resolve(("X-Forwarded-For", "198.51.100.99"), ("Forwarded", " , "))
    assert got == Resolved(("198.51.100.99", 0), None)


def test_forwarded_unknown_and_obfuscated_keep_the_peer_but_give_proto() -> None:
    assert resolve(("Forwarded", "for=unknown;proto=https")) == Resolved(None, "https")
    assert resolve(("Forwarded", 'for="_hidden"')) is None
    assert resolve(("Forwarded", 'for="192.0.2.1:_port"')) == Resolved(("192.0.2.1", 0), None)


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ("192.0.2.1", ("192.0.2.1", 0)),
        ("192.0.2.1:80", ("192.0.2.1", 80)),
        ("[::1]:80", ("::1", 80)),
        ("[::1]", ("::1", 0)),
        ("::1", ("::1", 0)),
        ("[192.0.2.1]", None),
        ("192.0.2.1:99999", None),
        ("192.0.2.1:8²", None),
        ("unknown", None),
        ("", None),
    ],
)
def test_parse_node(text: str, node: tuple[str, int] | None) -> None:
    assert parse_node(text) == node


# --- properties ---------------------------------------------------------------------------

_VALUES = st.text(alphabet=st.characters(max_codepoint=255), max_size=80)
_NAMES = st.sampled_from(["forwarded", "x-forwarded-for", "x-forwarded-proto", "host"])


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=5), st.sampled_from([LOCAL, CHAIN]))
def test_any_header_values_never_raise(
    headers: list[tuple[str, str]], trusted: TrustedPeers
) -> None:
    got = resolve(*headers, trusted=trusted)
    if got is not None:
        assert got.scheme in (None, "http", "https")
        assert got.client is None or 0 <= got.client[1] <= 65535


_PUBLIC = st.ip_addresses(v=4).filter(lambda a: not CHAIN.trusts_address(str(a)))
_PROXIES = st.ip_addresses(network="10.0.0.0/8")


@given(st.lists(_PUBLIC, min_size=1, max_size=3), st.lists(_PROXIES, max_size=3), _PUBLIC)
def test_a_spoofed_left_entry_never_wins(
    spoofed: list[object], proxies: list[object], client: object
) -> None:
    chain = ", ".join(str(a) for a in [*spoofed, client, *proxies])
    assert resolve(("X-Forwarded-For", chain), trusted=CHAIN) == Resolved((str(client), 0), None)


def _reference_parse_node(text: str) -> tuple[str, int] | None:
    """parse_node's meaning, with ipaddress for every address (the fast path must agree)."""
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if text.startswith("[") and address.version != 6:
        return None
    if port_text.isascii() and port_text.isdigit() and len(port_text) <= 5:
        port = int(port_text)
        if port <= 65535:
            return str(address), port
    if port_text and not port_text.startswith("_"):
        return None
    return str(address), 0


_NODE_PARTS = st.sampled_from(
    [
        "0",
        "00",
        "01",
        "1",
        "9",
        "10",
        "99",
        "100",
        "199",
        "200",
        "249",
        "250",
        "255",
        "256",
        "300",
        "999",
        "1000",
        ".",
        ".",
        ".",
        ":",
        "[",
        "]",
        "_x",
        "a",
        "f",
        "²",
        "٣",
        " ",
        "80",
    ]
)


@given(st.lists(_NODE_PARTS, max_size=12).map("".join))
def test_parse_node_agrees_with_ipaddress(text: str) -> None:
    assert parse_node(text) == _reference_parse_node(text)


@given(st.ip_addresses(v=4), st.one_of(st.none(), st.integers(0, 65535)))
def test_parse_node_on_any_ipv4_node(address: object, port: int | None) -> None:
    text = str(address) if port is None else f"{address}:{port}"
    assert parse_node(text) == _reference_parse_node(text) == (str(address), port or 0)


def test_an_ipv4_hop_from_nginx_is_resolved_without_ipaddress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Behind nginx every request from the trusted peer carries an X-Forwarded-For with
    # one IPv4 address: the per-request path must not pay for ipaddress's parse and
    # format (several microseconds, more than the rest of the header check together).
    def refuse(text: object) -> None:
        raise AssertionError(f"ipaddress.ip_address({text!r}) on the hot path")

    monkeypatch.setattr(_forwarded.ipaddress, "ip_address", refuse)
    got = resolve(("X-Forwarded-For", "6.6.6.6, 203.0.113.7"), ("X-Forwarded-Proto", "https"))
    assert got == Resolved(("203.0.113.7", 0), "https")
    got = resolve(("X-Forwarded-For", "203.0.113.7:4242, 127.0.0.1"))
    assert got == Resolved(("203.0.113.7", 4242), None)
