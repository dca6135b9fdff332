"""Every RFC 4475 / RFC 5118 torture message, byte for byte, over UDP to the running edge.

`tests/conformance/test_torture.py` holds the message layer to `verdicts.tsv`; this
replays the same files at a real `SipService` and checks what comes back on the wire.

Where answers go. A request the transport refuses (400, 505, 513, 416, ...) is answered
at the packet's source address. A request that reaches the transaction user is answered
by its Via (RFC 3261 18.2.2): the edge stamps `received=127.0.0.1` whenever the sent-by
host is not the packet's source (18.2.1), so the answer goes to 127.0.0.1 at `rport`
(our source port) when the client asked for it, else at the sent-by port (5060 when
absent), whatever host the Via names. A raw socket bound on 127.0.0.1 at each such port
reads those answers. Where a port is taken on this machine, the answer is read from a
record of what the edge's transport layer sent instead (marked "log:" in the table);
that record also shows that nothing was sent anywhere else.

After every message the edge must answer an OPTIONS (it is alive and in order), and
after all of them an OPTIONS with 200 and a REGISTER with a 401 challenge.
"""

import asyncio
import contextlib
import re
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from telportal.net import Transport
from telportal.sip import Request, Response, SipParseError, parse_message
from tests.integration.signaling.conftest import Edge

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "sip-conformance"
VERDICTS = CORPUS / "verdicts.tsv"

LOCALHOST = "127.0.0.1"
SETTLE = 0.05  # after the liveness probe is answered, for anything still in flight
PROBE_TIMEOUT = 5.0
SYNTAX_CODES = {400, 505, 513}


@dataclass(frozen=True)
class Case:
    path: str
    kind: str
    note: str

    @property
    def codes(self) -> set[int]:
        """Status codes the note asks for; "not 400" excludes one rather than asking for it."""
        return {int(code) for code in re.findall(r"(?<!not )\b([1-6][0-9]{2})\b", self.note)}

    @property
    def data(self) -> bytes:
        return (CORPUS / self.path).read_bytes()


def load_cases() -> list[Case]:
    if not VERDICTS.is_file():
        return []
    cases = []
    for line in VERDICTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            path, kind, note = line.split("\t")
            cases.append(Case(path, kind, note))
    return cases


CASES = load_cases()


# --- reading raw messages (answers to torture messages may not survive our parser) ------


def head_lines(data: bytes) -> list[str]:
    head = re.split(rb"\r?\n\r?\n", data.lstrip(b"\r\n"), maxsplit=1)[0]
    text = re.sub(r"\r?\n[ \t]+", " ", head.decode("utf-8", "surrogateescape"))
    return re.split(r"\r?\n", text)


COMPACT = {"call-id": "i", "via": "v", "from": "f", "to": "t"}


def header_values(data: bytes, name: str) -> list[str]:
    names = {name.lower(), COMPACT.get(name.lower(), name.lower())}
    values = []
    for line in head_lines(data)[1:]:
        key, colon, value = line.partition(":")
        if colon and key.strip(" \t").lower() in names:
            values.append(value.strip(" \t"))
    return values


def identity(data: bytes) -> tuple[str | None, str | None, str | None]:
    """Top branch, CSeq and Call-ID: what ties an answer to the request it answers."""
    via = next(iter(header_values(data, "Via")), "")
    branch = re.search(r";[ \t]*branch[ \t]*=[ \t]*([^;, \t]+)", via, re.IGNORECASE)
    cseq = next(iter(header_values(data, "CSeq")), None)
    return (
        branch.group(1) if branch else None,
        re.sub(r"[ \t]+", " ", cseq) if cseq else None,
        next(iter(header_values(data, "Call-ID")), None),
    )


def cseq_method(data: bytes) -> str:
    return (identity(data)[1] or "").rpartition(" ")[2]


def status_of(data: bytes) -> tuple[int, str] | None:
    match = re.fullmatch(r"SIP/2\.0 ([1-6][0-9]{2}) ?(.*)", head_lines(data)[0], re.DOTALL)
    return (int(match.group(1)), match.group(2)) if match else None


