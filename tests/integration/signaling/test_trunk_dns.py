"""A carrier named by a domain, without a port: found by its DNS SRV records (RFC 3263),
and the next server tried when one answers 503 or not at all (4.3).

The DNS server is Debian's dnsmasq (tests/dnsmasq.py); the carrier's servers are
scripted SIP peers on their own UDP ports, which the SRV records name.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from telportal.net import NoRoute, Peer, Transport
from telportal.net.dns import DnsResolver
from telportal.net.locate import Srv
from telportal.sip import Request, Response
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.dnsmasq import Dnsmasq, dnsmasq
from tests.integration.signaling.conftest import Edge
from tests.integration.signaling.scripted_phones import SDP, Phone, place_call, scripted_phone
from tests.ports import free_port
from tests.unit.net.test_locate import MemoryDns

NUMBER = "01088886666"
DOMAIN = "carrier.test"


async def carrier_trunk(edge: Edge, dns: Dnsmasq) -> None:
    """Acme's way out: carrier.test with no port, so its SRV records decide."""
    sip = edge.platform.sip
    assert sip is not None
    sip.dns = DnsResolver([dns.nameserver], timeout=1.0)
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    async with edge.platform.db.write(Scope.cli()) as uow:
        await edge.platform.resources["trunks"].create(
            uow,
            s.TrunkCreate(
                tenant_id=acme.tenant_id, name="carrier", host=DOMAIN, port=None,
                keepalive=False,  # pinged by the test itself
            ),
        )  # fmt: skip
    await sip.directory.load()


@pytest.fixture
async def servers(edge: Edge) -> AsyncIterator[tuple[Phone, Phone]]:
    """The carrier's two SIP servers."""
    async with (
        scripted_phone(edge.port, "carrier") as first,
        scripted_phone(edge.port, "carrier") as second,
    ):
        yield first, second


def srv_records(*ports: int) -> list[str]:
    """sip1, sip2... of carrier.test at these ports, in this order of priority."""
    records = []
    for n, port in enumerate(ports, start=1):
        records.append(f"--host-record=sip{n}.{DOMAIN},127.0.0.1")
        records.append(f"--srv-host=_sip._udp.{DOMAIN},sip{n}.{DOMAIN},{port},{n * 10},0")
    return records


async def answer_and_hang_up(
    caller: Phone, server: Phone, uri: str, call_id: str, invite: Request | None = None
) -> None:
    """`server` answers the INVITE it got (`invite`, if the test took it already); the
    caller gets the 200 and hangs up."""
    if invite is None:
        received = await server.next("INVITE")
        assert isinstance(received, Request)
        invite = received
    await server.reply(invite, 200, body=SDP)
    ok = await caller.next("200")
    assert isinstance(ok, Response) and ok.cseq.method == "INVITE"
    await server.next("ACK")
    tag = ok.to.tag or ""
    await caller.send(caller.line("ACK", uri, 2, call_id, [], to_tag=tag))
    await caller.send(caller.line("BYE", uri, 3, call_id, [], to_tag=tag))
    bye = await server.next("BYE")
    assert isinstance(bye, Request)
    await server.reply(bye, 200)
    assert (await caller.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]


async def test_a_503_from_the_first_server_sends_the_call_to_the_next(
    edge: Edge, phones: tuple[Phone, Phone], servers: tuple[Phone, Phone]
) -> None:
    caller, _ = phones
    first, second = servers
    async with dnsmasq(*srv_records(first.port, second.port), domain=DOMAIN) as dns:
        await carrier_trunk(edge, dns)
        uri, call_id, _ = await place_call(caller, edge.port, NUMBER)
        refused = await first.next("INVITE")
        assert isinstance(refused, Request)
        # The Request-URI keeps the carrier's domain; only the address came from DNS.
        assert str(refused.uri) == f"sip:{NUMBER}@{DOMAIN}"
        await first.reply(refused, 503)
        await first.next("ACK")
        await answer_and_hang_up(caller, second, uri, call_id)


