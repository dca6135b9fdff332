"""What a running `telportal serve` makes of hostile traffic: torture messages, scanners,
password guessing. All of it from 127.0.0.1 (the scanner tests of tests/integration
also spread a scan over 127.0.0.x addresses; here one address does everything).

The SIP lockout is configured small so that the ban can be watched from start to end:
`auth_max_failures` wrong passwords within `auth_window_seconds` ban the address for
`auth_ban_seconds`. The probes before the ban test stay below the limit.
"""

import asyncio
import contextlib
import socket
from collections import Counter
from dataclasses import dataclass, field

import pytest

from telportal.sip import Response
from telportal.sip.digest import parse_challenge
from tests.e2e.serve.conftest import HOST, PASSWORD, Server
from tests.integration.signaling.test_conformance_udp import (
    CASES,
    CORPUS,
    SYNTAX_CODES,
    VERDICTS,
    Case,
    Listening,
    answer_port,
    cseq_method,
    exchange,
    identity,
    request,
    status_of,
    udp_socket,
)
from tests.integration.signaling.test_scanner import WRONG, Dialog, RawClient, shape

MAX_FAILURES = 30
WINDOW = 1
BAN = 2
SERVER_SETTINGS = {
    "sip": {
        "keepalive_seconds": 3600,
        "auth_max_failures": MAX_FAILURES,
        "auth_window_seconds": WINDOW,
        "auth_ban_seconds": BAN,
    }
}
USERS = ["1001", "9999", "12345", "admin"]  # one extension that exists, three that do not
SETTLE = 0.05


# --- torture messages -----------------------------------------------------------------


@dataclass
class Seen:
    """The answers to one torture message that came back to our sockets."""

    case: Case
    route: str  # "rport", "via" (to 127.0.0.1 at the Via port), "source" or "none"
    visible: bool  # whether an answer could reach a socket of ours
    finals: list[tuple[int, str]] = field(default_factory=list)  # (status, where)
    provisional: int = 0

    def summary(self) -> str:
        got = ", ".join(f"{status}@{at}" for status, at in self.finals) or "nothing"
        return f"{self.case.path:38} {self.case.kind:8} {self.route:6} {got}"


def drain_from(sock: socket.socket, source: tuple[str, int]) -> list[bytes]:
    """What is waiting on `sock` from `source` (our server): a Via port such as 5060 may
    also get packets from other processes (another test run's server answering the same
    torture message, with the same branch)."""
    datagrams = []
    while True:
        try:
            data, sender = sock.recvfrom(65535)
        except BlockingIOError:
            return datagrams
        except ConnectionRefusedError:  # ICMP for an earlier send from this socket
            continue
        if sender == source:
            datagrams.append(data)


async def observe(server: Server, case: Case, ours: Listening) -> Seen:
    loop = asyncio.get_running_loop()
    target = (HOST, server.sip_port)
    data = case.data
    route, port = answer_port(data)
    sink = ours.sink(port) if port is not None else None
    seen = Seen(case, route, visible=port is None or sink is not None)
    ours.clear()
    await loop.sock_sendto(ours.sender, data, target)
    # Datagrams are handled in order: once the probe is answered, so is the message.
    probe = request(server.sip_port, ours.probe.getsockname()[1])
    alive = await exchange(ours.probe, probe, target)
    assert alive.status == 200, f"{case.path}: the server stopped answering ({alive.status})"
    await asyncio.sleep(SETTLE)

    replies = [("source", d) for d in ours.remember(drain_from(ours.sender, target))]
    if sink is not None:
        replies += [(f"via:{port}", d) for d in ours.remember(drain_from(sink, target))]
    branch, _, _ = identity(data)
    for at, reply in replies:
        if (identity(reply)[0], cseq_method(reply)) != (branch, cseq_method(data)):
            continue  # another message's answer (or another process's packet at a Via port)
        status = status_of(reply)
        assert status is not None, f"{case.path}: not a SIP response: {reply[:200]!r}"
        if status[0] >= 200:
            seen.finals.append((status[0], at))
        else:
            seen.provisional += 1
    return seen


def problems(seen: Seen) -> list[str]:
    """How what came back departs from verdicts.tsv (what can be seen from outside)."""
    case, statuses = seen.case, [status for status, _ in seen.finals]
    places = {at for _, at in seen.finals}
    found: list[str] = []

    def need(condition: bool, what: str) -> None:
        if not condition:
            found.append(f"{case.path} ({case.kind}: {case.note}): {what}; saw {seen.summary()}")

    need(len(statuses) <= 1, "one final answer at most")
    if seen.route == "none":  # a response: nothing answers it
        need(not statuses and not seen.provisional, "a response is never answered")
        return found
    if case.kind == "valid":
        allowed = case.codes or set(range(200, 700)) - SYNTAX_CODES
        need(all(s in allowed for s in statuses), f"status in {sorted(case.codes) or 'non-syntax'}")
        if seen.visible:
            need(len(statuses) == 1, "gets a final answer")
    elif case.kind == "invalid":
        if "(drop)" in case.note:
            need(not statuses and not seen.provisional, "dropped without an answer")
        else:
            need(places == {"source"}, "refused at the source address")
            need(len(statuses) == 1 and statuses[0] in (case.codes or {400}), "status")
    elif case.kind == "semantic":
        need(places == {"source"}, "refused at the source address")
        need(len(statuses) == 1 and statuses[0] in case.codes, f"status in {sorted(case.codes)}")
    else:  # either: any outcome but a crash
        need(all(200 <= s < 700 for s in statuses), "a final status")
    return found


