"""What a SIPVicious-style scanner learns from the edge: nothing about who exists.

svwar and svcrack send REGISTER or INVITE for a list of extensions and compare the
answers: a 404 for some, a 401 for others, or even one header more or less, tells
them which extensions exist, and the number of wrong passwords allowed tells them how
fast they may guess. Here raw sockets (UDP, and TCP) send both methods for an existing
extension (1001) and for ones that do not exist (9999, 12345, admin), without
credentials and with credentials for a wrong password, and every answer must be the
same apart from what is fresh per request (nonce, tags) or echoed (Via, Call-ID, CSeq):
status, reason, the header names in order, and the challenges with nonce and opaque
blanked out.

Each extension is probed from its own loopback address (127.0.0.10 and up), as a
distributed scan would be: one address may fail four times (`auth_max_failures=4`
in conftest) before it is banned, and the ban is a test of its own below. Linux
routes all of 127.0.0.0/8 to lo; where binding 127.0.0.x fails, the tests skip.
"""

import asyncio
import contextlib
import re
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from telportal.config import parse_listen
from telportal.signaling.service import SipService
from telportal.sip import MessageFramer, Response, parse_message
from telportal.sip.digest import answer_challenge, parse_challenge
from tests.integration.signaling.conftest import PASSWORD, Edge, free_port

