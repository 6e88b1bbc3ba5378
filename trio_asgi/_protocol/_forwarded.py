"""Who the client really is, behind trusted proxies (no I/O).

Theory of operation. A proxy that forwards a request appends the address it received
the request from to ``X-Forwarded-For`` (or appends an element to RFC 7239
``Forwarded``). Only the entries appended by proxies we trust are true: everything to
their left was written by someone else, and the leftmost entry is whatever the client
chose to send. So the chain is walked from the right: the direct peer must be trusted
for the headers to be read at all, each entry that is itself a trusted proxy is
skipped, and the first entry that is not trusted is the client. Only when every hop is
trusted is the leftmost entry taken. ``proto`` (or ``X-Forwarded-Proto``) is taken
from the same hop as the address, since it describes the request that hop received.

When a trusted peer sends ``Forwarded``, it wins: the ``X-Forwarded-*`` fields are
ignored, since a proxy that writes ``Forwarded`` may pass a client's forged
``X-Forwarded-For`` through untouched. Malformed values change nothing (a debug
line), never an error response.

The trust set is parsed once (:class:`TrustedPeers`); per request, a connection from
an untrusted peer costs nothing, and one from a trusted peer one pass over the header
names when no proxy header is present.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger("trio_asgi")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The default of ``forwarded_allow_ips``: the proxy runs on the same host.
DEFAULT_ALLOW_IPS = "127.0.0.1"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
#: A dotted-quad IPv4 address exactly as ipaddress accepts it (ASCII digits, no leading
#: zeros), so the text is its own canonical form.
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")

_PROXY_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"})
#: ``X-Forwarded-Proto`` values we understand, as the HTTP scheme they mean.
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


class TrustedPeers:
    """The set of peers whose proxy headers (and PROXY protocol headers) are believed.

    Built once from ``forwarded_allow_ips``: comma-separated addresses, CIDR networks,
    ``*`` (everyone) and ``unix:`` (peers on a unix socket).

    Raises:
        ValueError: an entry is none of these (the message names it).
    """

    __slots__ = ("_addresses", "_networks", "everyone", "unix")

    def __init__(self, spec: str) -> None:
        self.everyone: bool = False
        self.unix: bool = False
        addresses: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (part.strip() for part in spec.split(",")):
            if not entry:
                continue
            if entry == "*":
                self.everyone = True
            elif entry == "unix:":
                self.unix = True
            else:
                try:
                    network = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{entry!r} is not an address, a network, '*' or 'unix:'"
                    ) from None
                if network.num_addresses == 1:
                    addresses.add(str(network.network_address))
                else:
                    networks.append(network)
        #: Single addresses in their canonical text form: a set lookup, no parsing.
        self._addresses = frozenset(addresses)
        self._networks = tuple(networks)

    def __repr__(self) -> str:
        return f"TrustedPeers(everyone={self.everyone}, unix={self.unix}, ...)"

    def trusts_peer(self, client: tuple[str, int] | None, *, unix: bool) -> bool:
        """Whether the direct peer of a connection is trusted (once per connection)."""
        if self.everyone:
            return True
        if unix:
            return self.unix
        return client is not None and self.trusts_address(client[0])

    def trusts_address(self, host: str) -> bool:
        """Whether ``host`` (an address as text) is a trusted proxy."""
        if self.everyone or host in self._addresses:
            return True
        if not self._networks and ":" not in host:
            return False  # an IPv4 address not in the set: nothing else can match
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if str(address) in self._addresses:
            return True
        return any(address in network for network in self._networks)


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the proxy headers say: the client's address and the scheme it used."""

    client: tuple[str, int] | None
    #: ``"http"`` or ``"https"``; None when no hop said.
    scheme: str | None


def resolve_proxy_headers(
    headers: Sequence[tuple[bytes, bytes]], trusted: TrustedPeers
) -> Resolved | None:
    """The client and scheme that the headers of a trusted peer's request name.

    Call it only for a trusted direct peer. Returns None when there is no proxy
    header, or nothing usable in them (the connection's own values then stand).
    """
    found: dict[bytes, bytes] | None = None
    for name, value in headers:  # one pass; no proxy header is the common case
        if name in _PROXY_HEADERS:
            if found is None:
                found = {}
            earlier = found.get(name)
            # Several fields of one name are one list (RFC 9110).
            found[name] = value if earlier is None else earlier + b"," + value
    if found is None:
        return None
    forwarded = _text(found.get(b"forwarded"))
    if forwarded is not None and forwarded.strip(" \t,"):
        return _from_forwarded(forwarded, trusted)
    return _from_x_forwarded(
        _text(found.get(b"x-forwarded-for")), _text(found.get(b"x-forwarded-proto")), trusted
    )


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _from_x_forwarded(
    for_: str | None, proto: str | None, trusted: TrustedPeers
) -> Resolved | None:
    hops = [hop.strip() for hop in for_.split(",")] if for_ else []
    protos = [p.strip().lower() for p in proto.split(",")] if proto else []
    if not hops:
        # A trusted proxy that says only how it was reached.
        scheme = _scheme(protos[-1]) if protos else None
        return Resolved(None, scheme) if scheme else None
    index, client = _client_hop(hops, trusted)
    if client is None:
        logger.debug("ignoring X-Forwarded-For entry %r: not an address", hops[index][:64])
    # One value is the whole chain's (the usual "set", not "append"); a list lines up
    # with the addresses from the right.
    from_right = len(hops) - index
    if len(protos) == 1:
        scheme = _scheme(protos[0])
    elif from_right <= len(protos):
        scheme = _scheme(protos[-from_right])
    else:
        scheme = None
    if client is None and scheme is None:
        return None
    return Resolved(client, scheme)


