"""The DNS queries of server location (`telportal.net.locate`), asked with dnspython.

    dns = DnsResolver()                              # the nameservers of /etc/resolv.conf
    dns = DnsResolver(["192.0.2.53", "[2001:db8::53]:5353"], timeout=1.0)
    targets = await locate(dns, "carrier.example", None, None)

Answers are cached for their TTL, so the lookups of every call to the same carrier cost
one query per record until it expires. Names are asked as written, always absolute:
no search domains, since a SIP host is a fully qualified name.
"""

import asyncio
import urllib.parse
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdata
import dns.rdatatype
import dns.resolver
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from telportal.net.address import bare_host, ip_literal
from telportal.net.locate import DnsError, Naptr, Srv

_DNS_PORT = 53


class DnsResolver:
    """`locate.DnsLookup` over UDP (TCP when an answer is truncated), with a TTL cache.

    nameservers are "host" or "host:port" ("[::1]:5353" for IPv6), host an IP address;
    none means those of /etc/resolv.conf. timeout bounds each query, its retries and
    every nameserver included.
    """

    def __init__(self, nameservers: Sequence[str] = (), *, timeout: float = 2.0) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [_nameserver(entry) for entry in nameservers]
        else:
            try:
                resolver = dns.asyncresolver.Resolver()
            except dns.exception.DNSException as exc:
                raise DnsError(f"no nameservers to ask: {exc}") from exc
        resolver.lifetime = timeout
        # Half the time for one attempt: a lost datagram is sent again, or the next
        # nameserver is asked, before the time runs out.
        resolver.timeout = timeout / 2
        resolver.cache = dns.resolver.Cache()
        self._resolver = resolver
        self._timeout = timeout

    async def naptr(self, name: str) -> list[Naptr]:
        answer = await self._ask(name, dns.rdatatype.NAPTR)
        return [
            Naptr(
                rdata.order,
                rdata.preference,
                rdata.flags.decode("ascii", "replace"),
                rdata.service.decode("ascii", "replace"),
                _text(rdata.replacement),
            )
            for rdata in answer
            if isinstance(rdata, NAPTR)
        ]

    async def srv(self, name: str) -> list[Srv]:
        answer = await self._ask(name, dns.rdatatype.SRV)
        return [
            Srv(rdata.priority, rdata.weight, rdata.port, _text(rdata.target))
            for rdata in answer
            if isinstance(rdata, SRV)
        ]

    async def addresses(self, name: str) -> list[str]:
        # Both at once, each bounded by the timeout; both are awaited before an error
        # is raised, so neither is left running. One that fails while the other
        # answers leaves what the other gave.
        answers = await asyncio.gather(
            self._ask(name, dns.rdatatype.A),
            self._ask(name, dns.rdatatype.AAAA),
            return_exceptions=True,
        )
        found: list[str] = []
        failures: list[BaseException] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                failures.append(answer)
            else:
                found.extend(rdata.address for rdata in answer if isinstance(rdata, A | AAAA))
        # Some resolvers and middleboxes still fail AAAA queries: the A records that
        # came are enough. Only when nothing came is the failure the answer.
        if failures and (not found or not all(isinstance(f, DnsError) for f in failures)):
            raise failures[0]
        return found

    async def _ask(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[dns.rdata.Rdata]:
        """The records of one type at name; [] when there are none."""
        kind = dns.rdatatype.to_text(rdtype)
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException:
            return []  # a name DNS cannot hold has no records
        try:
            answer = await self._resolver.resolve(qname, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as exc:
            raise DnsError(
                f"DNS {kind} query for {name} got no answer within {self._timeout} s"
            ) from exc
        except dns.exception.DNSException as exc:
            raise DnsError(f"DNS {kind} query for {name} failed: {exc}") from exc
        return list(answer)


def nameserver_address(entry: str) -> tuple[str, int]:
    """(IP address, port) from "host", "host:port" or "[v6]:port"; ValueError naming
    the entry otherwise (the configuration's check uses this too)."""
    if ip_literal(entry) is not None:  # "192.0.2.53", "2001:db8::53", "[2001:db8::53]"
        return bare_host(entry), _DNS_PORT
    try:
        parts = urllib.parse.urlsplit(f"//{entry}")
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is no number, or out of range
        host = port = None
    if host is None or port is None or ip_literal(host) is None:
        raise ValueError(f"nameserver {entry!r} is not an IP address with an optional port")
    return host, port


def _nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    return dns.nameserver.Do53Nameserver(*nameserver_address(entry))


def _text(name: dns.name.Name) -> str:
    """A name without its final dot; the root stays "." (an SRV target "." means no
    service, RFC 2782)."""
    return name.to_text(omit_final_dot=True)
