"""The SIP edge over real sockets on 127.0.0.1: registration, authentication, OPTIONS."""

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator

import pytest

from telportal.events import PhoneRegistration
from telportal.net import Peer, SipTransportLayer, Source, Transport
from telportal.sip import Request, Response
from telportal.sip.digest import answer_challenge, parse_challenge
from tests.integration.signaling.conftest import PASSWORD, Edge


class Phone:
    """A minimal SIP client on our own transport layer."""

    def __init__(self, layer: SipTransportLayer, server: Peer, local_port: int) -> None:
        self.layer, self.server, self.local_port = layer, server, local_port
        self.call_id = secrets.token_hex(8)
        self.cseq = 0

    def register(
        self, user: str, *, to_user: str | None = None, auth: str | None = None, expires: int = 300
    ) -> bytes:
        self.cseq += 1
        transport = self.server.transport.via_token
        lines = [
            f"REGISTER sip:127.0.0.1:{self.server.port} SIP/2.0",
            f"Via: SIP/2.0/{transport} 127.0.0.1:{self.local_port}"
            f";branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{user}@127.0.0.1>;tag={secrets.token_hex(4)}",
            f"To: <sip:{to_user or user}@127.0.0.1>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <sip:{user}@127.0.0.1:{self.local_port};transport={self.server.transport}>",
            f"Expires: {expires}",
            "User-Agent: test-phone",
        ]
        if auth:
            lines.append(f"Authorization: {auth}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    async def exchange(self, data: bytes) -> Response:
        await self.layer.send(data, self.server)
        while True:
            incoming = await asyncio.wait_for(self.layer.receive(), 10)
            if isinstance(incoming.message, Response):
                return incoming.message
            await self.answer(incoming.message, incoming.source)

    async def answer(self, request: Request, source: Source) -> None:
        from telportal.sip import make_response

        await self.layer.respond(make_response(request, 200), source)

    async def login(self, user: str, password: str, **kw: str) -> Response:
        first = await self.exchange(self.register(user, **kw))
        assert first.status == 401
        challenge = first.headers.get_all("WWW-Authenticate")[0]
        uri = f"sip:127.0.0.1:{self.server.port}"
        auth = answer_challenge(challenge, "REGISTER", uri, user, password, secrets.token_hex(4), 1)
        return await self.exchange(self.register(user, auth=auth, **kw))


@pytest.fixture
async def phone(edge: Edge) -> AsyncIterator[Phone]:
    async with SipTransportLayer() as layer:
        listener = await layer.listen(Transport.UDP, "127.0.0.1", 0)
        yield Phone(layer, Peer(Transport.UDP, "127.0.0.1", edge.port), listener.port)


async def test_register_challenge_then_success(edge: Edge, phone: Phone) -> None:
    sub = edge.platform.bus.subscribe("phone")
    first = await phone.exchange(phone.register("1001"))
    assert first.status == 401
    challenges = [parse_challenge(v) for v in first.headers.get_all("WWW-Authenticate")]
    assert [c.algorithm for c in challenges] == ["MD5", "SHA-256"]
    assert {c.realm for c in challenges} == {"acme"}
    ok = await phone.login("1001", PASSWORD)
    assert ok.status == 200, ok.reason
    contacts = ok.headers.get_all("Contact")
    assert len(contacts) == 1 and ";expires=300" in contacts[0]
    assert (ok.headers.get("Server") or "").startswith("Telportal/")
    assert edge.platform.sip is not None
    acme = edge.platform.sip.directory.tenant_for_domain("acme")
    assert acme is not None
    tenant_id = acme.tenant_id
    bindings = edge.platform.sip.location.lookup(f"{tenant_id}/1001")
    assert [b.user_agent for b in bindings] == ["test-phone"]
    event = await asyncio.wait_for(sub.get(), 5)
    assert isinstance(event, PhoneRegistration)
    assert (event.extension, event.change, event.reachable) == ("1001", "added", True)
    assert event.user_id

    # Unregister: the binding goes and the ACD hears the phone is gone.
    bye = await phone.login("1001", PASSWORD, expires="0")  # type: ignore[arg-type]
    assert bye.status == 200 and bye.headers.get_all("Contact") == []
    event = await asyncio.wait_for(sub.get(), 5)
    assert isinstance(event, PhoneRegistration) and not event.reachable


async def test_unknown_user_and_wrong_password_look_the_same(phone: Phone) -> None:
    def shape(r: Response) -> tuple[int, str, list[tuple[str | None, str | None, str | None]]]:
        cs = [parse_challenge(v) for v in r.headers.get_all("WWW-Authenticate")]
        return r.status, r.reason, [(c.realm, c.algorithm, c.qop) for c in cs]

    wrong = await phone.login("1001", "not-the-password")
    unknown = await phone.login("9999", PASSWORD)
    assert wrong.status == 401
    assert shape(wrong) == shape(unknown)


async def test_cannot_register_someone_elses_address(phone: Phone) -> None:
    r = await phone.login("1001", PASSWORD, to_user="1002")
    assert r.status == 403


async def test_repeated_failures_ban_the_source(phone: Phone) -> None:
    for _ in range(4):
        await phone.login("1001", "not-the-password")
    r = await phone.exchange(phone.register("1001"))
    assert r.status == 403  # even the first, unauthenticated step is refused now


async def test_options_and_unsupported_methods(phone: Phone) -> None:
    def request(method: str) -> bytes:
        return (
            f"{method} sip:127.0.0.1:{phone.server.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{phone.local_port}"
            f";branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\n"
            f"Call-ID: {secrets.token_hex(8)}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    r = await phone.exchange(request("OPTIONS"))
    assert r.status == 200 and "REGISTER" in (r.headers.get("Allow") or "")
    assert (await phone.exchange(request("PUBLISH"))).status == 501
    # A malformed request is answered 400 naming the problem, and service goes on.
    # (A raw socket reads the answer: our own parser would refuse its copied bad CSeq.)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.setblocking(False)
        raw.bind(("127.0.0.1", 0))
        broken = request("OPTIONS").replace(b"CSeq: 1 OPTIONS", b"CSeq: x OPTIONS")
        await loop.sock_sendto(raw, broken, ("127.0.0.1", phone.server.port))
        answer = await asyncio.wait_for(loop.sock_recv(raw, 65535), 10)
    status_line = answer.split(b"\r\n", 1)[0].decode()
    assert status_line.startswith("SIP/2.0 400 ") and "CSeq" in status_line
    assert (await phone.exchange(request("OPTIONS"))).status == 200


async def test_keepalive_marks_tcp_phone_down_when_its_connection_goes(edge: Edge) -> None:
    sip = edge.platform.sip
    assert sip is not None
    async with SipTransportLayer() as layer:
        listener = await layer.listen(Transport.TCP, "127.0.0.1", 0)
        phone = Phone(layer, Peer(Transport.TCP, "127.0.0.1", edge.port), listener.port)
        assert (await phone.login("1002", PASSWORD)).status == 200
        answering = asyncio.create_task(_answer_forever(layer))
        try:
            sub = edge.platform.bus.subscribe("phone")
            await sip.keepalive_round()
            assert sub.get_nowait() is None  # answered: still up, no event
        finally:
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
    # The phone's connection is closed now: the next keep-alive marks it down.
    await sip.keepalive_round()
    event = sub.get_nowait()
    assert isinstance(event, PhoneRegistration) and event.change == "down" and not event.reachable


async def _answer_forever(layer: SipTransportLayer) -> None:
    from telportal.sip import make_response

    while True:
        incoming = await layer.receive()
        if isinstance(incoming.message, Request):
            await layer.respond(make_response(incoming.message, 200), incoming.source)


@pytest.mark.parametrize("edge", [{"digest_algorithms": ("SHA-256", "MD5")}], indirect=True)
async def test_site_may_offer_sha256_first(phone: Phone) -> None:
    first = await phone.exchange(phone.register("1001"))
    challenges = [parse_challenge(v) for v in first.headers.get_all("WWW-Authenticate")]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    ok = await phone.login("1001", PASSWORD)  # our client answers the first: SHA-256
    assert ok.status == 200
