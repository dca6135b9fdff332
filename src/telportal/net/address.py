"""Who a message came from and where one goes: transport kinds, peers and sources.

A `Peer` is an address to send to. A `Source` is where a received message came from: the
remote address plus the id of the channel it arrived on. For a connection-oriented
transport the channel is the connection, so a `Source` kept from a REGISTER lets a later
request reach a phone behind NAT over the connection the phone opened (RFC 5626 flows).
For UDP the channel is the listening socket, so replies leave from the address the
request reached, which is what NATs and RFC 3581 clients expect.
"""

import functools
import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from telportal.text_cache import MAX_CACHED_TEXT, short_text_cache


class Transport(StrEnum):
    """The transports of RFC 3261 18 and RFC 7118, named as in the `transport` URI param."""

    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"
    WS = "ws"
    WSS = "wss"

    # str's own hash, in C, agreeing with str equality (Enum's runs Python code, and
    # transports key the per-packet counters and the connection table).
    __hash__ = str.__hash__

    @property
    def reliable(self) -> bool:
        """Connection-oriented: no retransmissions, responses return on the connection."""
        return self is not Transport.UDP

    @property
    def secure(self) -> bool:
        return self in (Transport.TLS, Transport.WSS)

    @property
    def websocket(self) -> bool:
        return self in (Transport.WS, Transport.WSS)

    @property
    def via_token(self) -> str:
        """The transport as written in a Via sent-protocol ("SIP/2.0/TCP")."""
        return _VIA_TOKENS[self]  # an enum's `value` is Python code: once per request sent

    @property
    def default_port(self) -> int:
        return _DEFAULT_PORTS[self]

    @classmethod
    def from_via(cls, token: str) -> "Transport":
        """The transport a Via names; ValueError for ones not served here (SCTP)."""
        try:
            return cls(token.lower())
        except ValueError:
            raise ValueError(f"transport {token!r} is not supported") from None


# RFC 3261 19.1.2 (5060, 5061 for TLS); RFC 7118 uses the HTTP ports.
_VIA_TOKENS: Final = {transport: transport.upper() for transport in Transport}
_DEFAULT_PORTS: Final = {
    Transport.UDP: 5060,
    Transport.TCP: 5060,
    Transport.TLS: 5061,
    Transport.WS: 80,
    Transport.WSS: 443,
}


@dataclass(frozen=True, slots=True)
class Peer:
    """An address to send to; host is an IP literal (IPv6 without brackets) or a name."""

    transport: Transport
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{_bracketed(self.host)}:{self.port}"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from: remote address and the channel it arrived on."""

    transport: Transport
    host: str
    port: int
    connection_id: int

    @property
    def peer(self) -> Peer:
        return Peer(self.transport, self.host, self.port)

    def __str__(self) -> str:
        return f"{self.transport}:{_bracketed(self.host)}:{self.port}#{self.connection_id}"


def bare_host(host: str) -> str:
    """A host without the brackets an IPv6 reference carries in SIP ("[::1]" -> "::1")."""
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


@short_text_cache(4096)
def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address host spells, or None for a domain name.

    Cached: every datagram in and out asks about the same few hosts, and the ipaddress
    parser costs several microseconds a call.
    """
    try:
        return ipaddress.ip_address(bare_host(host).partition("%")[0])
    except ValueError:
        return None


def same_host(sip_host: str, socket_host: str) -> bool:
    """Whether a host from a SIP header names the socket address a packet came from.

    Addresses compare as addresses ("::0001" is "::1", and a dual-stack socket's
    "::ffff:192.0.2.1" is 192.0.2.1); a domain name never matches, so a request whose Via
    says `pc33.example.com` gets `received` (RFC 3261 18.2.1).
    """
    if len(sip_host) > MAX_CACHED_TEXT:  # see telportal/text_cache.py
        return _same_host(sip_host, socket_host)
    return _cached_same_host(sip_host, socket_host)


@functools.lru_cache(maxsize=4096)
def _cached_same_host(sip_host: str, socket_host: str) -> bool:
    return _same_host(sip_host, socket_host)


def _same_host(sip_host: str, socket_host: str) -> bool:
    written = ip_literal(sip_host)
    seen = ip_literal(socket_host)
    if isinstance(seen, ipaddress.IPv6Address) and seen.ipv4_mapped is not None:
        seen = seen.ipv4_mapped
    return written is not None and written == seen


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
