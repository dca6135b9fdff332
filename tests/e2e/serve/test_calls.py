"""Calls through a running `telportal serve`: SIPp phones, the B2BUA and the demo IVR.

Every phone authenticates with digest (MD5, the first challenge; see decision 0007).
A callee is a SIPp phone that registers itself, so the server reaches it where it
would reach a real phone: at its Contact over UDP, on the connection it registered on
over TCP. IVR callers are phones of the demo tenant calling the demo number
4008001000, whose service `hotline` runs the demo flow, published by the seed as
version 1; new versions are published through the API while the server runs.

The caller that never ACKs takes 64*T1 = 32 s to be given up on (T1 is no setting).
So that the module does not spend them idle, that call starts with the module
(`never_acking_call`, autouse) and runs while the other tests do; its test, the last
in the module, waits for the end and examines it. It calls SPARE_PHONE, which no
other test calls and no queue step rings.
"""

import contextlib
import itertools
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from telportal.ivr import check_flow
from telportal.rtp.g711 import pcmu_decode
from telportal.rtp.packet import RtpPacket, RtpParseError
from tests.e2e.serve.conftest import (
    DEMO_NUMBER,
    HOST,
    PASSWORD,
    SPARE_PHONE,
    Server,
    SipMessage,
    Sipp,
    SippResult,
    free_media_port,
    sipp_process,
)
from tests.e2e.serve.scenarios import (
    answered_caller,
    callee_answers,
    callee_main,
    callee_rings,
    cancelling_caller,
    hang_up_after,
    hung_up_by_server,
    ivr_caller,
    never_acking_caller,
    play_pcap,
    register_and_unregister,
)

# No keep-alive OPTIONS to the SIPp phones while a test runs (SIPp would take one for
# an unexpected call); the keep-alive has tests of its own in tests/integration.
SERVER_SETTINGS = {"sip": {"keepalive_seconds": 3600}}

TRANSPORTS = [pytest.param("u1", id="udp"), pytest.param("t1", id="tcp")]
T1 = 0.5  # RFC 3261 timer T1, the server's default
ANSWERED_OK = ("SIP/2.0 200 OK", "2 INVITE")
PCAP = Path("/usr/share/sip-tester/dtmf_2833_9.pcap")  # RFC 4733 events for the key 9
KEY_AFTER_MS = 2500  # the caller presses 9 this long after its ACK, during the menu
NEVER_ACKS_CALL_ID = f"e2e-never-acks-{secrets.token_hex(6)}-%u"

NEW_FLOW = """\
flow: hotline_v2
tenant: acme
numbers: ["4008001000"]
steps:
  hello:
    type: play
    prompt: This is the new version of the hotline.
    next: bye
  bye:
    type: hangup
    reason: new_version
"""

BROKEN_FLOW = """\
flow: broken
tenant: acme
numbers: ["4008001000"]
steps:
  main_menu:
    type: menu
    prompt: For an agent, press 1.
    timeout: 5x
    options:
      "1": agnet
  agent:
    type: queue
    queue: support
"""


# --- helpers --------------------------------------------------------------------------


@contextlib.contextmanager
def phone(
    server: Server,
    workdir: Path,
    ooc: str,
    *,
    extension: str = "1002",
    transport: str = "u1",
    timeout: int = 40,
) -> Iterator[Sipp]:
    """A SIPp phone registered as `extension`, answering per `ooc`, until it unregisters."""
    with sipp_process(
        workdir,
        f"phone-{extension}",
        server,
        callee_main(extension, PASSWORD),
        ooc=ooc,
        transport=transport,
        timeout=timeout,
    ) as running:
        running.wait_for("SIP/2.0 200 OK", "2 REGISTER")
        yield running


def call(
    server: Server,
    workdir: Path,
    caller: str,
    callee: str,
    *,
    extension: str = "1002",
    transport: str = "u1",
    call_id: str | None = None,
    timeout: int = 30,
) -> tuple[SippResult, SippResult]:
    """`extension` (a SIPp phone running `callee`) registers; 1001 (SIPp) runs `caller`."""
    with phone(
        server, workdir, callee, extension=extension, transport=transport, timeout=timeout + 10
    ) as callee_phone:
        with sipp_process(
            workdir, "caller", server, caller, transport=transport, call_id=call_id, timeout=timeout
        ) as dialer:
            caller_result = dialer.wait(timeout + 30)
        callee_result = callee_phone.wait(timeout + 30)
    return caller_result, callee_result


def media_port(message: SipMessage) -> int:
    for line in message.text.splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no SDP in {message.text}")


