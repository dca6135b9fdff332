"""Offers in the middle of a call between two phones (hold, resume, a new address):
the B2BUA puts each to the other phone and returns its answer (RFC 3261 14, RFC 3264
8), so the two dialogs stay one session. It answered them itself with the SDP it had
last sent: the other phone never heard of the hold or of the new address, and the
answer to a sendonly offer said sendrecv, which RFC 3264 6.1 forbids."""

import asyncio

from telportal.sip import Request, Response
from tests.integration.signaling.conftest import Edge
from tests.integration.signaling.scripted_phones import (
    SDP,
    Phone,
    answered_call,
    callee_request,
    caller_hangs_up,
    connected_call,
)


def sdp(port: int, direction: str = "sendrecv") -> bytes:
    return SDP.replace(b"40000", str(port).encode()) + f"a={direction}\r\n".encode()


async def test_hold_and_resume_reach_the_other_phone_and_their_answers_come_back(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    uri, call_id, invite, ok = await answered_call(a, b, edge.port)
    tag = ok.to.tag or ""
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=tag))
    # A holds, from a new port.
    await a.send(a.line("INVITE", uri, 3, call_id, [], to_tag=tag, body=sdp(40010, "sendonly")))
    put = await b.next("INVITE")
    assert isinstance(put, Request) and put.body == sdp(40010, "sendonly")
    assert put.to.tag == "callee" and put.call_id == invite.call_id
    await b.reply(put, 200, body=sdp(40002, "recvonly"))
    ack = await b.next("ACK")
    assert isinstance(ack, Request) and ack.cseq.number == put.cseq.number
    answer = await a.next("200")
    assert isinstance(answer, Response) and answer.cseq.number == 3
    assert answer.body == sdp(40002, "recvonly")
    await a.send(a.line("ACK", uri, 3, call_id, [], to_tag=tag))
    # B resumes: its offer goes to A the same way.
    await b.send(callee_request(b, edge.port, invite, "INVITE", 2, sdp(40004)))
    put_a = await a.next("INVITE")
    assert isinstance(put_a, Request) and put_a.body == sdp(40004)
    await a.reply(put_a, 200, body=sdp(40010))
    assert (await a.next("ACK")).cseq.number == put_a.cseq.number  # type: ignore[union-attr]
    answer_b = await b.next("200")
    assert isinstance(answer_b, Response) and answer_b.cseq.method == "INVITE"
    assert answer_b.body == sdp(40010)
    await b.send(callee_request(b, edge.port, invite, "ACK", 2))
    await caller_hangs_up(a, b, uri, call_id, 4, tag)


async def test_a_refusal_from_the_other_phone_is_passed_back(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """B is in the middle of its own re-INVITE (glare) and answers 491: A gets the 491,
    to retry after its glare delay (14.1), and the call goes on."""
    a, b = phones
    uri, call_id, ok = await connected_call(a, b, edge.port)
    tag = ok.to.tag or ""
    await a.send(a.line("INVITE", uri, 3, call_id, [], to_tag=tag, body=sdp(40010, "sendonly")))
    put = await b.next("INVITE")
    assert isinstance(put, Request)
    await b.reply(put, 491)
    await b.next("ACK")
    refused = await a.next("4")
    assert isinstance(refused, Response) and (refused.status, refused.cseq.number) == (491, 3)
    await a.send(a.line("ACK", uri, 3, call_id, [], to_tag=tag))
    await caller_hangs_up(a, b, uri, call_id, 4, tag)


async def test_a_reinvite_without_an_offer_gets_the_other_phones_offer(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """A asks for the session again (a re-INVITE without SDP, RFC 3264 5): B is asked
    the same way, B's offer goes to A in our 2xx, and A's answer from its ACK goes to
    B in B's ACK, which waits for it (B's 2xx repeated meanwhile gets no ACK)."""
    a, b = phones
    uri, call_id, ok = await connected_call(a, b, edge.port)
    tag = ok.to.tag or ""
    await a.send(a.line("INVITE", uri, 3, call_id, [], to_tag=tag))
    put = await b.next("INVITE")
    assert isinstance(put, Request) and put.body == b""
    await b.reply(put, 200, body=sdp(40004))
    offered = await a.next("200")
    assert isinstance(offered, Response) and offered.cseq.number == 3
    assert offered.body == sdp(40004)
    await b.reply(put, 200, body=sdp(40004))  # B's 2xx again: its ACK still waits
    await asyncio.sleep(0.3)
    assert b.inbox.empty()
    await a.send(a.line("ACK", uri, 3, call_id, [], to_tag=tag, body=sdp(40010)))
    ack = await b.next("ACK")
    assert isinstance(ack, Request) and ack.cseq.number == put.cseq.number
    assert ack.body == sdp(40010)
    await b.reply(put, 200, body=sdp(40004))  # and again: the same ACK, answer and all
    again = await b.next("ACK")
    assert isinstance(again, Request) and again.body == sdp(40010)
    await caller_hangs_up(a, b, uri, call_id, 4, tag)


async def test_a_hang_up_before_the_answer_still_acknowledges_the_other_phone(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """A asks for the session again and hangs up instead of answering: B's 2xx still
    gets its ACK (13.2.2.4: every 2xx is acknowledged), with the session it had, and
    then the BYE."""
    a, b = phones
    uri, call_id, invite, ok = await answered_call(a, b, edge.port)
    tag = ok.to.tag or ""
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=tag))
    await a.send(a.line("INVITE", uri, 3, call_id, [], to_tag=tag))
    put = await b.next("INVITE")
    assert isinstance(put, Request)
    await b.reply(put, 200, body=sdp(40004))
    assert (await a.next("200")).cseq.number == 3  # type: ignore[union-attr]
    await a.send(a.line("BYE", uri, 4, call_id, [], to_tag=tag))
    ack = await b.next("ACK")
    assert isinstance(ack, Request) and ack.cseq.number == put.cseq.number
    assert ack.body == invite.body  # A's session as B had it
    bye = await b.next("BYE")
    assert isinstance(bye, Request)
    await b.reply(bye, 200)
