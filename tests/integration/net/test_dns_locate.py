"""Server location (RFC 3263) through DnsResolver, against a real DNS server (dnsmasq)."""

import asyncio
import re
import socket

import dns.rdata
import dns.rdatatype
import pytest

from telportal.net import NoRoute, Transport
from telportal.net.dns import DnsResolver
from telportal.net.locate import DnsError, Naptr, Srv, Target, locate
from tests.dnsmasq import dnsmasq
from tests.integration.net.conftest import HOST, within
from tests.ports import free_port

UDP, TCP, TLS = Transport.UDP, Transport.TCP, Transport.TLS

RECORDS = (
    "--host-record=sip1.example.test,192.0.2.1,2001:db8::1",
    "--host-record=sip2.example.test,192.0.2.2,2001:db8::2",
    "--host-record=pbx.example.test,192.0.2.9",
    # A carrier: NAPTR prefers TCP (order 10) to UDP (order 20), listed the other way.
    "--naptr-record=carrier.example.test,20,10,S,SIP+D2U,,_sip._udp.carrier.example.test",
    "--naptr-record=carrier.example.test,10,10,S,SIP+D2T,,_sip._tcp.carrier.example.test",
    "--srv-host=_sip._tcp.carrier.example.test,sip2.example.test,5070,20,0",
    "--srv-host=_sip._tcp.carrier.example.test,sip1.example.test,5070,10,0",
    "--srv-host=_sip._udp.carrier.example.test,sip1.example.test,5060,10,0",
    # A trunk with SRV records only, at two priorities.
    "--srv-host=_sip._udp.trunk.example.test,sip2.example.test,5062,20,0",
    "--srv-host=_sip._udp.trunk.example.test,sip1.example.test,5061,10,0",
    # No target: "decidedly not available" (RFC 2782), a "." target on the wire.
    "--srv-host=_sip._tcp.closed.example.test",
)

CARRIER_TARGETS = [
    Target(TCP, "192.0.2.1", 5070),
    Target(TCP, "2001:db8::1", 5070),
    Target(TCP, "192.0.2.2", 5070),
    Target(TCP, "2001:db8::2", 5070),
    Target(UDP, "192.0.2.1", 5060),
    Target(UDP, "2001:db8::1", 5060),
]


async def test_the_resolver_reads_records_without_final_dots() -> None:
    async with dnsmasq(*RECORDS) as server:
        resolver = DnsResolver([server.nameserver])
        naptrs = await within(resolver.naptr("carrier.example.test"))
        assert sorted(naptrs, key=lambda record: record.order) == [
            Naptr(10, 10, "S", "SIP+D2T", "_sip._tcp.carrier.example.test"),
            Naptr(20, 10, "S", "SIP+D2U", "_sip._udp.carrier.example.test"),
        ]
        assert await within(resolver.srv("_sip._udp.carrier.example.test")) == [
            Srv(10, 0, 5060, "sip1.example.test")
        ]
        assert await within(resolver.addresses("sip1.example.test")) == [
            "192.0.2.1",
            "2001:db8::1",
        ]
        assert await within(resolver.addresses("pbx.example.test")) == ["192.0.2.9"]
        closed = await within(resolver.srv("_sip._tcp.closed.example.test"))
        assert [record.target for record in closed] == ["."]
        assert await within(resolver.naptr("nowhere.example.test")) == []
        assert await within(resolver.addresses("nowhere.example.test")) == []


async def test_a_carrier_is_reached_through_naptr_srv_and_addresses() -> None:
    async with dnsmasq(*RECORDS) as server:
        resolver = DnsResolver([server.nameserver])
        targets = await within(locate(resolver, "carrier.example.test", None, None))
    assert targets == CARRIER_TARGETS


async def test_srv_records_alone_give_targets_in_priority_order() -> None:
    async with dnsmasq(*RECORDS) as server:
        resolver = DnsResolver([server.nameserver])
        found = await within(locate(resolver, "trunk.example.test", None, None))
        given = await within(locate(resolver, "trunk.example.test", None, UDP))
    expected = [
        Target(UDP, "192.0.2.1", 5061),
        Target(UDP, "2001:db8::1", 5061),
        Target(UDP, "192.0.2.2", 5062),
        Target(UDP, "2001:db8::2", 5062),
    ]
    assert found == expected
    assert given == expected