@pytest.fixture(scope="module")
def hotline(server: Server) -> str:
    """The id of the demo service behind 4008001000."""
    with server.api() as api:
        services = api.get("/services").json()["items"]
    return next(s["id"] for s in services if s["code"] == "hotline")


def current_version(server: Server, service_id: str) -> int:
    with server.api() as api:
        r = api.get(f"/services/{service_id}/flows/current")
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


def unique_call_id(name: str) -> str:
    """For SIPp's -cid_str: the Call-ID of its first (only) call is this with %u = 1."""
    return f"e2e-{name}-{secrets.token_hex(6)}-%u"


def steps(record: dict[str, Any]) -> list[str]:
    return [visit["step"] for visit in record["ivr_path"]]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module", autouse=True)
def never_acking_call(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Sipp, Sipp]]:
    """1001 calls SPARE_PHONE (a SIPp phone), is answered, and never ACKs the 200.

    Started with the module; `test_caller_that_never_acks_is_cleaned_up` examines it.
    """
    workdir = tmp_path_factory.mktemp("never-acks")
    with phone(
        server, workdir, callee_answers(SPARE_PHONE), extension=SPARE_PHONE, timeout=90
    ) as callee:
        scenario = never_acking_caller(PASSWORD, SPARE_PHONE)
        with sipp_process(
            workdir, "caller", server, scenario, call_id=NEVER_ACKS_CALL_ID, timeout=80
        ) as caller:
            caller.wait_for("SIP/2.0 200 OK", "2 INVITE")
            yield caller, callee


# --- phones ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sipp_registers_with_digest_and_unregisters(
    server: Server, tmp_path: Path, transport: str
) -> None:
    scenario = register_and_unregister("1001", PASSWORD)
    with sipp_process(tmp_path, "register", server, scenario, transport=transport) as sipp:
        result = sipp.wait().check()
    assert result.responses() == [
        ("SIP/2.0 401 Unauthorized", "1 REGISTER"),
        ("SIP/2.0 200 OK", "2 REGISTER"),
        ("SIP/2.0 401 Unauthorized", "3 REGISTER"),
        ("SIP/2.0 200 OK", "4 REGISTER"),
    ], result.describe()
    challenge, registered, _, unregistered = [m for m in result.messages if m.received]
    www = challenge.header("WWW-Authenticate") or ""
    assert 'realm="acme"' in www and "algorithm=MD5" in www, challenge.text
    # The binding is confirmed with its lifetime, and gone after Expires: 0.
    contact = registered.header("Contact") or ""
    assert contact.startswith("<sip:1001@127.0.0.1:") and "expires=300" in contact, contact
    assert unregistered.header("Contact") is None, unregistered.text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_call_through_the_b2bua(server: Server, tmp_path: Path, transport: str) -> None:
    caller, callee = call(
        server, tmp_path, answered_caller(PASSWORD), callee_answers("1002"), transport=transport
    )
    caller.check()
    callee.check()
    got = caller.responses()
    assert got[0] == ("SIP/2.0 401 Unauthorized", "1 INVITE"), caller.describe()
    assert ANSWERED_OK in got and got[-1] == ("SIP/2.0 200 OK", "3 BYE"), caller.describe()
    assert ("SIP/2.0 180 Ringing", "2 INVITE") in got, "the callee's ringing is relayed"
    # The callee's call is the B2BUA's own dialog (another Call-ID), from 1001, with an
    # SDP offer; the caller's 200 carries an SDP answer.
    invite = next(m for m in callee.messages if m.received and m.first_line.startswith("INVITE"))
    caller_invite = next(m for m in caller.messages if m.first_line.startswith("INVITE"))
    assert invite.header("Call-ID") != caller_invite.header("Call-ID")
    assert "<sip:1001@" in (invite.header("From") or ""), invite.text
    assert media_port(invite) > 0, invite.text
    answer = next(m for m in caller.messages if m.received and m.first_line == "SIP/2.0 200 OK")
    assert answer.header("CSeq") == "2 INVITE" and media_port(answer) > 0, answer.text
    # The callee hangs up nothing: the caller's BYE reaches it through the B2BUA.
    assert callee.requests() == ["INVITE", "ACK", "BYE"], callee.describe()


