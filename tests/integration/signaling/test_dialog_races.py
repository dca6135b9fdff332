"""The B2BUA where requests and answers cross, repeat or fork (RFC 3261 9, 13, 15):
scripted phones on real sockets, each race played out in the order that exposes it."""

import asyncio
import contextlib

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
)


async def heard(phone: Phone, seconds: float) -> list[Request | Response]:
    """Everything `phone` receives in the next `seconds`."""
    got: list[Request | Response] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                msg, _ = await phone.inbox.get()
                got.append(msg)
    return got


def keys(messages: list[Request | Response]) -> list[str]:
    return [m.method if isinstance(m, Request) else f"{m.status} {m.cseq.method}" for m in messages]


async def test_an_answer_that_crosses_our_cancel_is_acknowledged_and_hung_up(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """9.2: once B has answered, our CANCEL changes nothing; the dialog it made is ours
    to end with ACK and BYE (13.2.2.4). The leg ended at the CANCEL and never sent the
    BYE, so B stayed in a call no one was on."""
    a, b = phones
    uri, call_id, branch = await place_call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 180)
    await a.next("180")
    await a.send(a.line("CANCEL", uri, 2, call_id, [], branch=branch))
    cancel = await b.next("CANCEL")
    assert isinstance(cancel, Request)
    await b.reply(cancel, 200)
    await b.reply(invite, 200, body=SDP)  # answered as the CANCEL arrived
    ack = await b.next("ACK")
    assert isinstance(ack, Request) and ack.to.tag == "callee"
    bye = await b.next("BYE")
    assert isinstance(bye, Request) and bye.to.tag == "callee" and bye.call_id == invite.call_id
    await b.reply(bye, 200)
    final = await a.next("4")
    assert isinstance(final, Response) and final.status in (480, 487)


