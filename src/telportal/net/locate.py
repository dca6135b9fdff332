"""Where to send a request for a SIP or SIPS URI: RFC 3263 server location.

    targets = await locate(DnsResolver(), "carrier.example", None, None)
    # [Target(TCP, "192.0.2.1", 5070), Target(TCP, "2001:db8::1", 5070), ...]

The rules of RFC 3263 section 4, for the URI's host, port and transport parameter:

- an IP address is the target itself; no DNS;
- a name with a port: its A and AAAA records;
- a name with a transport but no port: the SRV records of that transport;
- a name with neither: its NAPTR records pick the transports and the SRV names.
  Without usable NAPTR records, the SRV records of each supported transport are asked
  for, and those that exist are used, TLS first, then TCP, then UDP: RFC 3263 4.1 lets
  the client use any transport the server has SRV records for, and the connection
  oriented ones carry messages of any size (RFC 3261 18.1.1), TLS securely;
- where no SRV record exists, the host's A and AAAA records at the transport's
  default port (UDP, or TLS for a SIPS URI, when nothing chose a transport).

The result is every address in the order RFC 3263 4.3 says to try them when one fails:
NAPTR order, then SRV priority and weight (RFC 2782), then A before AAAA.

NAPTR records, SRV records and fallback SRV probes are alternatives: when the lookup
behind one fails (`DnsError`) and another gives targets, the failed one is left out,
as a server that does not answer would be on failover. When none gives a target and one
failed, that error is raised: "no records" could not be concluded, so the A/AAAA
fallback would be a guess. A failed lookup with no alternative (the NAPTR query, the SRV
query for a given transport, the A/AAAA query) is raised as is.

Both errors are `NoRoute`: callers that handle an unreachable destination handle these.
`DnsError` says DNS did not answer (try later); a plain `NoRoute` says it answered that
there is no SIP server.

No IO here but the awaited `DnsLookup`; `telportal.net.dns.DnsResolver` is the real one.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from telportal.net.address import Transport, bare_host, ip_literal
from telportal.net.errors import NoRoute


class DnsError(NoRoute):
    """A DNS lookup failed (timeout, SERVFAIL, no nameserver answered)."""


@dataclass(frozen=True, slots=True)
class Naptr:
    """A NAPTR record (RFC 3403); replacement without its final dot."""

    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True, slots=True)
class Srv:
    """An SRV record (RFC 2782); target without its final dot, or "." for "no service"."""

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Target:
    """An address to try: host is an IP address (IPv6 without brackets). name is the
    DNS name it was found under (an SRV target, or the URI's host): over TLS the
    connection is made to that name, so that the certificate is checked against it."""

    transport: Transport
    host: str
    port: int
    name: str = field(default="", compare=False)


class DnsLookup(Protocol):
    """The DNS queries server location needs. An empty list means no such records
    (NXDOMAIN or no data); a lookup that could not be answered raises DnsError."""

    async def naptr(self, name: str) -> list[Naptr]: ...

    async def srv(self, name: str) -> list[Srv]: ...

    async def addresses(self, name: str) -> list[str]:
        """The A records, then the AAAA records."""
        ...


# RFC 3263 4.1 and the IANA registry it created; transports with no entry (WebSocket)
# have no NAPTR service and no SRV convention.
NAPTR_SERVICES: Final = {
    "SIP+D2U": Transport.UDP,
    "SIP+D2T": Transport.TCP,
    "SIPS+D2T": Transport.TLS,
}
# RFC 3263 4.2: TLS is asked for as "_sips" even for a SIP URI.
SRV_PREFIXES: Final = {
    Transport.UDP: "_sip._udp.",
    Transport.TCP: "_sip._tcp.",
    Transport.TLS: "_sips._tcp.",
}
# Fallback SRV probes, most preferred first (see the module docstring).
_PROBE_ORDER: Final = (Transport.TLS, Transport.TCP, Transport.UDP)
_DEFAULT_SUPPORTED: Final = (Transport.UDP, Transport.TCP, Transport.TLS)
_NO_SERVICE: Final = "."


def order_srv(records: Sequence[Srv], random: Callable[[], float]) -> list[Srv]:
    """Records in the order to try them (RFC 2782 "Usage rules"): by priority, and
    within one priority by weighted random choice; [] for the "." record that says
    the service is decidedly not available at this domain.

    random() returns a float in [0, 1), as random.random does.
    """
    if len(records) == 1 and records[0].target == _NO_SERVICE:
        return []
    ordered: list[Srv] = []
    for priority in sorted({record.priority for record in records}):
        # Weight 0 first: then they are chosen only when the random number is 0,
        # the small chance RFC 2782 wants them to have.
        left = sorted(
            (record for record in records if record.priority == priority),
            key=lambda record: record.weight != 0,
        )
        while left:
            threshold = random() * sum(record.weight for record in left)
            running = 0
            for index, record in enumerate(left):
                running += record.weight
                if running >= threshold:
                    ordered.append(left.pop(index))
                    break
            else:  # only when random() breaks its promise of < 1
                ordered.append(left.pop())
    return ordered


async def locate(
    dns: DnsLookup,
    host: str,
    port: int | None,
    transport: Transport | None,
    *,
    secure: bool = False,
    supported: Collection[Transport] = _DEFAULT_SUPPORTED,
    random: Callable[[], float] = random.random,
    limit: int = 16,
) -> list[Target]:
    """The addresses to send a request for a URI to, in the order to try them.

    host, port and transport are the URI's (transport from its `transport` parameter);
    secure is True for a SIPS URI. supported narrows the transports DNS may choose; a
    transport the URI names is used as named. Raises NoRoute naming host when there is
    no address, DnsError (a NoRoute) when DNS could not answer.
    """
    if transport is not None and secure:
        transport = _secured(transport, host)
    literal = ip_literal(host)
    if literal is not None:
        chosen = transport or (Transport.TLS if secure else Transport.UDP)
        address = bare_host(host)
        return [Target(chosen, address, chosen.default_port if port is None else port, address)]

    search = _Search(dns, host, random)
    if port is not None:
        chosen = transport or (Transport.TLS if secure else Transport.UDP)
        targets = await search.addresses(chosen, port)
        missing = "no A/AAAA records"
    elif transport is not None:
        targets = await search.srv(transport)
        missing = "no SRV or A/AAAA records"
    else:
        targets, missing = await search.any_transport(secure, supported)
    unique = list(dict.fromkeys(targets))[:limit]
    if not unique:
        raise NoRoute(f"no SIP server found for {host}: {missing}")
    return unique


def _secured(transport: Transport, host: str) -> Transport:
    """The transport of a SIPS URI: its `transport=tcp` means TLS (RFC 3261 26.2.2),
    and `transport=ws` means secure WebSocket (RFC 7118 5.2)."""
    if transport is Transport.UDP:
        raise NoRoute(f"no SIP server found for {host}: a SIPS URI cannot use UDP")
    if transport is Transport.TCP:
        return Transport.TLS
    if transport is Transport.WS:
        return Transport.WSS
    return transport


@dataclass(frozen=True, slots=True)
class _Search:
    """The lookups of one `locate` call, which share its DNS, host and random."""

    dns: DnsLookup
    host: str
    random: Callable[[], float]

    async def any_transport(
        self, secure: bool, supported: Collection[Transport]
    ) -> tuple[list[Target], str]:
        """Targets over whatever transports DNS offers (RFC 3263 4.1), and what was
        missing should there be none."""
        wanted = [
            transport
            for transport in _PROBE_ORDER
            if transport in supported and (transport is Transport.TLS or not secure)
        ]
        records = sorted(
            (record for record in await self.dns.naptr(self.host) if _usable(record, wanted)),
            key=lambda record: (record.order, record.preference),
        )
        if records:
            targets = await _alternatives(
                self.srv(NAPTR_SERVICES[record.service.upper()], record.replacement)
                for record in records
            )
            return targets, "its NAPTR records lead to no SRV or A/AAAA records"
        return await self._probe(wanted, secure), "no NAPTR, SRV or A/AAAA records"

    async def _probe(self, transports: Sequence[Transport], secure: bool) -> list[Target]:
        """No usable NAPTR record: the SRV records of each transport, else A/AAAA."""
        answers = await asyncio.gather(
            *(self.dns.srv(SRV_PREFIXES[transport] + self.host) for transport in transports),
            return_exceptions=True,
        )
        found: list[tuple[Transport, list[Srv]]] = []
        failure: DnsError | None = None
        for transport, answer in zip(transports, answers, strict=True):
            if isinstance(answer, DnsError):
                failure = failure or answer
            elif isinstance(answer, BaseException):
                raise answer
            elif answer:
                found.append((transport, answer))
        if found:
            return await _alternatives(
                self._srv_targets(transport, records) for transport, records in found
            )
        if failure is not None:
            raise failure
        # RFC 3263 4.1: UDP for a SIP URI (TCP where UDP is not supported), TLS for SIPS.
        choices = (Transport.TLS,) if secure else (Transport.UDP, Transport.TCP)
        for transport in choices:
            if transport in transports:
                return await self.addresses(transport, transport.default_port)
        return []

    async def srv(self, transport: Transport, name: str | None = None) -> list[Target]:
        """Targets from the SRV records at name (by default the transport's SRV name for
        the host), or the host's A/AAAA at the default port when there are none
        (RFC 3263 4.2)."""
        prefix = SRV_PREFIXES.get(transport)
        if prefix is None:  # WebSocket: no SRV convention
            return await self.addresses(transport, transport.default_port)
        records = await self.dns.srv(name or prefix + self.host)
        if not records:
            return await self.addresses(transport, transport.default_port)
        return await self._srv_targets(transport, records)

    async def _srv_targets(self, transport: Transport, records: Sequence[Srv]) -> list[Target]:
        ordered = order_srv(records, self.random)
        return await _alternatives(self._srv_record(transport, record) for record in ordered)

    async def _srv_record(self, transport: Transport, record: Srv) -> list[Target]:
        addresses = await self.dns.addresses(record.target)
        return [Target(transport, address, record.port, record.target) for address in addresses]

    async def addresses(self, transport: Transport, port: int) -> list[Target]:
        addresses = await self.dns.addresses(self.host)
        return [Target(transport, address, port, self.host) for address in addresses]


def _usable(record: Naptr, transports: Collection[Transport]) -> bool:
    """A NAPTR record that leads to an SRV record for a transport wanted here."""
    chosen = NAPTR_SERVICES.get(record.service.upper())
    return (
        record.flags.lower() == "s"
        and chosen in transports
        and record.replacement not in ("", _NO_SERVICE)
    )


async def _alternatives(lookups: Iterable[Awaitable[list[Target]]]) -> list[Target]:
    """The targets of independent lookups, run together and joined in order; see the
    module docstring for what a failed one does."""
    results = await asyncio.gather(*lookups, return_exceptions=True)
    found: list[Target] = []
    failure: DnsError | None = None
    for result in results:
        if isinstance(result, DnsError):
            failure = failure or result
        elif isinstance(result, BaseException):
            raise result
        else:
            found.extend(result)
    if not found and failure is not None:
        raise failure
    return found
