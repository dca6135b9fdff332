"""Scripted phones for the B2BUA's tests: each a SIP transport layer on a real UDP
socket that sends the lines a test writes and keeps what it receives in an inbox.
`phones` (conftest.py) gives a caller 1001 and a callee 1002, registered."""

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from telportal.net import Peer, SipTransportLayer, Source, Transport
from telportal.sip import Request, Response, make_response
from telportal.sip.digest import answer_challenge

# The demo phones' password (`seed_demo`), which the edge fixture seeds.
PASSWORD = "phone-pass-1"

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
        max_forwards: int = 70,
        contact: str | None = None,
    ) -> bytes:
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch};rport",
            f"Max-Forwards: {max_forwards}",
            f"From: <sip:{self.user}@127.0.0.1>;tag=from-{self.user}",
            f"To: <{to or uri}>{';tag=' + to_tag if to_tag else ''}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <{contact or self.contact}>",
            *extra,
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        return ("\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    @property
    def contact(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.port}"

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
        self,
        request: Request,
        status: int,
        *,
        to_tag: str = "callee",
        body: bytes = b"",
        extra: tuple[tuple[str, str], ...] = (),
        contact: str | None = None,
    ) -> None:
        headers = [("Contact", f"<{contact or self.contact}>"), *extra]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        # A request inside a dialog has our tag in its To already.
        tag = None if request.method == "BYE" or request.to.tag else to_tag
        response = make_response(request, status, to_tag=tag, headers=headers, body=body)
        await self.layer.send(response.to_bytes(), self.server)


async def pump(phone: Phone) -> None:
    while True:
        incoming = await phone.layer.receive()
        await phone.inbox.put((incoming.message, incoming.source))


@contextlib.asynccontextmanager
async def scripted_phone(port: int, user: str) -> AsyncIterator[Phone]:
    """One more socket talking to the server at `port`, not registered: a second
    address of a phone, or a proxy in its path."""
    async with SipTransportLayer() as layer:
        listener = await layer.listen(Transport.UDP, "127.0.0.1", 0)
        phone = Phone(layer, listener.port, Peer(Transport.UDP, "127.0.0.1", port), user)
        task = asyncio.create_task(pump(phone))
        try:
            yield phone
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def registered_phones(port: int) -> AsyncIterator[tuple[Phone, Phone]]:
    """A caller and a callee (registered) talking to the server at `port`."""
    server = Peer(Transport.UDP, "127.0.0.1", port)
    async with SipTransportLayer() as a_layer, SipTransportLayer() as b_layer:
        a = Phone(
            a_layer, (await a_layer.listen(Transport.UDP, "127.0.0.1", 0)).port, server, "1001"
        )
        b = Phone(
            b_layer, (await b_layer.listen(Transport.UDP, "127.0.0.1", 0)).port, server, "1002"
        )
        pumps = [asyncio.create_task(pump(p)) for p in (a, b)]
        try:
            await register(b, port)
            yield a, b
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)


async def register(phone: Phone, port: int) -> None:
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


async def place_call(
    a: Phone,
    port: int,
    to: str,
    extra: tuple[str, ...] = (),
    *,
    max_forwards: int = 70,
    contact: str | None = None,
) -> tuple[str, str, str]:
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
            "INVITE",
            uri,
            2,
            call_id,
            [f"Authorization: {auth}", *extra],
            branch=branch,
            body=SDP,
            max_forwards=max_forwards,
            contact=contact,
        )
    )
    return uri, call_id, branch


async def answered_call(
    a: Phone, b: Phone, port: int, *, contact: str | None = None
) -> tuple[str, str, Request, Response]:
    """A call from a (with this Contact, if given) to b that b answers and the server
    acknowledges to b; a has its 200 and has not acknowledged it. (uri, call_id, the
    INVITE b got, a's 200)."""
    uri, call_id, _ = await place_call(a, port, "1002", contact=contact)
    invite = await b.next("INVITE")
    assert isinstance(invite, Request)
    await b.reply(invite, 200, body=SDP)
    ok = await a.next("200")
    assert isinstance(ok, Response)
    await b.next("ACK")
    return uri, call_id, invite, ok


async def connected_call(a: Phone, b: Phone, port: int) -> tuple[str, str, Response]:
    """A call from a to b, answered and ACKed on both sides; (uri, call_id, the 200)."""
    uri, call_id, _, ok = await answered_call(a, b, port)
    await a.send(a.line("ACK", uri, 2, call_id, [], to_tag=ok.to.tag or ""))
    return uri, call_id, ok


async def caller_hangs_up(a: Phone, b: Phone, uri: str, call_id: str, cseq: int, tag: str) -> None:
    """a's BYE, answered 200 by the server, which sends b its BYE; b answers it."""
    await a.send(a.line("BYE", uri, cseq, call_id, [], to_tag=tag))
    assert (await a.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
    bye = await b.next("BYE")
    assert isinstance(bye, Request)
    await b.reply(bye, 200)


def callee_request(
    b: Phone, port: int, invite: Request, method: str, cseq: int = 1, body: bytes = b""
) -> bytes:
    """A request of the callee's in the call `invite` put to it (b answers with tag
    `callee`)."""
    return b.line(
        method, f"sip:telportal@127.0.0.1:{port}", cseq, invite.call_id, [],
        to_tag=invite.from_.tag or "", body=body,
    ).replace(f"tag=from-{b.user}".encode(), b"tag=callee")  # fmt: skip


def callee_bye(b: Phone, port: int, invite: Request) -> bytes:
    """The callee's BYE for the call `invite` put to it."""
    return callee_request(b, port, invite, "BYE")