def _client_hop(hops: Sequence[str], trusted: TrustedPeers) -> tuple[int, tuple[str, int] | None]:
    """The client in a chain: the rightmost hop that is not trusted (index, parsed node)."""
    for index in range(len(hops) - 1, 0, -1):
        node = parse_node(hops[index])
        if node is None or not trusted.trusts_address(node[0]):
            return index, node
    return 0, parse_node(hops[0])


def _scheme(value: str) -> str | None:
    scheme = _SCHEMES.get(value)
    if scheme is None:
        logger.debug("ignoring forwarded proto %r", value[:32])
    return scheme


def _from_forwarded(value: str, trusted: TrustedPeers) -> Resolved | None:
    elements = parse_forwarded(value)
    if elements is None:
        logger.debug("ignoring a malformed Forwarded header: %r", value[:200])
        return None
    hops = [element.get("for", "") for element in elements]
    if not hops:
        return None
    index, client = _client_hop(hops, trusted)
    if client is None and hops[index]:
        logger.debug("ignoring Forwarded for=%r: not an address", hops[index][:64])
    proto = elements[index].get("proto")
    scheme = _scheme(proto.lower()) if proto is not None else None
    if client is None and scheme is None:
        return None
    return Resolved(client, scheme)


def parse_node(text: str) -> tuple[str, int] | None:
    """An address with an optional port: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``.

    Returns ``(address, port)`` with port 0 when none (or an obfuscated one) is given,
    or None when ``text`` is not an address (``unknown``, ``_hidden``, garbage).
    """
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    if not text.startswith("[") and _IPV4.fullmatch(host) is not None:
        canonical = host  # the common case, on every request behind nginx: no parse
    else:
        try:
            address: IPAddress = ipaddress.ip_address(host)
        except ValueError:
            return None
        if text.startswith("[") and not isinstance(address, ipaddress.IPv6Address):
            return None  # "[1.2.3.4]" is not a node
        canonical = str(address)
    port = 0
    if (
        port_text.isascii()
        and port_text.isdigit()
        and len(port_text) <= 5
        and int(port_text) <= 65535
    ):
        port = int(port_text)
    elif port_text and not port_text.startswith("_"):
        return None
    return canonical, port


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """RFC 7239 elements, each a dict of lower-cased parameter names to unquoted values.

    Returns None when the field does not follow the grammar (the whole field is then
    not believed: a forged, broken element may hide where the next one starts).
    """
    elements: list[dict[str, str]] = []
    element: dict[str, str] = {}
    pos, end = 0, len(value)
    while True:
        while pos < end and value[pos] in " \t":
            pos += 1
        if pos < end and value[pos] not in ",;":
            name_end = pos
            while name_end < end and value[name_end] in _TOKEN:
                name_end += 1
            if name_end == pos or name_end >= end or value[name_end] != "=":
                return None
            name = value[pos:name_end].lower()
            parsed = _parameter_value(value, name_end + 1)
            if parsed is None or name in element:
                return None
            element[name], pos = parsed
            while pos < end and value[pos] in " \t":
                pos += 1
        if pos >= end or value[pos] == ",":
            if element:
                elements.append(element)
            element = {}
            if pos >= end:
                return elements
        elif value[pos] != ";":
            return None
        pos += 1


def _parameter_value(value: str, pos: int) -> tuple[str, int] | None:
    """A token or a quoted string starting at ``pos``; the text and the position after it."""
    end = len(value)
    if pos < end and value[pos] == '"':
        chars: list[str] = []
        pos += 1
        while pos < end:
            char = value[pos]
            if char == '"':
                return "".join(chars), pos + 1
            if char == "\\":
                pos += 1
                if pos >= end:
                    return None
                char = value[pos]
            chars.append(char)
            pos += 1
        return None
    start = pos
    while pos < end and value[pos] in _TOKEN:
        pos += 1
    return (value[start:pos], pos) if pos > start else None