# --- what was seen ---------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    reason: str
    at: str  # "source", "via:<port>" (a socket of ours) or "log:<port>" (the send record)
    data: bytes
    resent: bool  # the answer of an earlier message the edge matched this one to

    def header(self, name: str) -> list[str]:
        return header_values(self.data, name)

    def __str__(self) -> str:
        return f"{self.status}{'(resent)' if self.resent else ''}@{self.at}"


@dataclass
class Observation:
    case: Case
    is_request: bool
    route: str  # where the transaction user's answer would go
    answers: list[Answer] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def finals(self) -> list[Answer]:
        return [a for a in self.answers if a.status >= 200]

    def summary(self) -> str:
        got = ", ".join(map(str, self.answers)) or "nothing"
        moved = ",".join(f"{k}+{v}" for k, v in sorted(self.counters.items()) if v) or "-"
        return f"{self.case.path:38} {self.case.kind:8} {self.route:10} {got:24} [{moved}]"


# --- sockets -------------------------------------------------------------------------


def udp_socket(stack: contextlib.ExitStack, port: int = 0) -> socket.socket:
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.setblocking(False)
    sock.bind((LOCALHOST, port))
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    datagrams = []
    while True:
        try:
            datagrams.append(sock.recv(65535))
        except BlockingIOError:
            return datagrams
        except ConnectionRefusedError:  # ICMP for an earlier send from this socket
            continue


@dataclass
class SentRecord:
    """What the edge's transport layer sent, in order: (host, port, bytes)."""

    entries: list[tuple[str, int, bytes]] = field(default_factory=list)

    def since(self, start: int, port: int) -> list[bytes]:
        return [data for _, p, data in self.entries[start:] if p == port]

    @property
    def payloads(self) -> set[bytes]:
        return {data for _, _, data in self.entries}


@contextlib.contextmanager
def recording_sends(edge: Edge) -> Iterator[SentRecord]:
    sip = edge.platform.sip
    assert sip is not None
    layer = sip.transport
    # Every datagram the layer sends, by `send` or by the synchronous `send_now` /
    # `respond_now` the SIP service uses first, passes its tap.
    record = SentRecord()

    def tap(host: str, port: int, data: bytes) -> None:
        record.entries.append((host, port, data))

    layer.udp_tap = tap
    try:
        yield record
    finally:
        layer.udp_tap = None


class Listening:
    """Our sockets: the sender, the liveness probe, and one per Via port (None if taken).

    An INVITE's non-2xx answer is retransmitted until an ACK that never comes (Timer G,
    RFC 3261 17.2.1), so copies of earlier answers keep arriving; they are remembered
    and never taken for the answer to a later message.
    """

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self.sender = udp_socket(stack)
        self.probe = udp_socket(stack)
        self.sinks: dict[int, socket.socket | None] = {}
        self.invite_answers: set[bytes] = set()

    def sink(self, port: int) -> socket.socket | None:
        if port not in self.sinks:
            try:
                self.sinks[port] = udp_socket(self.stack, port)
            except OSError:  # in use on this machine: read the send record instead
                self.sinks[port] = None
        return self.sinks[port]

    def remember(self, datagrams: list[bytes]) -> list[bytes]:
        new = [d for d in datagrams if d not in self.invite_answers]
        self.invite_answers.update(d for d in new if cseq_method(d) == "INVITE")
        return new

    def clear(self) -> None:
        for sock in (self.sender, *self.sinks.values()):
            if sock is not None:
                self.remember(drain(sock))


