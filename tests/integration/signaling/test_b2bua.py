"""The B2BUA's failure and teardown paths, with scripted phones on real sockets."""

import asyncio
import contextlib
import sys

from sqlalchemy import select

from telportal.sip import Request, Response, parse_message
from telportal.store.schema import CallDetailRecord
from tests.integration.signaling.conftest import Edge
from tests.integration.signaling.scripted_phones import (
    SDP,
    Phone,
    answered_call,
    callee_bye,
    connected_call,
    place_call,
)


async def test_unknown_and_unregistered_extensions(edge: Edge, phones: tuple[Phone, Phone]) -> None:
    a, _ = phones
    await place_call(a, edge.port, "9999")
    assert (await a.next("4")).status == 404  # type: ignore[union-attr]
    await place_call(a, edge.port, "1003")  # exists, no phone registered
    assert (await a.next("4")).status == 480  # type: ignore[union-attr]


async def test_busy_callee_is_relayed(edge: Edge, phones: tuple[Phone, Phone]) -> None:
    a, b = phones
    await place_call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request) and invite.body == SDP  # the offer passes through
    assert invite.from_.uri.user == "1001"  # type: ignore[union-attr]
    await b.reply(invite, 180)
    assert (await a.next("180")).status == 180  # type: ignore[union-attr]
    await b.reply(invite, 486)
    assert (await b.next("ACK")).method == "ACK"  # type: ignore[union-attr]
    final = await a.next("4")
    assert isinstance(final, Response) and final.status == 486


async def test_caller_cancel_cancels_the_callee(edge: Edge, phones: tuple[Phone, Phone]) -> None:
    a, b = phones
    uri, call_id, branch = await place_call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 180)
    await a.next("180")
    await a.send(a.line("CANCEL", uri, 2, call_id, [], branch=branch))
    assert (await a.next("200")).cseq.method == "CANCEL"  # type: ignore[union-attr]
    assert (await a.next("487")).status == 487  # type: ignore[union-attr]
    cancel = await b.next("CANCEL")
    assert isinstance(cancel, Request)
    await b.reply(cancel, 200)
    await b.reply(invite, 487)
    await b.next("ACK")


async def test_callee_hangup_reaches_the_caller(edge: Edge, phones: tuple[Phone, Phone]) -> None:
    a, b = phones
    uri, call_id, _ = await place_call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 200, body=SDP.replace(b"40000", b"40002"))
    ok = await a.next("200")
    assert isinstance(ok, Response) and b"40002" in ok.body  # the callee's answer passes through
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    assert (await b.next("ACK")).method == "ACK"  # type: ignore[union-attr]
    bye = parse_message(callee_bye(b, edge.port, invite))
    await b.send(bye.to_bytes())
    assert (await b.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
    caller_bye = await a.next("BYE")
    assert isinstance(caller_bye, Request) and caller_bye.call_id == call_id
    await a.reply(caller_bye, 200)


async def test_a_hangup_before_the_callers_ack_holds_the_bye_until_it(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """RFC 3261 15: no BYE on a dialog before the ACK of our 2xx. The callee hangs up
    while the caller's ACK is still on its way (or its 2xx was lost): a BYE sent then
    would reach the caller before the call it ends, as a BYE it must refuse."""
    a, b = phones
    uri, call_id, invite, ok = await answered_call(a, b, edge.port)
    await b.send(callee_bye(b, edge.port, invite))
    assert (await b.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
    # The caller has not acknowledged: for 0.8 s (T1 is 0.5 s) it is sent the 2xx
    # again, and nothing else.
    seen: list[str] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(0.8):
            while True:
                msg, _ = await a.inbox.get()
                seen.append(msg.method if isinstance(msg, Request) else str(msg.status))
    assert "BYE" not in seen and "200" in seen, seen
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    caller_bye = await a.next("BYE")
    assert isinstance(caller_bye, Request) and caller_bye.call_id == call_id
    await a.reply(caller_bye, 200)
    sip = edge.platform.sip
    assert sip is not None
    await edge.records_written(calls=1)
    assert sip.calls_awaiting_ack == 0 and sip.active_dialogs == 0


async def test_session_timer_is_negotiated_and_too_short_refused(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    a, b = phones
    await place_call(a, edge.port, "1002", ("Supported: timer", "Session-Expires: 60"))
    refused = await a.next("422")
    assert isinstance(refused, Response) and refused.headers.get("Min-SE") == "90"

    uri, call_id, _ = await place_call(
        a, edge.port, "1002", ("Supported: timer", "Session-Expires: 1800")
    )
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 200, body=SDP)
    ok = await a.next("200")
    assert isinstance(ok, Response)
    assert (ok.headers.get("Require") or "") == "timer"
    assert (ok.headers.get("Session-Expires") or "").startswith("1800;refresher=")
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))


async def test_answered_calls_leave_nothing_behind(edge: Edge, phones: tuple[Phone, Phone]) -> None:
    """Calls answered, ACKed and hung up leave no state: no 2xx waiting for its ACK
    (which held every answered call for 64*T1), and every call has its record."""
    a, b = phones
    sip = edge.platform.sip
    assert sip is not None
    for _ in range(3):
        uri, call_id, ok = await connected_call(a, b, edge.port)
        await a.send(a.line("BYE", uri, 3, call_id, [], to_tag=ok.to.tag or ""))
        assert (await a.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
        callee_bye = await b.next("BYE")
        assert isinstance(callee_bye, Request)
        await b.reply(callee_bye, 200)
    await edge.records_written(calls=3)
    assert sip.calls_awaiting_ack == 0 and len(sip.retransmitter) == 0
    assert sip.active_dialogs == 0
    async with edge.platform.db.read() as session:
        rows = (await session.execute(select(CallDetailRecord))).scalars().all()
    assert len(rows) == 3
    assert all(r.answered_at and r.ended_at and r.hangup_by == "caller" for r in rows)


async def test_a_call_dropped_at_stop_leaves_no_exception_behind(
    edge: Edge, phones: tuple[Phone, Phone]
) -> None:
    """The service cancels a bridged call when it stops. The compiled coroutines it
    passes through must not leave that `CancelledError` in the thread's exception
    state, where it would keep the call, the service and its transactions alive until
    some later exception replaced it (decision 0028)."""
    a, b = phones
    await connected_call(a, b, edge.port)
    sip = edge.platform.sip
    assert sip is not None and sip.active_dialogs > 0
    await sip.stop()
    await asyncio.sleep(0)
    assert sys.exc_info() == (None, None, None)