async def test_torture_messages_over_udp_leave_the_server_serving(server: Server) -> None:
    assert VERDICTS.is_file(), f"the SIP conformance messages are missing: {CORPUS}"
    assert CASES, "verdicts.tsv lists no message"
    target = (HOST, server.sip_port)
    seen: list[Seen] = []
    with contextlib.ExitStack() as stack:
        ours = Listening(stack)
        for case in CASES:
            seen.append(await observe(server, case, ours))

        # Still serving after all of them: OPTIONS 200, and a REGISTER is challenged.
        fresh = udp_socket(stack)
        local = fresh.getsockname()[1]
        assert (await exchange(fresh, request(server.sip_port, local), target)).status == 200
        challenge = await exchange(
            fresh, request(server.sip_port, local, "REGISTER", "1001"), target
        )
        assert challenge.status == 401 and challenge.headers.get_all("WWW-Authenticate")

    table = "\n".join(s.summary() for s in seen)
    counts = Counter(", ".join(str(s) for s, _ in x.finals) or "none" for x in seen)
    print(f"\nwhat came back over UDP:\n{table}\nfinal answers: {sorted(counts.items())}")
    found = [problem for s in seen for problem in problems(s)]
    assert not found, "\n".join(found)
    assert server.proc.poll() is None
    assert "Traceback" not in server.log(), server.log_tail()


# --- scanners -------------------------------------------------------------------------


async def probe(server: Server, transport: str, method: str, user: str) -> list[Response]:
    """Without credentials, then with a wrong password: the two answers."""
    async with RawClient(transport, HOST, server.sip_port) as client:
        dialog = Dialog(client, method, user)
        first = await dialog.send()
        second = await dialog.send(dialog.answer(first, WRONG))
        return [first, second]


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_existing_and_unknown_users_get_identical_answers(
    server: Server, transport: str
) -> None:
    answers: dict[tuple[str, str, str], Response] = {}
    for method in ("REGISTER", "INVITE"):
        for user in USERS:
            first, second = await probe(server, transport, method, user)
            answers[method, user, "no credentials"] = first
            answers[method, user, "wrong password"] = second

    shapes = {key: shape(response) for key, response in answers.items()}
    reference = shapes["REGISTER", "1001", "no credentials"]
    status, reason, names, challenges, _ = reference
    assert (status, reason) == (401, "Unauthorized")
    assert names.count("WWW-Authenticate") == 2
    assert challenges == [("acme", "MD5", ("auth",)), ("acme", "SHA-256", ("auth",))]
    differing = {key: got for key, got in shapes.items() if got != reference}
    assert not differing, (reference, differing)
    # What differs between answers is fresh per answer, never a function of the user.
    nonces = {
        parse_challenge(r.headers.get_all("WWW-Authenticate")[0]).nonce for r in answers.values()
    }
    assert len(nonces) == len(answers)


async def test_repeated_wrong_passwords_get_the_address_banned(server: Server) -> None:
    await asyncio.sleep(WINDOW + 0.5)  # the failures of earlier tests are forgotten
    async with RawClient("UDP", HOST, server.sip_port) as client:
        last: Response | None = None
        for attempt in range(MAX_FAILURES):
            dialog = Dialog(client, "REGISTER", USERS[attempt % len(USERS)])
            challenge = await dialog.send()
            assert challenge.status == 401, f"attempt {attempt + 1}: {challenge.status}"
            last = await dialog.send(dialog.answer(challenge, WRONG))
            # Each wrong password gets the usual challenge, the last one too.
            assert shape(last) == shape(challenge), f"attempt {attempt + 1}"
        assert last is not None

        # Banned: everything that reaches the server from this address gets 403, the
        # right password too (answering a challenge given before the ban), an INVITE,
        # an OPTIONS; existing and unknown users alike.
        register = Dialog(client, "REGISTER", "1001")
        refused = await register.send()
        assert refused.status == 403, refused.status
        assert "WWW-Authenticate" not in [name for name, _ in refused.headers]
        assert (await register.send(register.answer(last, PASSWORD))).status == 403
        assert (await Dialog(client, "INVITE", "1002").send()).status == 403
        assert (await Dialog(client, "OPTIONS", "1001").send()).status == 403
        assert shape(await Dialog(client, "REGISTER", "9999").send()) == shape(refused)
    async with RawClient("TCP", HOST, server.sip_port) as client:
        assert (await Dialog(client, "REGISTER", "1001").send()).status == 403

    # The ban ends: the right password registers again.
    await asyncio.sleep(BAN + 0.5)
    async with RawClient("UDP", HOST, server.sip_port) as client:
        dialog = Dialog(client, "REGISTER", "1001")
        challenge = await dialog.send()
        assert challenge.status == 401, challenge.status
        ok = await dialog.send(dialog.answer(challenge, PASSWORD))
        assert ok.status == 200, (ok.status, ok.reason)