def request(port: int, local_port: int, method: str = "OPTIONS", user: str = "probe") -> bytes:
    return (
        f"{method} sip:{LOCALHOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {LOCALHOST}:{local_port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@{LOCALHOST}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{user}@{LOCALHOST}>\r\n"
        f"Call-ID: {secrets.token_hex(12)}\r\n"
        f"CSeq: 1 {method}\r\n"
        f"Contact: <sip:{user}@{LOCALHOST}:{local_port}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def exchange(sock: socket.socket, data: bytes, server: tuple[str, int]) -> Response:
    """Send a request of ours and return its final response."""
    loop = asyncio.get_running_loop()
    wanted = identity(data)
    await loop.sock_sendto(sock, data, server)
    async with asyncio.timeout(PROBE_TIMEOUT):
        while True:
            reply = await loop.sock_recv(sock, 65535)
            if identity(reply) != wanted:
                continue  # a late answer to something earlier
            message = parse_message(reply)
            assert isinstance(message, Response)
            if message.status >= 200:
                return message


# --- the run ---------------------------------------------------------------------------


def answer_port(data: bytes) -> tuple[str, int | None]:
    """Where the transaction user's answer goes: rport (our socket) or a Via port."""
    try:
        message = parse_message(data)
        via = message.top_via if isinstance(message, Request) else None
    except SipParseError:
        return "source", None  # only the transport can answer it, at the source
    if via is None:
        return "none", None  # a response: nothing answers it
    if via.wants_rport:
        return "rport", None
    return "via", via.port or 5060


async def observe(edge: Edge, case: Case, ours: Listening, record: SentRecord) -> Observation:
    loop = asyncio.get_running_loop()
    sip = edge.platform.sip
    assert sip is not None
    counters = sip.transport.counters[Transport.UDP]
    server = (LOCALHOST, edge.port)
    data = case.data
    route, port = answer_port(data)
    sink = ours.sink(port) if port is not None else None
    observation = Observation(case, is_request=not data.startswith(b"SIP/"), route=route)
    ours.clear()
    before, start = counters.snapshot(), len(record.entries)

    await loop.sock_sendto(ours.sender, data, server)
    # The edge handles datagrams in order: once this is answered, so is the torture message.
    probe = request(edge.port, ours.probe.getsockname()[1])
    alive = await exchange(ours.probe, probe, server)
    assert alive.status == 200, f"{case.path}: the edge stopped answering ({alive.status})"
    await asyncio.sleep(SETTLE)

    received: list[tuple[str, bytes]] = [("source", d) for d in ours.remember(drain(ours.sender))]
    if port is not None:
        if sink is not None:
            sent = record.payloads  # another process's packets are not ours to judge
            datagrams = [d for d in drain(sink) if d in sent]
            observation.route = at = f"via:{port}"
        else:
            datagrams = record.since(start, port)
            observation.route = at = f"log:{port}"
        received += [(at, d) for d in ours.remember(datagrams)]

    branch, cseq, call_id = identity(data)
    for at, reply in received:
        status = status_of(reply)
        if status is None:
            pytest.fail(f"{case.path}: not a SIP response: {reply[:200]!r}")
        got_branch, got_cseq, got_call_id = identity(reply)
        # Several torture messages share a branch and sent-by with an earlier one: the
        # edge takes them for retransmissions and sends that transaction's answer again
        # (RFC 3261 17.2.3), which carries the earlier message's CSeq and Call-ID.
        if (got_branch, cseq_method(reply)) == (branch, cseq_method(data)):
            resent = (got_cseq, got_call_id) != (cseq, call_id)
            observation.answers.append(Answer(*status, at, reply, resent))

    after = counters.snapshot()
    observation.counters = {
        name: after[name] - before[name] for name in ("messages_in", "rejected", "dropped")
    }
    observation.counters["messages_in"] -= 1  # the probe
    return observation


def problems(o: Observation) -> list[str]:
    """How an observation departs from the verdict table (empty when it conforms)."""
    case, finals = o.case, o.finals
    found: list[str] = []

    def need(condition: bool, what: str) -> None:
        if not condition:
            found.append(f"{case.path} ({case.kind}: {case.note}): {what}; saw {o.summary()}")

    need(len(finals) <= 1, "one final answer at most")
    if not o.is_request:
        need(not o.answers, "a response is never answered")
        need(o.counters["rejected"] == 0, "a response is never refused with a reply")
        return found
    refused_at_source = [a.at for a in finals] == ["source"] and o.counters["rejected"] == 1
    if case.kind == "valid":
        if o.counters["rejected"]:
            # an unknown method may be refused as such (RFC 3261 8.2.1), never for syntax
            allowed = {405, 501} & (case.codes or {405, 501})
            need(refused_at_source, "refused at the source address")
            need(all(a.status in allowed for a in finals), f"status in {sorted(allowed)}")
        else:
            need(o.counters["messages_in"] == 1, "reaches the transaction user")
            need(len(finals) == 1, "gets a final answer")
        for answer in finals:
            allowed = case.codes or set(range(200, 700)) - SYNTAX_CODES
            need(answer.status in allowed, f"status in {sorted(case.codes) or 'non-syntax'}")
            if answer.status == 401:
                need(bool(answer.header("WWW-Authenticate")), "a 401 carries a challenge")
    elif case.kind == "invalid":
        need(o.counters["messages_in"] == 0, "never processed")
        if "(drop)" in case.note:
            need(not o.answers, "dropped without an answer")
            need(o.counters["dropped"] == 1, "counted as dropped")
        else:
            # refused by the transport, answered at the source whatever the Via says
            allowed = case.codes or {400}
            need(refused_at_source, "refused at the source address")
            need(all(a.status in allowed for a in finals), f"status in {sorted(allowed)}")
    elif case.kind == "semantic":
        need(o.counters["messages_in"] == 0, "never processed")
        need(refused_at_source, "refused at the source address")
        need(all(a.status in case.codes for a in finals), f"status in {sorted(case.codes)}")
    else:  # either: any outcome but a crash
        need(all(200 <= a.status < 700 for a in finals), "a final status")
    return found


def tally(observations: list[Observation]) -> str:
    counts = Counter(", ".join(str(a.status) for a in o.finals) or "none" for o in observations)
    return "final answers: " + "; ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


@pytest.fixture
async def quiet_edge(edge: Edge) -> AsyncIterator[Edge]:
    """The edge, left alone for a moment before it stops: SipService.stop() can hang when
    a packet is still being handled (see test_scanner.py::test_stop_while_a_packet_is_handled).
    """
    yield edge
    await asyncio.sleep(0.2)


async def test_every_torture_message_over_udp(quiet_edge: Edge) -> None:
    edge = quiet_edge
    # A missing corpus (../shared beside the repository) fails here, never skips.
    assert CASES, f"no SIP conformance messages at {CORPUS}"
    observations: list[Observation] = []
    server = (LOCALHOST, edge.port)
    with contextlib.ExitStack() as stack, recording_sends(edge) as record:
        ours = Listening(stack)
        for case in CASES:
            observations.append(await observe(edge, case, ours, record))

        # Still serving after all of them: OPTIONS 200, and a REGISTER is challenged.
        fresh = udp_socket(stack)
        local = fresh.getsockname()[1]
        assert (await exchange(fresh, request(edge.port, local), server)).status == 200
        challenge = await exchange(fresh, request(edge.port, local, "REGISTER", "1001"), server)
        assert challenge.status == 401
        assert challenge.headers.get_all("WWW-Authenticate")

    table = "\n".join(o.summary() for o in observations)
    legend = "file / verdict / where a processed request is answered / answers [counters]"
    print(f"\nwhat came back over UDP ({legend}):\n{table}\n{tally(observations)}")
    found = [problem for o in observations for problem in problems(o)]
    assert not found, "\n".join(found)
    # The torture Vias name hosts all over the Internet, a broadcast address among them
    # (bcast.dat): every answer went to the address the packets really came from.
    assert {host for host, _, _ in record.entries} == {LOCALHOST}
    bcast = next(o for o in observations if o.case.path == "rfc4475/bcast.dat")
    assert not bcast.answers
    assert bcast.counters == {"messages_in": 1, "rejected": 0, "dropped": 0}


def to_tag(response: Response) -> str | None:
    return response.to.tag


@pytest.mark.parametrize(
    ("method", "status"),
    [
        # refused by the transport layer (validate.screen_datagram), which tags the To
        ("NOTAMETHOD", 501),
        pytest.param(
            "OPTIONS",
            200,
        ),
        pytest.param(
            "REGISTER",
            401,
        ),
        pytest.param(
            "INVITE",
            401,
        ),
        pytest.param(
            "PUBLISH",
            501,
        ),
    ],
)
async def test_final_answers_tag_the_to_header(quiet_edge: Edge, method: str, status: int) -> None:
    """RFC 3261 8.2.6.2: a UAS MUST add a tag to the To header of every response but 100."""
    with contextlib.ExitStack() as stack:
        sock = udp_socket(stack)
        data = request(quiet_edge.port, sock.getsockname()[1], method, "1001")
        response = await exchange(sock, data, (LOCALHOST, quiet_edge.port))
    assert response.status == status
    assert to_tag(response), response.headers.get("To")
