"""RFC 3263 server location against DNS data held in memory."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from telportal.net import NoRoute, Transport
from telportal.net.locate import DnsError, Naptr, Srv, Target, locate, order_srv

UDP, TCP, TLS, WS = Transport.UDP, Transport.TCP, Transport.TLS, Transport.WS


@dataclass
class MemoryDns:
    """A DnsLookup over dicts. Names in `failing` raise DnsError, as a timeout would."""

    naptrs: dict[str, list[Naptr]] = field(default_factory=dict)
    srvs: dict[str, list[Srv]] = field(default_factory=dict)
    hosts: dict[str, list[str]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def _check(self, kind: str, name: str) -> None:
        self.asked.append(f"{kind} {name}")
        if name in self.failing:
            raise DnsError(f"DNS {kind} query for {name} got no answer within 2.0 s")

    async def naptr(self, name: str) -> list[Naptr]:
        self._check("NAPTR", name)
        return self.naptrs.get(name, [])

    async def srv(self, name: str) -> list[Srv]:
        self._check("SRV", name)
        return self.srvs.get(name, [])

    async def addresses(self, name: str) -> list[str]:
        self._check("A/AAAA", name)
        return self.hosts.get(name, [])


def fixed(*values: float) -> Callable[[], float]:
    """A random() that returns values in turn, then the last one again."""
    queue = list(values)
    return lambda: queue.pop(0) if len(queue) > 1 else queue[0]


HOSTS = {
    "sip1.carrier.example": ["192.0.2.1", "2001:db8::1"],
    "sip2.carrier.example": ["192.0.2.2"],
    "carrier.example": ["192.0.2.9"],
}


# --- IP literals and explicit ports -------------------------------------------------


async def test_an_ipv4_literal_is_the_target_without_dns() -> None:
    dns = MemoryDns()
    assert await locate(dns, "192.0.2.7", None, None) == [Target(UDP, "192.0.2.7", 5060)]
    assert await locate(dns, "192.0.2.7", None, None, secure=True) == [
        Target(TLS, "192.0.2.7", 5061)
    ]
    assert await locate(dns, "192.0.2.7", 5080, TCP) == [Target(TCP, "192.0.2.7", 5080)]
    assert await locate(dns, "192.0.2.7", None, TLS) == [Target(TLS, "192.0.2.7", 5061)]
    assert dns.asked == []


async def test_an_ipv6_reference_loses_its_brackets() -> None:
    dns = MemoryDns()
    assert await locate(dns, "[2001:db8::7]", None, None) == [Target(UDP, "2001:db8::7", 5060)]
    assert await locate(dns, "[2001:db8::7]", 5070, TCP) == [Target(TCP, "2001:db8::7", 5070)]
    assert dns.asked == []


async def test_a_name_with_a_port_is_looked_up_as_a_and_aaaa_only() -> None:
    dns = MemoryDns(hosts=HOSTS, srvs={"_sip._udp.sip1.carrier.example": [Srv(1, 1, 9, "x")]})
    assert await locate(dns, "sip1.carrier.example", 5080, None) == [
        Target(UDP, "192.0.2.1", 5080),
        Target(UDP, "2001:db8::1", 5080),
    ]
    assert await locate(dns, "sip1.carrier.example", 5081, TCP) == [
        Target(TCP, "192.0.2.1", 5081),
        Target(TCP, "2001:db8::1", 5081),
    ]
    assert await locate(dns, "sip2.carrier.example", 5061, None, secure=True) == [
        Target(TLS, "192.0.2.2", 5061)
    ]
    assert set(dns.asked) == {"A/AAAA sip1.carrier.example", "A/AAAA sip2.carrier.example"}


async def test_a_sips_uri_secures_the_transport_it_names() -> None:
    dns = MemoryDns(hosts=HOSTS)
    assert await locate(dns, "192.0.2.7", None, TCP, secure=True) == [
        Target(TLS, "192.0.2.7", 5061)
    ]
    assert await locate(dns, "carrier.example", None, TCP, secure=True) == [
        Target(TLS, "192.0.2.9", 5061)
    ]
    assert dns.asked[0] == "SRV _sips._tcp.carrier.example"
    assert await locate(dns, "192.0.2.7", None, WS, secure=True) == [
        Target(Transport.WSS, "192.0.2.7", 443)
    ]
    with pytest.raises(NoRoute, match="SIPS URI cannot use UDP"):
        await locate(dns, "192.0.2.7", None, UDP, secure=True)


# --- RFC 2782 ordering ---------------------------------------------------------------


def test_srv_records_are_ordered_by_priority_first() -> None:
    records = [Srv(20, 0, 5060, "c"), Srv(10, 0, 5060, "a"), Srv(30, 0, 5060, "d")]
    assert [r.target for r in order_srv(records, fixed(0.5))] == ["a", "c", "d"]


def test_a_weighted_choice_follows_the_running_sum() -> None:
    light, heavy = Srv(10, 10, 5060, "light"), Srv(10, 30, 5060, "heavy")
    # 0.2 * 40 = 8: the running sum is 10 at "light", the first to reach it.
    assert order_srv([light, heavy], fixed(0.2)) == [light, heavy]
    # 0.5 * 40 = 20: "light" (10) falls short, "heavy" (40) reaches it.
    assert order_srv([light, heavy], fixed(0.5)) == [heavy, light]


def test_weighted_choice_repeats_over_what_is_left_within_each_priority() -> None:
    a, b, c = Srv(10, 1, 5060, "a"), Srv(10, 1, 5060, "b"), Srv(10, 2, 5060, "c")
    backup = Srv(20, 5, 5060, "backup")
    # 0.9 * 4 = 3.6 picks c (running sums 1, 2, 4); then 0.9 * 2 = 1.8 picks b of a, b.
    assert order_srv([a, b, c, backup], fixed(0.9, 0.9, 0.0, 0.0)) == [c, b, a, backup]


def test_weight_zero_records_come_first_for_the_choice() -> None:
    zero, five = Srv(10, 0, 5060, "zero"), Srv(10, 5, 5060, "five")
    # RFC 2782: weight 0 is placed first, so a random number of 0 selects it.
    assert order_srv([five, zero], fixed(0.0)) == [zero, five]
    assert order_srv([five, zero], fixed(0.5)) == [five, zero]


def test_a_dot_target_says_the_service_is_not_available() -> None:
    assert order_srv([Srv(0, 0, 0, ".")], fixed(0.5)) == []


async def test_a_dot_srv_record_stops_the_location_without_a_fallback() -> None:
    dns = MemoryDns(hosts=HOSTS, srvs={"_sip._tcp.carrier.example": [Srv(0, 0, 0, ".")]})
    with pytest.raises(NoRoute, match=re.escape("no SIP server found for carrier.example")):
        await locate(dns, "carrier.example", None, TCP)
    assert "A/AAAA carrier.example" not in dns.asked


# --- a transport given, no port -----------------------------------------------------


async def test_srv_records_of_the_transport_expand_to_their_addresses() -> None:
    dns = MemoryDns(
        hosts=HOSTS,
        srvs={
            "_sip._tcp.carrier.example": [
                Srv(20, 0, 5072, "sip2.carrier.example"),
                Srv(10, 0, 5070, "sip1.carrier.example"),
            ]
        },
    )
    found = await locate(dns, "carrier.example", None, TCP)
    assert found == [
        Target(TCP, "192.0.2.1", 5070),
        Target(TCP, "2001:db8::1", 5070),
        Target(TCP, "192.0.2.2", 5072),
    ]
    # The name each address came from, which a TLS connection checks the certificate of.
    assert [t.name for t in found] == [
        "sip1.carrier.example", "sip1.carrier.example", "sip2.carrier.example"
    ]  # fmt: skip


async def test_without_srv_records_the_host_is_used_at_the_default_port() -> None:
    dns = MemoryDns(hosts=HOSTS)
    assert await locate(dns, "carrier.example", None, TLS) == [Target(TLS, "192.0.2.9", 5061)]
    assert dns.asked == ["SRV _sips._tcp.carrier.example", "A/AAAA carrier.example"]


async def test_websocket_has_no_srv_convention() -> None:
    dns = MemoryDns(hosts=HOSTS)
    assert await locate(dns, "carrier.example", None, WS) == [Target(WS, "192.0.2.9", 80)]
    assert dns.asked == ["A/AAAA carrier.example"]


async def test_identical_targets_are_tried_once() -> None:
    dns = MemoryDns(
        hosts=HOSTS,
        srvs={
            "_sip._udp.carrier.example": [
                Srv(10, 0, 5060, "sip2.carrier.example"),
                Srv(20, 0, 5060, "sip2.carrier.example"),
            ]
        },
    )
    assert await locate(dns, "carrier.example", None, UDP) == [Target(UDP, "192.0.2.2", 5060)]


async def test_the_list_is_cut_at_the_limit() -> None:
    many = {"big.example": [f"192.0.2.{n}" for n in range(1, 41)]}
    dns = MemoryDns(hosts=many)
    targets = await locate(dns, "big.example", 5060, UDP)
    assert len(targets) == 16
    assert targets[-1] == Target(UDP, "192.0.2.16", 5060)
    assert await locate(dns, "big.example", 5060, UDP, limit=2) == [
        Target(UDP, "192.0.2.1", 5060),
        Target(UDP, "192.0.2.2", 5060),
    ]


# --- NAPTR ------------------------------------------------------------------------


CARRIER_SRV = {
    "_sip._udp.carrier.example": [Srv(10, 0, 5060, "sip2.carrier.example")],
    "_sip._tcp.carrier.example": [Srv(10, 0, 5070, "sip1.carrier.example")],
    "_sips._tcp.carrier.example": [Srv(10, 0, 5071, "sip2.carrier.example")],
}


async def test_naptr_records_are_tried_by_order_then_preference() -> None:
    dns = MemoryDns(
        hosts=HOSTS,
        srvs=CARRIER_SRV,
        naptrs={
            "carrier.example": [
                Naptr(20, 10, "S", "SIP+D2U", "_sip._udp.carrier.example"),
                Naptr(10, 20, "s", "SIPS+D2T", "_sips._tcp.carrier.example"),
                Naptr(10, 10, "S", "sip+d2t", "_sip._tcp.carrier.example"),
            ]
        },
    )
    assert await locate(dns, "carrier.example", None, None) == [
        Target(TCP, "192.0.2.1", 5070),
        Target(TCP, "2001:db8::1", 5070),
        Target(TLS, "192.0.2.2", 5071),
        Target(UDP, "192.0.2.2", 5060),
    ]


async def test_naptr_records_for_other_services_or_flags_are_skipped() -> None:
    dns = MemoryDns(
        hosts=HOSTS,
        srvs={**CARRIER_SRV, "_sip._sctp.carrier.example": [Srv(1, 0, 5060, "x")]},
        naptrs={
            "carrier.example": [
                Naptr(1, 0, "S", "SIP+D2S", "_sip._sctp.carrier.example"),  # SCTP
                Naptr(2, 0, "A", "SIP+D2T", "sip1.carrier.example"),  # not an SRV
                Naptr(3, 0, "S", "E2U+sip", "_sip._tcp.carrier.example"),  # ENUM
                Naptr(4, 0, "S", "SIP+D2T", "."),  # no replacement
                Naptr(5, 0, "S", "SIP+D2U", "_sip._udp.carrier.example"),
            ]
        },
    )
    assert await locate(dns, "carrier.example", None, None) == [Target(UDP, "192.0.2.2", 5060)]


async def test_naptr_records_for_unsupported_transports_are_skipped() -> None:
    dns = MemoryDns(
        hosts=HOSTS,
        srvs=CARRIER_SRV,
        naptrs={
            "carrier.example": [
                Naptr(10, 0, "S", "SIPS+D2T", "_sips._tcp.carrier.example"),
                Naptr(20, 0, "S", "SIP+D2U", "_sip._udp.carrier.example"),
            ]
        },
    )
    targets = await locate(dns, "carrier.example", None, None, supported=(UDP, TCP))
    assert targets == [Target(UDP, "192.0.2.2", 5060)]


async def test_a_sips_uri_keeps_only_sips_naptr_records() -> None:
    naptrs = {
        "carrier.example": [
            Naptr(10, 0, "S", "SIP+D2U", "_sip._udp.carrier.example"),
            Naptr(20, 0, "S", "SIPS+D2T", "_sips._tcp.carrier.example"),
        ]
    }
    dns = MemoryDns(hosts=HOSTS, srvs=CARRIER_SRV, naptrs=naptrs)
    assert await locate(dns, "carrier.example", None, None, secure=True) == [
        Target(TLS, "192.0.2.2", 5071)
    ]
    # A SIP URI keeps SIPS records too (RFC 3263 4.1), in their NAPTR order.
    assert await locate(dns, "carrier.example", None, None) == [
        Target(UDP, "192.0.2.2", 5060),
        Target(TLS, "192.0.2.2", 5071),
    ]


async def test_a_naptr_replacement_without_srv_records_falls_back_to_the_host() -> None:
    dns = MemoryDns(
        hosts=HOSTS,
        naptrs={"carrier.example": [Naptr(10, 0, "S", "SIP+D2T", "_sip._tcp.carrier.example")]},
    )
    assert await locate(dns, "carrier.example", None, None) == [Target(TCP, "192.0.2.9", 5060)]


# --- no usable NAPTR ------------------------------------------------------------------


async def test_without_naptr_the_srv_records_found_are_used_tls_then_tcp_then_udp() -> None:
    dns = MemoryDns(hosts=HOSTS, srvs=CARRIER_SRV)
    assert await locate(dns, "carrier.example", None, None) == [
        Target(TLS, "192.0.2.2", 5071),
        Target(TCP, "192.0.2.1", 5070),
        Target(TCP, "2001:db8::1", 5070),
        Target(UDP, "192.0.2.2", 5060),
    ]
    udp_only = MemoryDns(
        hosts=HOSTS, srvs={"_sip._udp.carrier.example": CARRIER_SRV["_sip._udp.carrier.example"]}
    )
    assert await locate(udp_only, "carrier.example", None, None) == [Target(UDP, "192.0.2.2", 5060)]


async def test_without_naptr_a_sips_uri_asks_only_for_sips_srv_records() -> None:
    dns = MemoryDns(hosts=HOSTS, srvs=CARRIER_SRV)
    assert await locate(dns, "carrier.example", None, None, secure=True) == [
        Target(TLS, "192.0.2.2", 5071)
    ]
    assert [q for q in dns.asked if q.startswith("SRV")] == ["SRV _sips._tcp.carrier.example"]


async def test_without_naptr_or_srv_the_host_is_used_over_udp_at_5060() -> None:
    dns = MemoryDns(hosts=HOSTS)
    assert await locate(dns, "carrier.example", None, None) == [Target(UDP, "192.0.2.9", 5060)]
    assert await locate(dns, "carrier.example", None, None, secure=True) == [
        Target(TLS, "192.0.2.9", 5061)
    ]
    assert await locate(dns, "carrier.example", None, None, supported=(TCP, TLS)) == [
        Target(TCP, "192.0.2.9", 5060)
    ]


async def test_no_records_at_all_is_an_error_naming_the_host() -> None:
    with pytest.raises(NoRoute) as raised:
        await locate(MemoryDns(), "carrier.example", None, None)
    assert str(raised.value) == (
        "no SIP server found for carrier.example: no NAPTR, SRV or A/AAAA records"
    )
    assert not isinstance(raised.value, DnsError)
    with pytest.raises(NoRoute, match=r"^no SIP server found for pbx\.example: no A/AAAA records$"):
        await locate(MemoryDns(), "pbx.example", 5060, None)
    with pytest.raises(NoRoute, match=r"pbx\.example: no SRV or A/AAAA records$"):
        await locate(MemoryDns(), "pbx.example", None, TCP)


# --- failed lookups ---------------------------------------------------------------------


def test_a_dns_error_is_a_no_route() -> None:
    assert issubclass(DnsError, NoRoute)


async def test_a_failed_lookup_without_an_alternative_is_raised() -> None:
    dns = MemoryDns(hosts=HOSTS, srvs=CARRIER_SRV, failing={"carrier.example"})
    with pytest.raises(DnsError, match=re.escape("NAPTR query for carrier.example")):
        await locate(dns, "carrier.example", None, None)
    with pytest.raises(DnsError, match=re.escape("A/AAAA query for carrier.example")):
        await locate(dns, "carrier.example", 5060, None)
    # A failed SRV query is not "no SRV records": no guess at the host's A/AAAA.
    dns = MemoryDns(hosts=HOSTS, failing={"_sip._tcp.carrier.example"})
    with pytest.raises(DnsError, match=re.escape("SRV query for _sip._tcp.carrier.example")):
        await locate(dns, "carrier.example", None, TCP)
    assert "A/AAAA carrier.example" not in dns.asked


async def test_a_failed_alternative_is_left_out_when_another_gives_targets() -> None:
    dns = MemoryDns(
        hosts=HOSTS,
        srvs={
            "_sip._udp.carrier.example": [
                Srv(10, 0, 5060, "sip1.carrier.example"),
                Srv(20, 0, 5060, "sip2.carrier.example"),
            ]
        },
        failing={"_sips._tcp.carrier.example", "sip1.carrier.example"},
    )
    # The TLS probe and the first SRV target's addresses failed; the rest is tried.
    assert await locate(dns, "carrier.example", None, None) == [Target(UDP, "192.0.2.2", 5060)]
    naptr = MemoryDns(
        hosts=HOSTS,
        srvs=CARRIER_SRV,
        naptrs={
            "carrier.example": [
                Naptr(10, 0, "S", "SIP+D2T", "_sip._tcp.carrier.example"),
                Naptr(20, 0, "S", "SIP+D2U", "_sip._udp.carrier.example"),
            ]
        },
        failing={"_sip._tcp.carrier.example"},
    )
    assert await locate(naptr, "carrier.example", None, None) == [Target(UDP, "192.0.2.2", 5060)]


async def test_a_failed_probe_with_nothing_found_is_raised_not_guessed_past() -> None:
    # The UDP and TCP probes found nothing, the TLS one failed: TLS may exist, so
    # the A/AAAA fallback would be a guess.
    dns = MemoryDns(hosts=HOSTS, failing={"_sips._tcp.carrier.example"})
    with pytest.raises(DnsError, match=re.escape("_sips._tcp.carrier.example")):
        await locate(dns, "carrier.example", None, None)
    assert "A/AAAA carrier.example" not in dns.asked