def test_cancel_before_answer(server: Server, tmp_path: Path) -> None:
    caller, callee = call(server, tmp_path, cancelling_caller(PASSWORD), callee_rings("1002"))
    caller.check()
    callee.check()
    got = caller.responses()
    assert ("SIP/2.0 180 Ringing", "2 INVITE") in got, caller.describe()
    assert ("SIP/2.0 200 OK", "2 CANCEL") in got, caller.describe()
    assert got[-1] == ("SIP/2.0 487 Request Terminated", "2 INVITE"), caller.describe()
    assert ANSWERED_OK not in got
    # The callee's leg was cancelled by the B2BUA and its 487 acknowledged.
    assert callee.requests() == ["INVITE", "CANCEL", "ACK"], callee.describe()


def test_a_call_between_phones_leaves_a_call_record(server: Server, tmp_path: Path) -> None:
    """Every call leaves a record at /api/v1/calls, not only IVR calls: calls_store says
    "the call layer writes one per call" and has the direction "internal" for these."""
    call_id = f"e2e-{secrets.token_hex(6)}-%u"
    caller, callee = call(
        server, tmp_path, answered_caller(PASSWORD), callee_answers("1002"), call_id=call_id
    )
    caller.check()
    callee.check()
    record = server.call(call_id.replace("%u", "1"))
    assert (record["caller"], record["called"], record["direction"]) == ("1001", "1002", "internal")
    assert record["answered_at"] is not None and record["ended_at"] is not None, record


# --- the IVR ------------------------------------------------------------------------


class Ear(threading.Thread):
    """The media address in the caller's SDP: counts the RTP the server sends.

    SIPp presses the key from its own media port (play_pcap_audio), so the server's
    symmetric RTP latches onto that port and the audio goes there: it stops arriving
    here. Once SIPp's port has been quiet for longer than the server's re-latch time
    (1 s, media/latch.py), the ear talks (PCMU silence, 20 ms packets) and the server
    latches back onto it, so the rest of the call's audio is heard here again. The ear
    never talks before the key has gone out (the audio stopping is the sign), so the
    key press is never lost to the latch.
    """

    QUIET = 0.25  # no audio for this long: the latch has moved to SIPp's port
    RELATCH_AFTER = 1.6  # talk this long after the audio stopped (> 1 s + the pcap's 0.14 s)

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.port = free_media_port()
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, self.port))
        self.rtp.settimeout(0.01)
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtcp.bind((HOST, self.port + 1))  # the server's RTCP lands here, unread
        self.heard: list[tuple[float, RtpPacket]] = []
        self.not_before: float | None = None  # the key cannot have gone out earlier
        self.moved_at: float | None = None
        self.talking_at: float | None = None
        self.peer: tuple[str, int] | None = None
        self.invalid = 0
        self._finished = threading.Event()

    def key_not_before(self, at: float) -> None:
        self.not_before = at

    def stop(self) -> None:
        self._finished.set()
        self.join(5)
        self.rtp.close()
        self.rtcp.close()

    def run(self) -> None:
        ssrc, seq, next_send = secrets.randbits(32), 0, 0.0
        silence = bytes([0xFF]) * 160
        while not self._finished.is_set():
            try:
                data, self.peer = self.rtp.recvfrom(2048)
                try:
                    self.heard.append((time.monotonic(), RtpPacket.parse(data)))
                except RtpParseError:
                    self.invalid += 1
            except (TimeoutError, ConnectionRefusedError):  # nothing yet; an ICMP error
                pass
            now = time.monotonic()
            last = self.heard[-1][0] if self.heard else None
            if (
                self.moved_at is None
                and last is not None
                and self.not_before is not None
                and last >= self.not_before
                and now - last >= self.QUIET
            ):
                self.moved_at = last
            talk = self.moved_at is not None and now - self.moved_at >= self.RELATCH_AFTER
            if talk and self.peer is not None and now >= next_send:
                self.talking_at = self.talking_at or now
                packet = RtpPacket(0, seq & 0xFFFF, seq * 160, ssrc, silence)
                with contextlib.suppress(OSError):  # the call may be over
                    self.rtp.sendto(packet.serialize(), self.peer)
                seq, next_send = seq + 1, max(next_send + 0.02, now)

    def voiced(self, since: float | None = None, until: float | None = None) -> int:
        """Packets with speech in them (not digital silence), heard in [since, until)."""
        count = 0
        for at, packet in self.heard:
            if (since is None or at >= since) and (until is None or at < until):
                samples = np.frombuffer(pcmu_decode(packet.payload), dtype="<i2")
                count += int(np.abs(samples).max(initial=0) > 300)
        return count


@pytest.fixture
def ear() -> Iterator[Ear]:
    listener = Ear()
    listener.start()
    yield listener
    listener.stop()