async def test_a_name_with_only_an_address_is_reached_at_the_default_port() -> None:
    async with dnsmasq(*RECORDS) as server:
        resolver = DnsResolver([server.nameserver])
        plain = await within(locate(resolver, "pbx.example.test", None, None))
        secure = await within(locate(resolver, "pbx.example.test", None, None, secure=True))
    assert plain == [Target(UDP, "192.0.2.9", 5060)]
    assert secure == [Target(TLS, "192.0.2.9", 5061)]


async def test_an_unknown_name_or_a_closed_service_is_no_route() -> None:
    async with dnsmasq(*RECORDS) as server:
        resolver = DnsResolver([server.nameserver])
        with pytest.raises(NoRoute) as unknown:
            await within(locate(resolver, "nowhere.example.test", None, None))
        with pytest.raises(NoRoute, match=re.escape("closed.example.test")) as closed:
            await within(locate(resolver, "closed.example.test", None, TCP))
    assert str(unknown.value) == (
        "no SIP server found for nowhere.example.test: no NAPTR, SRV or A/AAAA records"
    )
    assert not isinstance(unknown.value, DnsError)
    assert not isinstance(closed.value, DnsError)


async def test_answers_are_cached_for_their_ttl() -> None:
    async with dnsmasq(*RECORDS, ttl=300) as server:
        resolver = DnsResolver([server.nameserver])
        assert await within(locate(resolver, "carrier.example.test", None, None)) == (
            CARRIER_TARGETS
        )
    # The server is gone: every answer comes from the cache.
    assert await within(locate(resolver, "carrier.example.test", None, None)) == (CARRIER_TARGETS)


async def test_answers_with_a_zero_ttl_are_not_cached() -> None:
    async with dnsmasq(*RECORDS, ttl=0) as server:
        resolver = DnsResolver([server.nameserver], timeout=0.3)
        assert await within(resolver.addresses("sip1.example.test")) == [
            "192.0.2.1",
            "2001:db8::1",
        ]
    with pytest.raises(DnsError, match=re.escape("sip1.example.test")):
        await within(resolver.addresses("sip1.example.test"))


async def test_a_port_nobody_listens_on_is_a_dns_error() -> None:
    resolver = DnsResolver([f"{HOST}:{free_port()}"], timeout=0.3)
    with pytest.raises(DnsError, match=re.escape("SRV query for _sip._udp.carrier.example.test")):
        await within(resolver.srv("_sip._udp.carrier.example.test"), 5.0)
    with pytest.raises(DnsError, match=re.escape("carrier.example.test")):
        await within(locate(resolver, "carrier.example.test", None, None), 5.0)


async def test_a_nameserver_that_never_answers_times_out_as_a_dns_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))  # bound, so no ICMP refusal: queries just go unanswered
        port = silent.getsockname()[1]
        resolver = DnsResolver([f"{HOST}:{port}"], timeout=0.5)
        with pytest.raises(DnsError) as raised:
            await within(resolver.addresses("sip1.example.test"), 5.0)
    assert str(raised.value) == "DNS A query for sip1.example.test got no answer within 0.5 s"


def test_a_nameserver_must_be_an_ip_address() -> None:
    assert DnsResolver(["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:5353", "::1"])
    with pytest.raises(ValueError, match=re.escape("'dns.example' is not an IP address")):
        DnsResolver(["dns.example"])
    with pytest.raises(ValueError, match="is not an IP address"):
        DnsResolver(["192.0.2.53:99999"])


async def test_timeouts_do_not_leave_queries_running() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        resolver = DnsResolver([f"{HOST}:{silent.getsockname()[1]}"], timeout=0.3)
        with pytest.raises(DnsError):
            await within(resolver.addresses("sip1.example.test"), 5.0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


class _NoAaaa(DnsResolver):
    """A resolver behind a middlebox that drops AAAA queries."""

    async def _ask(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[dns.rdata.Rdata]:
        if rdtype == dns.rdatatype.AAAA:
            raise DnsError(f"DNS AAAA query for {name} got no answer within 0.3 s")
        return await super()._ask(name, rdtype)


async def test_the_a_records_stand_when_the_aaaa_query_fails() -> None:
    async with dnsmasq(*RECORDS) as server:
        resolver = _NoAaaa([server.nameserver], timeout=0.3)
        assert await within(resolver.addresses("sip1.example.test")) == ["192.0.2.1"]
        with pytest.raises(DnsError, match="AAAA"):  # nothing at all: the failure is the answer
            await within(resolver.addresses("nothing.example.test"))