SERVER_HOST = "127.0.0.1"
USERS = ["1001", "9999", "12345", "admin"]
WRONG = "not-the-password"
TIMEOUT = 5.0
SDP = (
    "v=0\r\n"
    "o=scanner 2890844526 2890844526 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


def can_bind(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


def source_address(index: int) -> str:
    host = f"127.0.0.{10 + index}"
    if not can_bind(host):
        pytest.skip(f"cannot bind {host}: this system routes only 127.0.0.1 to loopback")
    return host


# --- a raw client ----------------------------------------------------------------------


class RawClient:
    """One source address and port speaking SIP over a raw UDP socket or TCP stream."""

    def __init__(self, transport: str, host: str, server_port: int) -> None:
        self.transport, self.host, self.server_port = transport, host, server_port
        self.port = 0
        self._stack = contextlib.AsyncExitStack()
        self._sock: socket.socket | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = MessageFramer()
        self._pending: list[Response] = []

    async def __aenter__(self) -> "RawClient":
        if self.transport == "UDP":
            sock = self._stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            sock.setblocking(False)
            sock.bind((self.host, 0))
            self._sock = sock
            self.port = sock.getsockname()[1]
        else:
            self._reader, self._writer = await asyncio.open_connection(
                SERVER_HOST, self.server_port, local_addr=(self.host, 0)
            )
            self._stack.push_async_callback(self._close_stream)
            self.port = self._writer.get_extra_info("sockname")[1]
        return self

    async def _close_stream(self) -> None:
        assert self._writer is not None
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def send(self, data: bytes) -> None:
        if self._sock is not None:
            loop = asyncio.get_running_loop()
            await loop.sock_sendto(self._sock, data, (SERVER_HOST, self.server_port))
        else:
            assert self._writer is not None
            self._writer.write(data)
            await self._writer.drain()

    async def _next(self) -> Response:
        while not self._pending:
            if self._sock is not None:
                loop = asyncio.get_running_loop()
                data = await loop.sock_recv(self._sock, 65535)
                messages = [parse_message(data)]
            else:
                assert self._reader is not None
                chunk = await self._reader.read(65535)
                assert chunk, "the edge closed the connection"
                messages = self._framer.feed(chunk)
            self._pending += [m for m in messages if isinstance(m, Response)]
        return self._pending.pop(0)

    async def exchange(self, data: bytes) -> Response:
        """Send a request; its final response (provisional ones and strays skipped)."""
        sent = parse_message(data)
        await self.send(data)
        async with asyncio.timeout(TIMEOUT):
            while True:
                response = await self._next()
                same = (response.call_id, str(response.cseq)) == (sent.call_id, str(sent.cseq))
                if same and response.status >= 200:
                    return response


@dataclass
class Dialog:
    """What stays the same across the requests of one probe: Call-ID, From tag, CSeq."""

    client: RawClient
    method: str
    user: str
    call_id: str = ""
    tag: str = ""
    cseq: int = 0
    branch: str = ""

    def __post_init__(self) -> None:
        self.call_id, self.tag = secrets.token_hex(10), secrets.token_hex(4)

    @property
    def uri(self) -> str:
        port = self.client.server_port
        if self.method == "REGISTER":
            return f"sip:{SERVER_HOST}:{port}"
        return f"sip:{self.user}@{SERVER_HOST}:{port}"

    def build(self, method: str, auth: str | None = None, to: str | None = None) -> bytes:
        client = self.client
        if method != "ACK":
            self.cseq += 1
            self.branch = f"z9hG4bK{secrets.token_hex(8)}"
        lines = [
            f"{method} {self.uri} SIP/2.0",
            f"Via: SIP/2.0/{client.transport} {client.host}:{client.port}"
            f";branch={self.branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{SERVER_HOST}>;tag={self.tag}",
            f"To: {to or f'<sip:{self.user}@{SERVER_HOST}>'}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            "User-Agent: friendly-scanner",
        ]
        body = ""
        if method != "ACK":
            lines.append(f"Contact: <sip:{self.user}@{client.host}:{client.port}>")
        if method == "REGISTER":
            lines.append("Expires: 300")
        if method == "INVITE":
            lines.append("Content-Type: application/sdp")
            body = SDP
        if auth is not None:
            lines.append(f"Authorization: {auth}")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    async def send(self, auth: str | None = None) -> Response:
        response = await self.client.exchange(self.build(self.method, auth))
        if self.method == "INVITE":
            # a final answer to an INVITE is acknowledged, or it is sent again (17.1.1.3)
            to = response.headers.get("To")
            await self.client.send(self.build("ACK", to=to))
        return response

    def answer(self, challenge: Response, password: str) -> str:
        values = challenge.headers.get_all("WWW-Authenticate")
        assert challenge.status == 401 and values, challenge
        cnonce = secrets.token_hex(4)
        return answer_challenge(values[0], self.method, self.uri, self.user, password, cnonce, 1)


Shape = tuple[int, str, list[str], list[tuple[str, str | None, tuple[str, ...]]], list[str]]


def shape(response: Response) -> Shape:
    """What a scanner could compare: everything but fresh values and echoes."""
    values = response.headers.get_all("WWW-Authenticate")
    challenges = [parse_challenge(value) for value in values]
    blanked = [re.sub(r'\b(nonce|opaque)="[^"]*"', r'\1="..."', value) for value in values]
    return (
        response.status,
        response.reason,
        [name for name, _ in response.headers],
        [(c.realm, c.algorithm, c.qop) for c in challenges],
        blanked,
    )


async def probe(edge: Edge, transport: str, host: str, method: str, user: str) -> list[Response]:
    """Without credentials, then with a wrong password: the two answers."""
    async with RawClient(transport, host, edge.port) as client:
        dialog = Dialog(client, method, user)
        first = await dialog.send()
        second = await dialog.send(dialog.answer(first, WRONG))
        return [first, second]


@pytest.fixture(params=["UDP", "TCP"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# Loop iterations enough for the edge to finish with the last packet before it stops.
QUIET = 0.2


@pytest.fixture
async def quiet_edge(edge: Edge) -> AsyncIterator[Edge]:
    """The edge, left alone for a moment before it stops.

    Works around the hang of SipService.stop() that test_stop_while_a_packet_is_handled
    shows: a packet the edge is still handling (the ACK a probe ends with) when stop()
    is called can make it wait forever.
    """
    yield edge
    await asyncio.sleep(QUIET)


async def test_existing_and_unknown_users_get_identical_answers(
    quiet_edge: Edge, transport: str
) -> None:
    edge = quiet_edge
    hosts = [source_address(i) for i in range(len(USERS))]
    answers: dict[tuple[str, str, str], Response] = {}
    for method in ("REGISTER", "INVITE"):
        for user, host in zip(USERS, hosts, strict=True):
            first, second = await probe(edge, transport, host, method, user)
            answers[method, user, "no credentials"] = first
            answers[method, user, "wrong password"] = second

    shapes = {key: shape(response) for key, response in answers.items()}
    reference = shapes["REGISTER", "1001", "no credentials"]
    status, reason, names, challenges, _ = reference
    assert (status, reason) == (401, "Unauthorized")
    assert names.count("WWW-Authenticate") == 2
    assert challenges == [("acme", "MD5", ("auth",)), ("acme", "SHA-256", ("auth",))]
    # the same for every user and both methods, with and without (wrong) credentials
    differing = {key: got for key, got in shapes.items() if got != reference}
    assert not differing, (reference, differing)
    # what differs is fresh per answer, never a function of the user
    nonces = {
        parse_challenge(r.headers.get_all("WWW-Authenticate")[0]).nonce for r in answers.values()
    }
    assert len(nonces) == len(answers)
    opaques = {
        parse_challenge(v).opaque
        for r in answers.values()
        for v in r.headers.get_all("WWW-Authenticate")
    }
    assert len(opaques) == 1


async def test_repeated_wrong_passwords_ban_the_address_and_no_other(
    quiet_edge: Edge, transport: str
) -> None:
    edge = quiet_edge
    scanner, bystander = SERVER_HOST, "127.0.0.2"
    if not can_bind(bystander):
        pytest.skip(f"cannot bind {bystander}: this system routes only 127.0.0.1 to loopback")
    async with RawClient(transport, scanner, edge.port) as client:
        # auth_max_failures=4: four wrong passwords, for an existing and an unknown user
        # alike, and each of them still gets the usual challenge.
        last: Response | None = None
        for user in ("1001", "9999", "1001", "admin"):
            dialog = Dialog(client, "REGISTER", user)
            last = await dialog.send(dialog.answer(await dialog.send(), WRONG))
            assert last.status == 401
        assert last is not None

        # From now on everything that needs credentials is refused, the right password
        # too (answering a challenge it was given before the ban), over any transport.
        register = Dialog(client, "REGISTER", "1001")
        assert (await register.send()).status == 403
        assert (await register.send(register.answer(last, PASSWORD))).status == 403
        invite = Dialog(client, "INVITE", "1002")
        assert (await invite.send()).status == 403
        unknown = Dialog(client, "REGISTER", "9999")
        assert shape(await unknown.send()) == shape(await register.send())
    other = "TCP" if transport == "UDP" else "UDP"
    async with RawClient(other, scanner, edge.port) as client:
        assert (await Dialog(client, "REGISTER", "1001").send()).status == 403

    # Another address is served as ever: challenged, then registered.
    async with RawClient(transport, bystander, edge.port) as client:
        dialog = Dialog(client, "REGISTER", "1001")
        challenge = await dialog.send()
        assert challenge.status == 401
        ok = await dialog.send(dialog.answer(challenge, PASSWORD))
        assert ok.status == 200, ok.reason
        assert len(ok.headers.get_all("Contact")) == 1


async def test_the_ban_holds_for_every_user_and_method(quiet_edge: Edge) -> None:
    """After the ban, existing and unknown users get the same 403 from the banned address."""
    edge = quiet_edge
    async with RawClient("UDP", SERVER_HOST, edge.port) as client:
        await ban(client)
        shapes = []
        for method in ("REGISTER", "INVITE"):
            for user in USERS:
                response = await Dialog(client, method, user).send()
                assert response.status == 403, (method, user)
                shapes.append(shape(response))
    assert all(s == shapes[0] for s in shapes)
    assert "WWW-Authenticate" not in shapes[0][2]


async def ban(client: RawClient) -> None:
    """auth_max_failures=4 wrong passwords from the client's address."""
    for _ in range(4):
        dialog = Dialog(client, "REGISTER", "12345")
        await dialog.send(dialog.answer(await dialog.send(), WRONG))


async def test_a_banned_address_gets_nothing_else_either(quiet_edge: Edge) -> None:
    async with RawClient("UDP", SERVER_HOST, quiet_edge.port) as client:
        await ban(client)
        try:
            answer = await asyncio.wait_for(Dialog(client, "OPTIONS", "1001").send(), 1.0)
        except TimeoutError:
            return  # ignored: fine
    assert answer.status == 403, (answer.status, answer.headers.get("Server"))


async def test_stop_while_a_packet_is_handled(edge: Edge) -> None:
    """A scanner's packet arriving as the service shuts down must not hang the shutdown."""
    platform = edge.platform
    assert platform.sip is not None
    clock, bus, directory = platform.sip.clock, platform.sip.bus, platform.sip.directory
    loop = asyncio.get_running_loop()
    hung: list[int] = []
    for iterations in range(8):
        listen = parse_listen(f"{SERVER_HOST}:{free_port()}")
        config = platform.config.model_copy(update={"sip_listen": listen})
        service = SipService(config, clock, bus, directory)
        await service.start()
        server = (SERVER_HOST, service.listeners[0].port)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.bind((SERVER_HOST, 0))
                client = RawClient("UDP", SERVER_HOST, server[1])
                client.port = sock.getsockname()[1]  # only for the Via and Contact
                dialog = Dialog(client, "OPTIONS", "1001")
                # One answered request arms a timer (Timer J keeps its transaction 32 s)...
                await loop.sock_sendto(sock, dialog.build("OPTIONS"), server)
                await asyncio.wait_for(loop.sock_recv(sock, 65535), TIMEOUT)
                # ...then the next packet is still being handled when stop() is called.
                await loop.sock_sendto(sock, dialog.build("OPTIONS"), server)
                for _ in range(iterations):
                    await asyncio.sleep(0)
                try:
                    await asyncio.wait_for(asyncio.shield(service.stop()), 1.0)
                except TimeoutError:
                    hung.append(iterations)
        finally:
            await asyncio.wait_for(service.stop(), TIMEOUT)  # a second stop() ends it
    assert not hung, f"stop() hung when called {hung} loop iterations after a packet"