def test_caller_presses_9_hears_the_announcement_and_is_hung_up(
    server: Server, hotline: str, tmp_path: Path, ear: Ear
) -> None:
    assert PCAP.is_file(), f"{PCAP} is missing: make setup installs sip-tester"
    version = current_version(server, hotline)
    call_id = unique_call_id("ivr")
    scenario = ivr_caller(
        "1003",
        PASSWORD,
        DEMO_NUMBER,
        play_pcap(str(PCAP), KEY_AFTER_MS) + hung_up_by_server(40000),
        media_port=str(ear.port),
    )
    with sipp_process(tmp_path, "caller", server, scenario, call_id=call_id, timeout=60) as caller:
        ack = caller.wait_for("ACK", "2 ACK", received=False)
        ack_at = time.monotonic() - (datetime.now() - ack.at).total_seconds()
        ear.key_not_before(ack_at + KEY_AFTER_MS / 1000 - 0.1)
        result = caller.wait(90)
    result.check()  # answered, and the call ended with the server's BYE
    assert result.requests() == ["BYE"], result.describe()
    assert ("SIP/2.0 200 OK", "2 INVITE") in result.responses(), result.describe()

    record = server.call(call_id.replace("%u", "1"))
    assert (record["caller"], record["called"]) == ("1003", DEMO_NUMBER), record
    assert (record["direction"], record["service_id"]) == ("inbound", hotline), record
    assert record["flow_version"] == version == 1, record
    assert record["digits"] == ["9"], record
    assert steps(record) == ["greeting", "main_menu", "self_service", "goodbye"], record
    menu = record["ivr_path"][1]
    assert (menu["keys"], menu["outcome"]) == (["9"], "option 9"), menu
    assert record["outcome"] == "hangup self_service", record
    assert record["end_reason"] == "ivr: self_service", record
    # The announcement took as long as speaking it does (about 11 s), not an instant.
    announcement = record["ivr_path"][3]["elapsed"] - record["ivr_path"][2]["elapsed"]
    assert announcement > 5, record["ivr_path"]

    # What the caller heard: speech before the key (greeting and menu), and, once the
    # audio followed it back, the announcement.
    assert ear.peer is not None and ear.invalid == 0
    assert {p.payload_type for _, p in ear.heard} == {0}, "PCMU, as offered"
    assert ear.moved_at is not None, "the audio never followed the key press to SIPp's port"
    assert ear.voiced(until=ear.moved_at) >= 25, "no speech before the key press"
    assert ear.talking_at is not None
    heard_after = ear.voiced(since=ear.talking_at)
    assert heard_after >= 100, f"{heard_after} packets of speech after the key press"

    # Known bug: answered_at stays empty (nothing calls CallRecords.answered).
    assert record["answered_at"] is not None, record


def test_a_flow_published_during_a_call_changes_only_new_calls(
    server: Server, hotline: str, tmp_path: Path
) -> None:
    before = current_version(server, hotline)
    first_id, second_id = unique_call_id("first"), unique_call_id("second")
    # The first caller stays in the menu (its prompt alone lasts longer) and hangs up.
    first_scenario = ivr_caller("1001", PASSWORD, DEMO_NUMBER, hang_up_after(8000))
    second_scenario = ivr_caller("1002", PASSWORD, DEMO_NUMBER, hung_up_by_server(20000))
    try:
        with sipp_process(
            tmp_path, "first", server, first_scenario, call_id=first_id, timeout=40
        ) as first:
            first.wait_for("SIP/2.0 200 OK", "2 INVITE")
            in_progress = server.call(first_id.replace("%u", "1"), ended=False)
            assert in_progress["ended_at"] is None, in_progress

            with server.api() as api:
                r = api.post(
                    f"/services/{hotline}/flows",
                    content=NEW_FLOW,
                    params={"note": "published during a call"},
                    headers={"Content-Type": "application/yaml"},
                )
            assert r.status_code == 201, r.text
            published = r.json()
            assert (published["version"], published["current"]) == (before + 1, True), published

            with sipp_process(
                tmp_path, "second", server, second_scenario, call_id=second_id, timeout=40
            ) as second:
                second.wait(60).check()
            assert first.proc.poll() is None, "the first call ended before the second was done"
            first_result = first.wait(60)
        first_result.check()

        old = server.call(first_id.replace("%u", "1"))
        new = server.call(second_id.replace("%u", "1"))
        assert old["flow_version"] == before and steps(old)[:2] == ["greeting", "main_menu"], old
        assert old["digits"] == [] and old["end_reason"] != "ivr: new_version", old
        assert new["flow_version"] == before + 1 and steps(new) == ["hello", "bye"], new
        assert new["end_reason"] == "ivr: new_version", new
        # The second call ran from start to end while the first was in its flow.
        publish_at = parse_time(published["published_at"])
        assert parse_time(old["started_at"]) < publish_at < parse_time(new["started_at"])
        assert parse_time(new["ended_at"]) < parse_time(old["ended_at"])
    finally:
        with server.api() as api:
            back = api.post(f"/services/{hotline}/flows/{before}/rollback")
        assert back.status_code == 200, back.text
        assert current_version(server, hotline) == before


