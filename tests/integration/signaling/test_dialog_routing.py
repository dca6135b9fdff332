"""Where the B2BUA sends requests inside a call (RFC 3261 12.2.1.1, 8.1.2), and how a
session refresh lives through glare (14.1): scripted phones on real sockets, with
extra sockets standing for a phone's second address or a proxy in its path."""

import asyncio

from telportal.sip import Request, Response
from tests.integration.signaling.conftest import Edge
from tests.integration.signaling.scripted_phones import (
    SDP,
    Phone,
    answered_call,
    callee_bye,
    caller_hangs_up,
    connected_call,
    place_call,
    scripted_phone,
)
from tests.integration.signaling.test_dialog_races import heard, keys


async def test_requests_to_the_callee_follow_its_record_route_and_contact(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """B answers through a proxy that record-routes, from a Contact on another port.
    The ACK and the BYE went to B's registered address, with the proxy's Route in
    them but past the proxy; they must go to the proxy, for the Contact."""
    a, b = phones
    async with scripted_phone(edge.port, "proxy") as proxy, scripted_phone(edge.port, "1002") as b2:
        uri, call_id, _ = await place_call(a, edge.port, "1002")
        invite = await b.next("INVITE")
        assert isinstance(invite, Request)
        route = f"<sip:127.0.0.1:{proxy.port};lr>"
        await b.reply(invite, 200, body=SDP, extra=(("Record-Route", route),), contact=b2.contact)
        ack = await proxy.next("ACK")
        assert isinstance(ack, Request)
        assert str(ack.uri) == b2.contact and ack.headers.get_all("Route") == [route]
        ok = await a.next("200")
        assert isinstance(ok, Response)
        await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
        await a.send(a.line("BYE", uri, 3, call_id, [], to_tag=ok.to.tag or ""))
        assert (await a.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
        bye = await proxy.next("BYE")
        assert isinstance(bye, Request)
        assert str(bye.uri) == b2.contact and bye.headers.get_all("Route") == [route]
        await proxy.reply(bye, 200)
        assert keys(await heard(b, 0.3)) == []  # nothing went to the registered address


async def test_requests_to_the_caller_go_to_its_contact(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """A caller on our network whose Contact names another port than the one it sent
    from gets the BYE there (12.2.1.1); it went to the INVITE's source port."""
    a, b = phones
    async with scripted_phone(edge.port, "1001") as a2:
        uri, call_id, invite, ok = await answered_call(a, b, edge.port, contact=a2.contact)
        await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
        await b.send(callee_bye(b, edge.port, invite))
        assert (await b.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
        bye = await a2.next("BYE")
        assert isinstance(bye, Request) and str(bye.uri) == a2.contact
        await a2.reply(bye, 200)
        assert "BYE" not in keys(await heard(a, 0.3))


async def test_a_caller_behind_nat_is_reached_where_it_sent_from(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """A Contact on a private address of another host is a phone behind NAT: only the
    address its INVITE came from reaches it, so the BYE goes there, to its Contact URI."""
    a, b = phones
    private = "sip:1001@10.20.30.40:5060"
    uri, call_id, invite, ok = await answered_call(a, b, edge.port, contact=private)
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    await b.send(callee_bye(b, edge.port, invite))
    bye = await a.next("BYE")
    assert isinstance(bye, Request) and str(bye.uri) == private
    await a.reply(bye, 200)


async def _answer_refresh(a: Phone, status: int) -> Request:
    """The caller's answer to our next re-INVITE; returns that re-INVITE."""
    reinvite = await a.next("INVITE")
    assert isinstance(reinvite, Request) and reinvite.to.tag == "from-1001"
    body = SDP if status == 200 else b""
    await a.reply(reinvite, status, body=body)
    return reinvite


async def test_a_session_refresh_refused_491_is_tried_again(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """14.1: a re-INVITE answered 491 (the peer's own re-INVITE crossed it) is sent
    again after the glare delay, 0-2 s on the leg whose Call-ID the caller chose.
    The refresh counted the 491 as done and never sent the re-INVITE again."""
    a, b = phones
    uri, call_id, ok = await connected_call(a, b, edge.port)
    sip = edge.platform.sip
    assert sip is not None
    (leg,) = sip.legs_of(call_id)
    refresh = asyncio.create_task(leg.refresh())
    first = await _answer_refresh(a, 491)
    assert (await a.next("ACK")).cseq.number == first.cseq.number  # type: ignore[union-attr]
    again = await _answer_refresh(a, 200)
    assert again.cseq.number > first.cseq.number and again.body == first.body
    assert (await a.next("ACK")).cseq.number == again.cseq.number  # type: ignore[union-attr]
    async with asyncio.timeout(5):
        assert await refresh is True
    assert not leg.ended.is_set()
    await caller_hangs_up(a, b, uri, call_id, 3, ok.to.tag or "")


async def test_a_session_refresh_waits_for_the_peers_reinvite_to_finish(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """A refresh due while the caller's own re-INVITE waits for its ACK cannot be
    built (14.1: one INVITE at a time). That hung the call up as a failed refresh;
    it now waits the glare delay and sends the refresh once the ACK is in."""
    a, b = phones
    uri, call_id, ok = await connected_call(a, b, edge.port)
    tag = ok.to.tag or ""
    sip = edge.platform.sip
    assert sip is not None
    (leg,) = sip.legs_of(call_id)
    await a.send(a.line("INVITE", uri, 3, call_id, [], to_tag=tag, body=SDP))
    put = await b.next("INVITE")  # the offer goes on to the callee (test_mid_call_offers)
    assert isinstance(put, Request)
    await b.reply(put, 200, body=SDP)
    assert (await a.next("200")).cseq.number == 3  # type: ignore[union-attr]
    refresh = asyncio.create_task(leg.refresh())
    assert "INVITE" not in keys(await heard(a, 0.3))  # its ACK is not in yet
    assert not refresh.done()
    await a.send(a.line("ACK", uri, 3, call_id, [], to_tag=tag))
    await _answer_refresh(a, 200)
    async with asyncio.timeout(5):
        assert await refresh is True
    assert not leg.ended.is_set()
    await a.send(a.line("BYE", uri, 4, call_id, [], to_tag=tag))
    bye = await b.next("BYE")
    assert isinstance(bye, Request)
    await b.reply(bye, 200)
