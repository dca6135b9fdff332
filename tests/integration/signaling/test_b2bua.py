"""The B2BUA's failure and teardown paths, with scripted phones on real sockets."""

import asyncio
import contextlib
import secrets
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from telportal.net import Peer, SipTransportLayer, Source, Transport
from telportal.sip import Request, Response, make_response, parse_message
from telportal.sip.digest import answer_challenge
from telportal.store.schema import CallDetailRecord
from tests.integration.signaling.conftest import PASSWORD, Edge

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\n"
)


@dataclass
class Phone:
    layer: SipTransportLayer
    port: int
    server: Peer
    user: str
    inbox: asyncio.Queue[tuple[Request | Response, Source]] = field(default_factory=asyncio.Queue)

    def line(
        self,
        method: str,
        uri: str,
        cseq: int,
        call_id: str,
        extra: list[str],
        *,
        branch: str | None = None,
        to_tag: str = "",
        body: bytes = b"",
        to: str | None = None,
    ) -> bytes:
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@127.0.0.1>;tag=from-{self.user}",
            f"To: <{to or uri}>{';tag=' + to_tag if to_tag else ''}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>",
            *extra,
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        return ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def send(self, data: bytes) -> None:
        await self.layer.send(data, self.server)

    async def next(self, what: str) -> Request | Response:
        """The next message whose method or status starts with `what` (others skipped)."""
        async with asyncio.timeout(10):
            while True:
                msg, _ = await self.inbox.get()
                key = msg.method if isinstance(msg, Request) else str(msg.status)
                if key.startswith(what):
                    return msg

    async def reply(
        self, request: Request, status: int, *, to_tag: str = "callee", body: bytes = b""
    ) -> None:
        headers = [("Contact", f"<sip:{self.user}@127.0.0.1:{self.port}>")]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        tag = None if request.method == "BYE" else to_tag
        response = make_response(request, status, to_tag=tag, headers=headers, body=body)
        await self.layer.send(response.to_bytes(), self.server)


async def _pump(phone: Phone) -> None:
    while True:
        incoming = await phone.layer.receive()
        await phone.inbox.put((incoming.message, incoming.source))


@pytest.fixture
async def phones(edge: Edge) -> AsyncIterator[tuple[Phone, Phone]]:
    server = Peer(Transport.UDP, "127.0.0.1", edge.port)
    async with SipTransportLayer() as a_layer, SipTransportLayer() as b_layer:
        a = Phone(
            a_layer, (await a_layer.listen(Transport.UDP, "127.0.0.1", 0)).port, server, "1001"
        )
        b = Phone(
            b_layer, (await b_layer.listen(Transport.UDP, "127.0.0.1", 0)).port, server, "1002"
        )
        pumps = [asyncio.create_task(_pump(p)) for p in (a, b)]
        try:
            await _register(b, edge.port)
            yield a, b
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)


async def _register(phone: Phone, port: int) -> None:
    uri = f"sip:127.0.0.1:{port}"
    call_id = secrets.token_hex(6)
    aor = f"sip:{phone.user}@127.0.0.1"
    await phone.send(phone.line("REGISTER", uri, 1, call_id, ["Expires: 300"], to=aor))
    challenge = await phone.next("401")
    auth = answer_challenge(
        challenge.headers.get_all("WWW-Authenticate")[0],
        "REGISTER",
        uri,
        phone.user,
        PASSWORD,
        "c",
        1,
    )
    await phone.send(
        phone.line("REGISTER", uri, 2, call_id, ["Expires: 300", f"Authorization: {auth}"], to=aor)
    )
    assert isinstance(await phone.next("200"), Response)


async def _call(a: Phone, port: int, to: str, extra: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """Send an authenticated INVITE from a; returns (uri, call_id, branch of the INVITE)."""
    uri = f"sip:{to}@127.0.0.1:{port}"
    call_id = secrets.token_hex(6)
    first_branch = "z9hG4bK" + secrets.token_hex(6)
    await a.send(a.line("INVITE", uri, 1, call_id, [], branch=first_branch, body=SDP))
    challenge = await a.next("401")
    assert isinstance(challenge, Response)
    to_tag = challenge.to.tag or ""
    await a.send(a.line("ACK", uri, 1, call_id, [], branch=first_branch, to_tag=to_tag))
    auth = answer_challenge(
        challenge.headers.get_all("WWW-Authenticate")[0], "INVITE", uri, a.user, PASSWORD, "c", 1
    )
    branch = "z9hG4bK" + secrets.token_hex(6)
    await a.send(
        a.line(
            "INVITE", uri, 2, call_id, [f"Authorization: {auth}", *extra], branch=branch, body=SDP
        )
    )
    return uri, call_id, branch


async def _connected(a: Phone, b: Phone, port: int) -> tuple[str, str, Response]:
    """A call from a to b, answered and ACKed on both sides; (uri, call_id, the 200)."""
    uri, call_id, _ = await _call(a, port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 200, body=SDP)
    ok = await a.next("200")
    assert isinstance(ok, Response)
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    await b.next("ACK")
    return uri, call_id, ok


async def test_unknown_and_unregistered_extensions(edge: Edge, phones: tuple[Phone, Phone]) -> None:
    a, _ = phones
    await _call(a, edge.port, "9999")
    assert (await a.next("4")).status == 404  # type: ignore[union-attr]
    await _call(a, edge.port, "1003")  # exists, no phone registered
    assert (await a.next("4")).status == 480  # type: ignore[union-attr]


async def test_busy_callee_is_relayed(edge: Edge, phones: tuple[Phone, Phone]) -> None:
    a, b = phones
    await _call(a, edge.port, "1002")
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
    uri, call_id, branch = await _call(a, edge.port, "1002")
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
    uri, call_id, _ = await _call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 200, body=SDP.replace(b"40000", b"40002"))
    ok = await a.next("200")
    assert isinstance(ok, Response) and b"40002" in ok.body  # the callee's answer passes through
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    assert (await b.next("ACK")).method == "ACK"  # type: ignore[union-attr]
    bye = parse_message(
        b.line(
            "BYE",
            f"sip:telportal@127.0.0.1:{edge.port}",
            1,
            invite.call_id,
            [],
            to_tag=invite.from_.tag or "",
        ).replace(
            b"From: <sip:1002@127.0.0.1>;tag=from-1002", b"From: <sip:1002@127.0.0.1>;tag=callee"
        )
    )
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
    uri, call_id, _ = await _call(a, edge.port, "1002")
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 200, body=SDP)
    ok = await a.next("200")
    assert isinstance(ok, Response)
    await b.next("ACK")
    callee_bye = b.line(
        "BYE", f"sip:telportal@127.0.0.1:{edge.port}", 1, invite.call_id, [],
        to_tag=invite.from_.tag or "",
    ).replace(b"tag=from-1002", b"tag=callee")  # fmt: skip
    await b.send(callee_bye)
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
    await _call(a, edge.port, "1002", ("Supported: timer", "Session-Expires: 60"))
    refused = await a.next("422")
    assert isinstance(refused, Response) and refused.headers.get("Min-SE") == "90"

    uri, call_id, _ = await _call(
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
        uri, call_id, ok = await _connected(a, b, edge.port)
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
    await _connected(a, b, edge.port)
    sip = edge.platform.sip
    assert sip is not None and sip.active_dialogs > 0
    await sip.stop()
    await asyncio.sleep(0)
    assert sys.exc_info() == (None, None, None)