def test_a_malformed_flow_is_refused_and_the_version_in_service_stays(
    server: Server, hotline: str, tmp_path: Path
) -> None:
    with server.api() as api:
        versions = api.get(f"/services/{hotline}/flows").json()
        r = api.post(
            f"/services/{hotline}/flows",
            content=BROKEN_FLOW,
            headers={"Content-Type": "application/yaml"},
        )
        after = api.get(f"/services/{hotline}/flows").json()
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid_flow", body
    # Every problem the checker finds, with its position, and nothing else.
    expected = [(p.line, p.column, p.message) for p in check_flow(BROKEN_FLOW, "hotline.yaml")]
    got = [(d["line"], d["column"], d["message"]) for d in body["details"]]
    assert got == expected and len(got) >= 2, (got, expected)
    messages = " | ".join(d["message"] for d in body["details"])
    assert "agnet" in messages and "5x" in messages, messages
    assert after["total"] == versions["total"], "a refused flow makes no version"
    in_service = current_version(server, hotline)

    # A call after the refusal runs the version in service.
    call_id = unique_call_id("after-refusal")
    scenario = ivr_caller("1003", PASSWORD, DEMO_NUMBER, hang_up_after(1500))
    with sipp_process(tmp_path, "caller", server, scenario, call_id=call_id) as caller:
        caller.wait(60).check()
    record = server.call(call_id.replace("%u", "1"))
    # (The test before rolled the service back to the demo flow, version 1.)
    assert record["flow_version"] == in_service == 1, record
    assert steps(record)[:1] == ["greeting"], record


# --- last: the caller that never ACKs ---------------------------------------------------


def test_caller_that_never_acks_is_cleaned_up(
    server: Server, tmp_path: Path, never_acking_call: tuple[Sipp, Sipp]
) -> None:
    """The 2xx is retransmitted (T1, 2T1, ... capped at T2) until 64*T1, then both legs
    are hung up; a call to the same phone placed afterwards goes through."""
    dialer, callee_phone = never_acking_call
    caller, callee = dialer.wait(60), callee_phone.wait(30)
    caller.check()  # its scenario ends with the server's BYE, answered
    callee.check()  # answered, ACKed by the B2BUA, hung up by the B2BUA, unregistered
    assert caller.requests() == ["BYE"], caller.describe()
    assert callee.requests() == ["INVITE", "ACK", "BYE"], callee.describe()
    oks = [
        m for m in caller.messages if m.received and (m.first_line, m.header("CSeq")) == ANSWERED_OK
    ]
    bye = next(m for m in caller.messages if m.received and m.first_line.startswith("BYE"))
    retransmissions = len(oks) - 1
    # 0.5, 1, 2, 4, 4, ... s apart: 10 retransmissions fit in 64*T1 = 32 s.
    assert 8 <= retransmissions <= 11, [m.at.isoformat() for m in oks]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(oks)]
    assert gaps[0] == pytest.approx(T1, abs=0.25), gaps
    assert gaps[1] == pytest.approx(2 * T1, abs=0.3), gaps
    assert max(gaps) <= 4.5, gaps
    given_up = (bye.at - oks[0].at).total_seconds()
    assert 64 * T1 - 1 <= given_up <= 64 * T1 + 3, given_up
    # Nothing is left of the call: the same phone is called again, and answers.
    again_caller, again_callee = call(
        server,
        tmp_path,
        answered_caller(PASSWORD, SPARE_PHONE),
        callee_answers(SPARE_PHONE),
        extension=SPARE_PHONE,
    )
    again_caller.check()
    assert again_callee.check().requests() == ["INVITE", "ACK", "BYE"]
    # ... and the call's record says it is over (the same gap as the test above).
    record = server.call(NEVER_ACKS_CALL_ID.replace("%u", "1"))
    assert record["answered_at"] is not None and record["ended_at"] is not None, record