@pytest.mark.parametrize("edge", [{"failover_seconds": 0.5}], indirect=True)
async def test_a_server_that_says_nothing_is_passed_over_and_its_late_answer_ended(
    edge: Edge, phones: tuple[Phone, Phone], servers: tuple[Phone, Phone]
) -> None:
    """The first server sends nothing for `failover_seconds`: the INVITE goes to the
    second, long before Timer B (32 s). When the first answers after all, its 2xx is
    acknowledged and ended with a BYE; the call stays with the second."""
    caller, _ = phones
    first, second = servers
    async with dnsmasq(*srv_records(first.port, second.port), domain=DOMAIN) as dns:
        await carrier_trunk(edge, dns)
        uri, call_id, _ = await place_call(caller, edge.port, NUMBER)
        late = await first.next("INVITE")
        assert isinstance(late, Request)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        invite = await second.next("INVITE")
        assert isinstance(invite, Request)
        assert 0.4 <= loop.time() - sent < 5.0
        assert invite.cseq.number > late.cseq.number  # a new transaction, same call
        await first.reply(late, 200, to_tag="too-late", body=SDP)
        assert isinstance(await first.next("ACK"), Request)
        bye = await first.next("BYE")
        assert isinstance(bye, Request) and bye.to.tag == "too-late"
        await first.reply(bye, 200)
        await answer_and_hang_up(caller, second, uri, call_id, invite)


@pytest.mark.parametrize("edge", [{"failover_seconds": 0.5}], indirect=True)
async def test_a_silent_server_is_tried_last_until_it_answers_a_keepalive(
    edge: Edge, phones: tuple[Phone, Phone], servers: tuple[Phone, Phone]
) -> None:
    """Once the first server has let an INVITE go unanswered, the next call goes to the
    second at once instead of waiting for it again; a keep-alive it answers puts it
    first again."""
    caller, _ = phones
    first, second = servers
    sip = edge.platform.sip
    assert sip is not None
    async with dnsmasq(*srv_records(first.port, second.port), domain=DOMAIN) as dns:
        await carrier_trunk(edge, dns)
        uri, call_id, _ = await place_call(caller, edge.port, NUMBER)
        assert isinstance(await first.next("INVITE"), Request)  # and says nothing
        await answer_and_hang_up(caller, second, uri, call_id)

        loop = asyncio.get_running_loop()
        uri, call_id, _ = await place_call(caller, edge.port, NUMBER)
        sent = loop.time()
        invite = await second.next("INVITE")
        assert isinstance(invite, Request)
        assert loop.time() - sent < 0.4, "the next call waited for the silent server again"
        await answer_and_hang_up(caller, second, uri, call_id, invite)
        while not first.inbox.empty():  # the first call's INVITE, sent again meanwhile
            message, _ = first.inbox.get_nowait()
            assert message.call_id != invite.call_id

        (trunk,) = [t for t in sip.directory.trunks() if t.name == "carrier"]
        ping = asyncio.create_task(sip._ping_trunk(trunk))
        for server in (first, second):
            options = await server.next("OPTIONS")
            assert isinstance(options, Request)
            await server.reply(options, 200)
        await asyncio.wait_for(ping, 10)
        servers_now = await sip.locate(DOMAIN, None, Transport.UDP)
        assert [peer.port for peer in servers_now] == [first.port, second.port]


@pytest.mark.parametrize("edge", [{"t1": 0.05}], indirect=True)
async def test_a_server_that_does_not_answer_is_passed_over_after_timer_b(
    edge: Edge, phones: tuple[Phone, Phone], servers: tuple[Phone, Phone]
) -> None:
    """Nothing listens at the first SRV target: after Timer B (64*T1, 3.2 s here, less
    than `failover_seconds`) the INVITE goes to the second."""
    caller, _ = phones
    _, second = servers
    silent = free_port()
    async with dnsmasq(*srv_records(silent, second.port), domain=DOMAIN) as dns:
        await carrier_trunk(edge, dns)
        uri, call_id, _ = await place_call(caller, edge.port, NUMBER)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await asyncio.wait_for(answer_and_hang_up(caller, second, uri, call_id), 15)
        assert loop.time() - sent >= 64 * 0.05 * 0.9  # not before Timer B fired