async def test_a_repeated_answer_is_acknowledged_again_and_a_forked_one_ended(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """13.2.2.4: every 2xx gets its ACK. A repeat (our ACK was lost) went unanswered
    until the transaction's Timer M, so B gave up on the call; a 2xx from another
    branch got neither ACK nor BYE."""
    a, b = phones
    uri, call_id, invite, ok = await answered_call(a, b, edge.port)
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    await b.reply(invite, 200, body=SDP)  # our ACK "lost": the same 2xx again
    again = await b.next("ACK")
    assert isinstance(again, Request) and again.to.tag == "callee"
    assert again.cseq.number == invite.cseq.number
    await b.reply(invite, 200, body=SDP, to_tag="other-branch")
    fork_ack = await b.next("ACK")
    assert isinstance(fork_ack, Request) and fork_ack.to.tag == "other-branch"
    fork_bye = await b.next("BYE")
    assert isinstance(fork_bye, Request) and fork_bye.to.tag == "other-branch"
    await b.reply(fork_bye, 200)
    # The call itself goes on: the caller's BYE reaches the branch that answered first.
    await a.send(a.line("BYE", uri, 3, call_id, [], to_tag=ok.to.tag or ""))
    assert (await a.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
    bye = await b.next("BYE")
    assert isinstance(bye, Request) and bye.to.tag == "callee"
    await b.reply(bye, 200)


async def test_our_answer_to_a_reinvite_is_resent_until_its_ack(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """13.3.1.4 holds for re-INVITEs too: a 2xx sent once and lost on UDP made the
    caller's refresh time out, which ends its session. A re-INVITE without an offer
    gets one in the 2xx, as the same section requires: B's (decision 0036)."""
    a, b = phones
    uri, call_id, ok = await connected_call(a, b, edge.port)
    tag = ok.to.tag or ""
    await a.send(a.line("INVITE", uri, 3, call_id, [], to_tag=tag))  # no SDP: a refresh
    put = await b.next("INVITE")
    assert isinstance(put, Request)
    await b.reply(put, 200, body=SDP)
    answer = await a.next("200")
    assert isinstance(answer, Response) and answer.cseq.number == 3
    assert answer.body.startswith(b"v=0"), "a 2xx to an INVITE without an offer carries one"
    copies = [m for m in await heard(a, 0.8) if isinstance(m, Response)]
    assert [m.cseq.number for m in copies if m.status == 200] == [3], keys(copies)
    await a.send(a.line("ACK", uri, 3, call_id, [], to_tag=tag, body=SDP))
    assert (await b.next("ACK")).body == SDP  # A's answer, for B's offer
    assert keys(await heard(a, 1.2)) == []  # acknowledged: no more copies
    sip = edge.platform.sip
    assert sip is not None and sip.calls_awaiting_ack == 0
    await caller_hangs_up(a, b, uri, call_id, 4, tag)


async def test_a_cancel_after_our_answer_leaves_the_call_up(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """9.2: a CANCEL that arrives after the 2xx gets 200 and changes nothing. It ended
    the call without a BYE, and the caller's own BYE then got 481."""
    a, b = phones
    uri, call_id, branch = await place_call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 200, body=SDP)
    ok = await a.next("200")
    assert isinstance(ok, Response)
    await a.send(a.line("CANCEL", uri, 2, call_id, [], branch=branch))
    cancelled = await a.next("200")
    assert isinstance(cancelled, Response) and cancelled.cseq.method == "CANCEL"
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    await b.next("ACK")
    assert "BYE" not in keys(await heard(b, 0.3))
    await a.send(a.line("BYE", uri, 3, call_id, [], to_tag=ok.to.tag or ""))
    done = await a.next("")
    assert isinstance(done, Response) and (done.status, done.cseq.method) == (200, "BYE")
    bye = await b.next("BYE")
    assert isinstance(bye, Request)
    await b.reply(bye, 200)


async def test_a_bye_on_the_early_dialog_gets_the_invite_its_487(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """15.1.2: a caller may end an early dialog with BYE; its INVITE must still get a
    final answer (487). Nothing answered it, so its transaction stayed forever."""
    a, b = phones
    uri, call_id, _ = await place_call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 180)
    ringing = await a.next("180")
    assert isinstance(ringing, Response) and ringing.to.tag
    await a.send(a.line("BYE", uri, 3, call_id, [], to_tag=ringing.to.tag))
    answers = {}
    async with asyncio.timeout(10):
        while len(answers) < 2:
            msg = await a.next("")
            if isinstance(msg, Response) and msg.status >= 200:
                answers[msg.cseq.method] = msg.status
    assert answers == {"BYE": 200, "INVITE": 487}
    cancel = await b.next("CANCEL")  # the callee stops ringing
    assert isinstance(cancel, Request)
    await b.reply(cancel, 200)
    await b.reply(invite, 487)
    await b.next("ACK")


async def test_the_callers_bye_while_our_bye_waits_for_its_ack_gets_200(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """The dialog stays known while the BYE waits for the caller's ACK (RFC 3261 15):
    the caller's BYE meanwhile is answered 200, not 481, and ours is then not sent."""
    a, b = phones
    uri, call_id, invite, ok = await answered_call(a, b, edge.port)
    await b.send(callee_bye(b, edge.port, invite))
    assert (await b.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
    await a.send(a.line("BYE", uri, 3, call_id, [], to_tag=ok.to.tag or ""))
    answer = await a.next("")
    while isinstance(answer, Response) and answer.cseq.method == "INVITE":
        answer = await a.next("")  # copies of the 2xx still waiting for its ACK
    assert isinstance(answer, Response) and (answer.status, answer.cseq.method) == (200, "BYE")
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    assert "BYE" not in keys(await heard(a, 0.8))
    sip = edge.platform.sip
    assert sip is not None and sip.active_dialogs == 0 and sip.calls_awaiting_ack == 0


async def test_methods_a_call_does_not_serve_get_405(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """8.2.1: REFER in a call is not served here; it got 200 as if the transfer had
    been accepted."""
    a, b = phones
    uri, call_id, ok = await connected_call(a, b, edge.port)
    tag = ok.to.tag or ""
    await a.send(a.line("REFER", uri, 3, call_id, ["Refer-To: <sip:1003@127.0.0.1>"], to_tag=tag))
    refused = await a.next("405")
    assert isinstance(refused, Response) and "REFER" not in (refused.headers.get("Allow") or "")
    await a.send(a.line("INFO", uri, 4, call_id, [], to_tag=tag))
    assert (await a.next("200")).cseq.method == "INFO"  # type: ignore[union-attr]
    await caller_hangs_up(a, b, uri, call_id, 5, tag)


async def test_max_forwards_is_counted_down_across_the_b2bua_and_a_spent_one_refused(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """RFC 7332: a B2BUA carries Max-Forwards to the leg it places, less one, so that a
    loop through it (a trunk or site that routes back) ends; at 0 it answers 483. The
    B leg always started again at 70."""
    a, b = phones
    await place_call(a, edge.port, "1002", max_forwards=12)
    invite = await b.next("INVITE")
    assert isinstance(invite, Request) and invite.max_forwards == 11
    await b.reply(invite, 486)
    await b.next("ACK")
    assert isinstance(await a.next("486"), Response)
    await place_call(a, edge.port, "1002", max_forwards=0)
    refused = await a.next("4")
    assert isinstance(refused, Response) and refused.status == 483
    assert "INVITE" not in keys(await heard(b, 0.3))  # the callee never rang