async def test_a_carrier_without_records_fails_the_call_not_the_server(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    caller, _ = phones
    async with dnsmasq(domain=DOMAIN) as dns:  # carrier.test has no records at all
        await carrier_trunk(edge, dns)
        await place_call(caller, edge.port, NUMBER)
        final = await caller.next("4")
        assert isinstance(final, Response) and final.status == 480
    sip = edge.platform.sip
    assert sip is not None
    async with asyncio.timeout(10):
        while sip.trunk_channels:  # noqa: ASYNC110 - the channel is given back
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("edge", [{"t1": 0.05}], indirect=True)
async def test_the_keepalive_finds_a_carrier_up_through_its_second_server(
    edge: Edge, servers: tuple[Phone, Phone]
) -> None:
    """The first server is silent (Timer F, 3.2 s here), the second answers OPTIONS:
    the trunk is up."""
    _, second = servers
    sip = edge.platform.sip
    assert sip is not None
    async with dnsmasq(*srv_records(free_port(), second.port), domain=DOMAIN) as dns:
        await carrier_trunk(edge, dns)
        (trunk,) = [t for t in sip.directory.trunks() if t.name == "carrier"]
        ping = asyncio.create_task(sip._ping_trunk(trunk))
        options = await second.next("OPTIONS")
        assert isinstance(options, Request)
        assert str(options.uri) == f"sip:{DOMAIN}"
        await second.reply(options, 200)
        await asyncio.wait_for(ping, 60)
        assert sip.trunk_status[trunk.trunk_id].reachable is True


class _SlowDns(MemoryDns):
    """DNS that answers only when the test lets it: a lookup still running."""

    def __init__(self, **records: object) -> None:
        super().__init__(**records)  # type: ignore[arg-type]
        self.asked_event = asyncio.Event()
        self.release = asyncio.Event()

    async def srv(self, name: str) -> list[Srv]:
        self.asked_event.set()
        await self.release.wait()
        return await super().srv(name)


async def test_a_caller_who_gives_up_while_dns_is_asked_sends_no_invite(
    edge: Edge, phones: tuple[Phone, Phone], servers: tuple[Phone, Phone]
) -> None:
    """The caller cancels while the carrier is still being looked up: when DNS answers,
    no INVITE goes to the carrier (it would ring a number nobody waits for)."""
    caller, _ = phones
    first, _ = servers
    sip = edge.platform.sip
    assert sip is not None
    async with dnsmasq(domain=DOMAIN) as dns:
        await carrier_trunk(edge, dns)
    slow = _SlowDns(
        srvs={f"_sip._udp.{DOMAIN}": [Srv(10, 0, first.port, f"sip1.{DOMAIN}")]},
        hosts={f"sip1.{DOMAIN}": ["127.0.0.1"]},
    )
    sip.dns = slow
    uri, call_id, branch = await place_call(caller, edge.port, NUMBER)
    await asyncio.wait_for(slow.asked_event.wait(), 10)
    await caller.send(caller.line("CANCEL", uri, 2, call_id, [], branch=branch))
    assert (await caller.next("487")).cseq.method == "INVITE"  # type: ignore[union-attr]
    slow.release.set()
    await asyncio.sleep(0.5)
    assert first.inbox.empty(), "an INVITE went out for a call given up on"
    async with asyncio.timeout(10):
        while sip.trunk_channels:  # noqa: ASYNC110 - the channel is given back
            await asyncio.sleep(0.05)


async def test_a_tls_carrier_is_believed_only_inside_its_own_domain(edge: Edge) -> None:
    """Over TLS the certificate is checked against the SRV target's name, so an SRV
    record naming a host of another domain is not followed."""
    sip = edge.platform.sip
    assert sip is not None
    sip.dns = MemoryDns(
        srvs={
            f"_sips._tcp.{DOMAIN}": [
                Srv(10, 0, 5061, "sip.attacker.example"),
                Srv(20, 0, 5061, f"sip2.{DOMAIN}"),
            ]
        },
        hosts={"sip.attacker.example": ["203.0.113.66"], f"sip2.{DOMAIN}": ["192.0.2.2"]},
    )
    assert await sip.locate(DOMAIN, None, Transport.TLS) == [
        Peer(Transport.TLS, f"sip2.{DOMAIN}", 5061)
    ]
    sip.dns = MemoryDns(
        srvs={f"_sips._tcp.{DOMAIN}": [Srv(10, 0, 5061, "sip.attacker.example")]},
        hosts={"sip.attacker.example": ["203.0.113.66"]},
    )
    with pytest.raises(NoRoute, match="inside its own domain"):
        await sip.locate(DOMAIN, None, Transport.TLS)
    # Over UDP the address is all there is to it.
    sip.dns = MemoryDns(
        srvs={f"_sip._udp.{DOMAIN}": [Srv(10, 0, 5070, "sip.other.example")]},
        hosts={"sip.other.example": ["192.0.2.7"]},
    )
    assert await sip.locate(DOMAIN, None, Transport.UDP) == [Peer(Transport.UDP, "192.0.2.7", 5070)]
    # A name with a port is left to the system's resolver (hosts file, search domains).
    assert await sip.locate("pbx", 5080, Transport.UDP) == [Peer(Transport.UDP, "pbx", 5080)]
