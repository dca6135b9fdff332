"""Full B2BUA calls per second: SIPp UAC -> Telportal -> SIPp UAS, on 127.0.0.1.

The caller comes from a trunk's network (so it is not challenged), calls extension
1002, whose phone is a SIPp UAS registered by this script; every call is INVITE,
100, 180, 200, ACK, BYE, 200 on both legs. Prints the rate SIPp achieved, failed
calls, and the server process's CPU use: user and system seconds, and CPU milliseconds
per call (the figure least disturbed by whatever else runs on the machine). Bounded:
a fixed number of calls per rate step; stops at the first step with a failed call.

    .venv/bin/python bench/sip_calls.py [--calls 1000] [--rates 100,200,400] [--transport u1]

--server-module runs the server as `python -m MODULE demo ...` instead of `telportal`:
a wrapper module for profiling or for A/B runs (with PYTHONPATH naming another tree).

--in-process N runs N calls without SIPp: the SIP service of a demo platform in this
process (uvloop), and the caller and the callee as two UDP sockets of the same event
loop answering the way SIPp's scenarios do, --concurrency calls at a time (50). It
prints the CPU per call of the whole process and of the two simulated peers, so the
server's share is known without the noise of three processes on two cores. --no-call-records leaves
out the call records (database writes) to measure the SIP stack alone, in either mode;
--profile FILE writes a cProfile of the measured calls (in process); --gc-freeze
settles the garbage collector after the warm-up as `telportal serve` does once started
(`server.settle_garbage_collector`), so in-process figures match the server's.
--answered-here calls a number whose IVR flow answers and hangs up at once, in either
mode: one leg, the server's own answer (a media endpoint, the SDP answer) and its BYE.
With SIPp the script publishes that flow through the API, and no callee is needed.
--pin (with SIPp) runs the server under taskset on one CPU and SIPp and this script on
the others: "calls/s on one core" as the words say, SIPp never taking the server's CPU.
With SIPp, the time of a fixed Python loop is printed before and after the steps: on a
shared VM the machine's own speed varies by half, and this says how fast it was.
"""

import argparse
import asyncio
import collections
import cProfile
import os
import re
import secrets
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from instructions import instrument
from sqlalchemy import func, select

from telportal.net import Peer, SipTransportLayer, Transport
from telportal.sip import Response
from telportal.sip.digest import answer_challenge

PW = "bench-password-1"
# The last line of a traceback: "telportal.media.errors.PortsExhaustedError: no free ..."
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exhausted|Timeout)\w*: ")
# An event of SIPp's error trace, after its time stamps: "Aborting call on an unexpected
# BYE for call: 12-345@127.0.0.1", up to the message it quotes or the next event.
SIPP_EVENT = re.compile(r"\t\d+\.\d+: (.*?)(?=, received '|\d{4}-\d\d-\d\d\t|\n|$)")
# SIPp's caller, from a trunk: INVITE {number}, ACK the 200, then {end}, how the call
# ends: the caller hangs up (bridged calls) or the server does (--answered-here).
UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="trunk caller">
  <send retrans="500"><![CDATA[
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]>;tag=[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:carrier@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=c 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]>;tag=[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
{end}</scenario>
"""
CALLER_HANGS_UP = """  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]>;tag=[call_number]
To: <sip:{number}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"""
SERVER_HANGS_UP = """  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


def uac_scenario(answered_here: bool) -> str:
    """The caller's scenario: to extension 1002, or to the number the IVR answers."""
    end, number = (
        (SERVER_HANGS_UP, ANSWERING_NUMBER) if answered_here else (CALLER_HANGS_UP, "1002")
    )
    return UAC.replace("{end}", end).replace("{number}", number)


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def register(sip_port: int, contact_port: int) -> None:
    async with SipTransportLayer() as layer:
        me = await layer.listen(Transport.UDP, "127.0.0.1", 0)
        server = Peer(Transport.UDP, "127.0.0.1", sip_port)
        uri = f"sip:127.0.0.1:{sip_port}"

        def register(cseq: int, auth: str | None) -> bytes:
            lines = [
                f"REGISTER {uri} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{me.port};branch=z9hG4bK{secrets.token_hex(6)}",
                "Max-Forwards: 70",
                "From: <sip:1002@127.0.0.1>;tag=b",
                "To: <sip:1002@127.0.0.1>",
                "Call-ID: bench-reg",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:1002@127.0.0.1:{contact_port}>",
                "Expires: 3600",
            ] + ([f"Authorization: {auth}"] if auth else [])
            return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

        await layer.send(register(1, None), server)
        challenge = (await asyncio.wait_for(layer.receive(), 10)).message
        assert isinstance(challenge, Response)
        value = challenge.headers.get_all("WWW-Authenticate")[0]
        auth = answer_challenge(value, "REGISTER", uri, "1002", PW, "c", 1)
        await layer.send(register(2, auth), server)
        ok = (await asyncio.wait_for(layer.receive(), 10)).message
        if not isinstance(ok, Response) or ok.status != 200:
            raise RuntimeError(f"could not register the callee: {ok}")


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick  # utime, stime


def udp_overflows() -> int:
    """Datagrams the kernel dropped so far because a UDP socket's receive buffer was
    full (RcvbufErrors in /proc/net/snmp; every socket of this network namespace)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = (line for line in lines if line[0] == "Udp:")
    return int(values[names.index("RcvbufErrors")])


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def pinned(cmd: list[str], cpus: set[int] | None) -> list[str]:
    """`cmd` run by util-linux's taskset on `cpus` (it and any thread it starts), or
    as it is when cpus is None."""
    if cpus is None:
        return cmd
    return ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus))), *cmd]


def reference_loop_ms() -> float:
    """The best of three runs of a fixed pure-Python loop, in ms: how fast this machine
    is right now. On the 2-core VM of docs/benchmarks.md it took 6.0 ms at its fastest
    and up to 10 ms at other times; printed with each run so that runs can be compared."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        sum(i * i for i in range(100_000))
        best = min(best, time.perf_counter() - start)
    return 1000 * best


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(the server's CPUs, SIPp's CPUs): with --pin, the server has the first CPU this
    script may use to itself and SIPp the rest, so "calls/s on one core" is literal."""
    if not pin:
        return None, None
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        sys.exit("--pin needs at least two CPUs: one for the server, one for SIPp")
    if shutil.which("taskset") is None:
        sys.exit("--pin needs taskset (Debian's util-linux)")
    os.sched_setaffinity(0, set(mine[1:]))  # this script's HTTP and REGISTER work too
    return {mine[0]}, set(mine[1:])


def run_rate(
    sipp: str,
    tmp: str,
    sip_port: int,
    transport: str,
    calls: int,
    rate: int,
    server_pid: int,
    answered_here: bool = False,
    sipp_cpus: set[int] | None = None,
) -> tuple[int, int, float, tuple[float, float], tuple[int, int, int]]:
    """One SIPp run at `rate`: (successful, failed, elapsed s, server (user, system) CPU s,
    (messages SIPp sent again, repeats it received, datagrams lost to full buffers))."""
    scenario = Path(tmp) / "uac.xml"
    scenario.write_text(uac_scenario(answered_here))
    (user0, system0), t0 = cpu_times(server_pid), time.monotonic()
    overflows = udp_overflows()
    uac = subprocess.run(
        pinned([
            sipp,
            f"127.0.0.1:{sip_port}",
            "-sf",
            str(scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-t",
            transport,
            "-m",
            str(calls),
            "-r",
            str(rate),
            "-l",
            str(rate * 4),
            "-nostdin",
            "-timeout",
            "120s",
            "-trace_err",
            "-error_file",
            str(Path(tmp) / f"sipp_errors_{rate}.log"),
        ], sipp_cpus),
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    elapsed, (user1, system1) = time.monotonic() - t0, cpu_times(server_pid)
    ok = re.search(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", uac.stdout)
    failed = re.search(r"Failed call\s+\|\s+\d+\s+\|\s+(\d+)", uac.stdout)
    return (
        int(ok.group(1)) if ok else 0,
        int(failed.group(1)) if failed else calls,
        elapsed,
        (user1 - user0, system1 - system0),
        (*retransmissions(uac.stdout), udp_overflows() - overflows),
    )


def retransmissions(screen: str) -> tuple[int, int]:
    """(messages SIPp sent again, repeats it received) from its final scenario screen,
    whose lines read `INVITE ---------->  4000  12` (messages, then retransmissions):
    a server behind by more than T1 (500 ms) makes both sides repeat themselves."""
    sent = received = 0
    for line in screen.splitlines():
        arrow = "---------->" in line
        if not arrow and "<----------" not in line:
            continue
        numbers = re.findall(r"\d+", line.split("-->" if arrow else "<--")[-1])
        if len(numbers) >= 2:
            if arrow:
                sent += int(numbers[1])
            else:
                received += int(numbers[1])
    return sent, received


def print_sipp_errors(path: Path, shown: int = 8) -> None:
    """Why SIPp failed its calls: the events of its error trace, counted, with numbers
    (call ids, times) as N. Its entries read `<date>\t<time>\t<epoch>: <event>, received
    '<message>'`, and SIPp does not always end one with a newline."""
    if not path.exists():
        print(f"SIPp wrote no error trace at {path}")
        return
    reasons: dict[str, int] = {}
    for event in SIPP_EVENT.findall(path.read_text(errors="replace")):
        key = re.sub(r"\d+", "N", event.strip())[:160]
        reasons[key] = reasons.get(key, 0) + 1
    print("SIPp's errors (count, event):")
    for key, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:shown]:
        print(f"  {count:6d}  {key}")


def records_written(base: str, headers: dict[str, str], expected: int) -> int:
    """How many call records the API shows, once it shows `expected` (or after 10 s)."""
    deadline, total = time.monotonic() + 10, 0
    while time.monotonic() < deadline:
        page = httpx.get(f"{base}/api/v1/calls?limit=1", headers=headers).json()
        total = int(page["total"])
        if total >= expected:
            break
        time.sleep(0.2)
    return total


# `python -m bench_no_records demo ...`: the server of module {0} without call records.
NO_RECORDS_SERVER = """
import runpy

import telportal.cli

_build = telportal.cli.build_platform


def build_platform(config, **kwargs):
    platform = _build(config, **kwargs)
    if platform.sip is not None:
        platform.sip.records = None
    return platform


telportal.cli.build_platform = build_platform
runpy.run_module("{0}", run_name="__main__", alter_sys=True)
"""

INVITE_TEMPLATE = (
    "INVITE sip:{called}@127.0.0.1:{server} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-0\r\n"
    "From: <sip:carrier@127.0.0.1>;tag={n}\r\n"
    "To: <sip:{called}@127.0.0.1:{server}>\r\n"
    "Call-ID: {n}-bench@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:carrier@127.0.0.1:{port}>\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{sdp}"
)
IN_DIALOG_TEMPLATE = (
    "{method} {uri} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-{branch}\r\n"
    "From: <sip:carrier@127.0.0.1>;tag={n}\r\n"
    "To: <sip:{called}@127.0.0.1:{server}>;tag={to_tag}\r\n"
    "Call-ID: {n}-bench@127.0.0.1\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Max-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)
CALLER_SDP = (
    "v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
)
CALLEE_SDP = (
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
# The lines a response copies from its request. The peers read the server's messages
# with find and split, not regular expressions: three multi-line searches a call cost
# some 40 k instructions, counted in bench/instructions.py's figure.
COPIED = (b"Via: ", b"From: ", b"To: ", b"Call-ID: ", b"CSeq: ")


def _copied(data: bytes) -> bytes:
    head = data[: data.find(b"\r\n\r\n")]
    return b"\r\n".join([line for line in head.split(b"\r\n") if line.startswith(COPIED)])


def _value(data: bytes, name: bytes) -> bytes:
    """The value of the header `name` (full form, as the server writes it)."""
    at = data.find(b"\r\n" + name + b": ")
    assert at >= 0, f"no {name!r} header in {data[:200]!r}"
    start = at + len(name) + 4
    return data[start : data.find(b"\r\n", start)]


def _tag(value: bytes) -> bytes:
    tag = value.partition(b";tag=")[2].partition(b";")[0]
    assert tag, f"no tag in {value!r}"
    return tag


class _Filler:
    """A message template split once into its literal bytes and the fields left to
    fill, then filled by one join. `str.format` of a whole message cost the peers about
    22 k instructions a message (callgrind), counted in bench/instructions.py's figure
    as if the server had spent them."""

    def __init__(self, template: str, **fixed: object) -> None:
        self.literals: list[bytes] = []
        self.fields: list[str] = []
        text = ""
        for literal, field, _spec, _conversion in string.Formatter().parse(template):
            text += literal
            if field is None:
                continue
            if field in fixed:
                text += str(fixed[field])
            else:
                self.literals.append(text.encode())
                self.fields.append(field)
                text = ""
        self.literals.append(text.encode())

    def fill(self, **values: bytes) -> bytes:
        parts = [self.literals[0]]
        for field, literal in zip(self.fields, self.literals[1:], strict=True):
            parts += (values[field], literal)
        return b"".join(parts)


class SimulatedPeers:
    """The SIPp caller (a trunk) and callee (extension 1002) of the UAC/UAS scenarios.

    Every call: INVITE, then on the 2xx ACK and BYE; the callee answers an INVITE with
    180 and 200 (with SDP) and a BYE with 200. A new call starts when one ends, so
    `concurrency` calls are always in progress.
    """

    def __init__(
        self, server_port: int, concurrency: int, called: str = "1002", invite_copies: int = 1
    ) -> None:
        self.server = ("127.0.0.1", server_port)
        # SIPp resends an INVITE unanswered after 500 ms: copies > 1 sends every INVITE
        # that many times at once, to measure what absorbing the repeats costs.
        self.invite_copies = invite_copies
        self.concurrency = concurrency
        # Another number than the callee's: the server answers the call itself (an IVR
        # flow) and hangs up; the caller acknowledges and answers the server's BYE.
        self.called = called
        self.answered_here = called != "1002"
        self.calls = self.started = self.done = self.serial = 0
        # Calls in progress by number (the caller's From tag): True once acknowledged. A
        # retransmitted 2xx gets its ACK again, a retransmitted BYE its 200 again, and
        # neither ends a call twice (which would start two in its place).
        self._open: dict[bytes, bool] = {}
        self.cpu = 0.0  # process CPU spent in the peers' own callbacks
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.caller: asyncio.DatagramTransport | None = None
        self.callee: asyncio.DatagramTransport | None = None
        self.caller_port = self.callee_port = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.caller, _ = await loop.create_datagram_endpoint(
            lambda: _PeerSocket(self, self.on_caller), local_addr=("127.0.0.1", 0)
        )
        self.callee, _ = await loop.create_datagram_endpoint(
            lambda: _PeerSocket(self, self.on_callee), local_addr=("127.0.0.1", 0)
        )
        for transport in (self.caller, self.callee):
            # SIPp's sockets are large too: bursts must not be lost on our side either.
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.caller_port = self.caller.get_extra_info("sockname")[1]
        self.callee_port = self.callee.get_extra_info("sockname")[1]
        fixed = {"called": self.called, "server": self.server[1], "port": self.caller_port}
        self.invite = _Filler(INVITE_TEMPLATE, length=len(CALLER_SDP), sdp=CALLER_SDP, **fixed)
        methods = (("ACK", 5, 1),) if self.answered_here else (("ACK", 5, 1), ("BYE", 7, 2))
        self.in_dialog = [
            _Filler(IN_DIALOG_TEMPLATE, method=method, branch=branch, cseq=cseq, **fixed)
            for method, branch, cseq in methods
        ]

    def close(self) -> None:
        for transport in (self.caller, self.callee):
            if transport is not None:
                transport.close()

    async def run(self, calls: int) -> None:
        """Make calls, concurrency at a time; return once all have ended."""
        self.calls, self.started, self.done, self.cpu = calls, 0, 0, 0.0
        self.finished = asyncio.get_running_loop().create_future()
        for _ in range(min(self.concurrency, calls)):
            self._call()
        try:
            await asyncio.wait_for(self.finished, timeout=max(60.0, calls / 20))
        except TimeoutError:
            # These peers never retransmit: a lost datagram is a call that never ends.
            sys.exit(f"only {self.done} of {calls} calls ended (a datagram was lost?)")

    def _call(self) -> None:
        assert self.caller is not None
        self.started += 1
        self.serial += 1
        n = b"%d" % self.serial
        self._open[n] = False
        invite = self.invite.fill(n=n)
        for _ in range(self.invite_copies):
            self.caller.sendto(invite, self.server)

    def on_caller(self, data: bytes) -> None:
        assert self.caller is not None
        if data.startswith(b"BYE "):  # the server hangs up the call it answered
            copied = _copied(data)
            self.caller.sendto(
                b"SIP/2.0 200 OK\r\n" + copied + b"\r\nContent-Length: 0\r\n\r\n", self.server
            )
            if self._open.pop(_tag(_value(data, b"To")), None) is not None:
                self._ended()
            return
        if not data.startswith(b"SIP/2.0 200"):
            return  # 100 and 180
        if b"CSeq: 1 INVITE" in data:
            n, to = _tag(_value(data, b"From")), _tag(_value(data, b"To"))
            uri = _value(data, b"Contact").partition(b"<")[2].partition(b">")[0]
            # The BYE once only: a retransmitted 2xx is acknowledged again, nothing more.
            requests = self.in_dialog if self._open.get(n) is False else self.in_dialog[:1]
            if n in self._open:
                self._open[n] = True
            for request in requests:
                self.caller.sendto(request.fill(uri=uri, n=n, to_tag=to), self.server)
        elif (
            b"CSeq: 2 BYE" in data and self._open.pop(_tag(_value(data, b"From")), None) is not None
        ):
            self._ended()

    def _ended(self) -> None:
        self.done += 1
        if self.started < self.calls:
            self._call()
        elif self.done == self.calls and not self.finished.done():
            self.finished.set_result(None)

    def on_callee(self, data: bytes) -> None:
        assert self.callee is not None
        if data.startswith(b"SIP/"):
            return
        copied = _copied(data)
        if data.startswith(b"INVITE "):
            to = copied.index(b"To: ")
            end = copied.find(b"\r\n", to)
            end = len(copied) if end < 0 else end
            copied = copied[:end] + b";tag=%dSIPpTag01" % self.started + copied[end:]
            contact = b"\r\nContact: <sip:127.0.0.1:%d;transport=UDP>\r\n" % self.callee_port
            self.callee.sendto(
                b"SIP/2.0 180 Ringing\r\n" + copied + contact + b"Content-Length: 0\r\n\r\n",
                self.server,
            )
            self.callee.sendto(
                b"SIP/2.0 200 OK\r\n"
                + copied
                + contact
                + b"Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" % len(CALLEE_SDP)
                + CALLEE_SDP,
                self.server,
            )
        elif data.startswith(b"BYE "):
            self.callee.sendto(
                b"SIP/2.0 200 OK\r\n" + copied + b"\r\nContent-Length: 0\r\n\r\n", self.server
            )


class _PeerSocket(asyncio.DatagramProtocol):
    def __init__(self, peers: SimulatedPeers, handle: Callable[[bytes], None]) -> None:
        self.peers, self.handle = peers, handle

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        started = time.process_time()
        self.handle(data)
        self.peers.cpu += time.process_time() - started


ANSWERING_NUMBER = "4008009999"
# The flow of --answered-here: the IVR answers (a media endpoint, the SDP answer) and
# hangs up at once.
ANSWER_AND_HANG_UP = """
flow: bench-answer
version: 1
description: Answer, then hang up (bench/sip_calls.py --answered-here).
tenant: acme
numbers: ["4008009999"]
language: en
timezone: UTC
steps:
  goodbye:
    type: hangup
"""


def _set_records(sip: Any, records: bool, interval: float | None) -> None:
    if not records:
        sip.records = None
    elif interval is not None:
        sip.records.batch.interval = interval


async def in_process(
    calls: int,
    concurrency: int,
    records: bool,
    profile: str | None,
    settle_gc: bool = False,
    answered_here: bool = False,
    count_instructions: bool = False,
    record_interval: float | None = None,
    invite_copies: int = 1,
) -> None:
    # Imported here: the SIPp mode runs the server in another process.
    from telportal.app import build_platform  # noqa: PLC0415
    from telportal.auth.credentials import Passwords  # noqa: PLC0415
    from telportal.config import Config, SipConfig, parse_listen  # noqa: PLC0415
    from telportal.demo import seed_demo  # noqa: PLC0415
    from telportal.store.schema import CallDetailRecord  # noqa: PLC0415
    from telportal.tenancy import schemas  # noqa: PLC0415
    from telportal.tenancy.roles import Scope  # noqa: PLC0415

    sip_port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            data_dir=Path(tmp),
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            sip_listen=parse_listen(f"127.0.0.1:{sip_port}"),  # type: ignore[arg-type]
            sip=SipConfig(default_tenant="acme"),
        )
        platform = build_platform(config, passwords=Passwords.fast_for_tests())
        await platform.start()
        try:
            await seed_demo(platform, PW)
            sip = platform.sip
            assert sip is not None
            await sip.start()
            _set_records(sip, records, record_interval)
            acme = sip.directory.tenant_for_domain("acme")
            assert acme is not None
            async with platform.db.write(Scope.cli()) as uow:
                await platform.resources["trunks"].create(
                    uow,
                    schemas.TrunkCreate(
                        tenant_id=acme.tenant_id,
                        name="bench",
                        host="127.0.0.1",
                        inbound_addresses=["127.0.0.1/32"],
                        keepalive=False,
                    ),
                )
                if answered_here:
                    await _answering_service(platform, uow, acme.tenant_id)
            await sip.directory.load()
            peers = SimulatedPeers(
                sip_port,
                concurrency,
                ANSWERING_NUMBER if answered_here else "1002",
                invite_copies,
            )
            await peers.open()
            try:
                await register(sip_port, peers.callee_port)
                await peers.run(min(200, calls))  # warm-up: caches, first-call imports
                await asyncio.sleep(0.2)
                if settle_gc:
                    # What `telportal serve` does once started (server.py).
                    from telportal.server import settle_garbage_collector  # noqa: PLC0415

                    settle_garbage_collector()
                profiler = cProfile.Profile() if profile else None
                cpu, wall = time.process_time(), time.perf_counter()
                if profiler is not None:
                    profiler.enable()
                if count_instructions:
                    instrument("on")
                await peers.run(calls)
                if count_instructions:
                    instrument("off")
                if profiler is not None:
                    profiler.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            finally:
                peers.close()
            if profiler is not None and profile is not None:
                profiler.dump_stats(profile)
            server = cpu - peers.cpu
            written = ""
            if sip.records is not None:
                await sip.records.flush()
                async with platform.db.read() as session:
                    rows = await session.scalar(select(func.count()).select_from(CallDetailRecord))
                written = f"call records in the database: {rows} (warm-up included)\n"
            pairs = getattr(getattr(sip, "media", None), "pairs", None)
            if pairs is not None and pairs.opened:
                # Reused pairs cost no sockets: a run much shorter than
                # `port_reuse_after` opens a pair for nearly every call.
                written += f"media port pairs opened: {pairs.opened} (warm-up included)\n"
            print(
                f"{calls} calls in process ({peers.concurrency} at a time, call records "
                f"{'on' if records else 'off'}): {wall:.2f} s, {calls / wall:.0f} calls/s\n"
                f"CPU per call: {1000 * cpu / calls:.3f} ms in all, of which the simulated "
                f"peers {1000 * peers.cpu / calls:.3f} ms; server {1000 * server / calls:.3f} ms"
                f" = {calls / server:.0f} calls per CPU-second\n{written}",
                end="",
            )
        finally:
            if platform.sip is not None:
                await platform.sip.stop()
            await platform.close()


async def _answering_service(platform: Any, uow: Any, tenant_id: str) -> None:
    """A service whose flow answers and hangs up, on ANSWERING_NUMBER."""
    from telportal.ivr.publishing import FlowRepository  # noqa: PLC0415
    from telportal.store.schema import BusinessCenter  # noqa: PLC0415
    from telportal.tenancy import schemas  # noqa: PLC0415

    res = platform.resources
    center = await uow.session.scalar(
        select(BusinessCenter.id).where(BusinessCenter.tenant_id == tenant_id)
    )
    service = await res["services"].create(
        uow,
        schemas.ServiceCreate(
            tenant_id=tenant_id, code="bench", name="Bench", business_center_id=center
        ),
    )
    await FlowRepository(platform.db).publish(uow, service.id, ANSWER_AND_HANG_UP, note="bench")
    number = await res["numbers"].create(
        uow, schemas.NumberCreate(number=ANSWERING_NUMBER, description="bench")
    )
    await res["number-links"].create(
        uow,
        schemas.NumberLinkCreate(number_id=number.id, tenant_id=tenant_id, service_id=service.id),
    )


def answering_service_over_api(base: str, headers: dict[str, str], tenant_id: str) -> None:
    """What _answering_service does, through the API of a running server."""

    def post(path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(f"{base}/api/v1/{path}", headers=headers, json=body)
        if r.status_code != 201:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text}")
        return r.json()

    centers = httpx.get(
        f"{base}/api/v1/business-centers", headers=headers, params={"tenant_id": tenant_id}
    ).json()["items"]
    service = post("services", {"tenant_id": tenant_id, "code": "bench", "name": "Bench",
                                "business_center_id": centers[0]["id"]})  # fmt: skip
    post(f"services/{service['id']}/flows", {"yaml": ANSWER_AND_HANG_UP, "note": "bench"})
    number = post("numbers", {"number": ANSWERING_NUMBER, "description": "bench"})
    post("number-links", {"number_id": number["id"], "tenant_id": tenant_id,
                          "service_id": service["id"]})  # fmt: skip


def start_uas(
    sipp: str, tmp: str, port: int, transport: str, cpus: set[int] | None = None
) -> "subprocess.Popen[bytes]":
    """SIPp's built-in UAS, as extension 1002's phone."""
    return subprocess.Popen(
        pinned(
            [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-t", transport, "-nostdin"],
            cpus,
        ),
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def prepare(base: str, answered_here: bool) -> dict[str, str]:
    """Through the API: the caller's trunk and, answered here, the called number's
    service. Returns the admin's request headers."""
    login = {"username": "admin", "password": PW}
    token = httpx.post(f"{base}/api/v1/auth/token", json=login).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    tid = httpx.get(f"{base}/api/v1/tenants", headers=h).json()["items"][0]["id"]
    trunk = {
        "tenant_id": tid,
        "name": "bench",
        "host": "127.0.0.1",
        "inbound_addresses": ["127.0.0.1/32"],
        "keepalive": False,
    }
    httpx.post(f"{base}/api/v1/trunks", headers=h, json=trunk).raise_for_status()
    if answered_here:
        answering_service_over_api(base, h, tid)
    time.sleep(0.5)  # the SIP directory reloads on the change
    return h


def stop(process: "subprocess.Popen[bytes]", grace: float) -> None:
    """Terminate process; kill it if it has not exited after grace seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def report_errors(log: Path) -> None:
    """The server log's errors: how many, the first few, and what was raised."""
    lines = log.read_text().splitlines()
    errors = [line for line in lines if "ERROR" in line]
    print(f"server log errors: {len(errors)}", *errors[:5], sep="\n  ")
    # What the errors were: the exception line that ends each traceback.
    raised = collections.Counter(
        line[:160] for line in lines if EXCEPTION_LINE.match(line) is not None
    )
    for line, count in raised.most_common(5):
        print(f"  {count:6d} x {line}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000, help="calls per rate step")
    ap.add_argument("--rates", default="100,200,300,400,600,800", help="offered calls/s, rising")
    ap.add_argument("--transport", default="u1", help="SIPp -t: u1 (UDP) or t1 (TCP)")
    ap.add_argument(
        "--server-module", default="telportal", help="run the server as python -m MODULE"
    )
    ap.add_argument("--in-process", type=int, metavar="N", help="N calls without SIPp")
    ap.add_argument(
        "--concurrency", type=int, default=50, help="in process: calls in progress at a time"
    )
    ap.add_argument(
        "--no-call-records", action="store_true", help="leave out the call records (CDR writes)"
    )
    ap.add_argument("--profile", metavar="FILE", help="in process: cProfile the calls")
    ap.add_argument(
        "--answered-here",
        action="store_true",
        help="call a number whose IVR flow answers and hangs up (one leg)",
    )
    ap.add_argument(
        "--gc-freeze",
        action="store_true",
        help="in process: settle the garbage collector after warm-up, as the server does",
    )
    ap.add_argument(
        "--count-instructions",
        action="store_true",
        help="in process, under callgrind: count only the measured calls (bench/instructions.py)",
    )
    ap.add_argument(
        "--record-interval",
        type=float,
        metavar="S",
        help="in process: call records batched every S seconds, not 0.05 (under callgrind, "
        "about 1.5 gives the batch sizes of a full-speed run)",
    )
    ap.add_argument(
        "--invite-copies",
        type=int,
        default=1,
        metavar="N",
        help="in process: send every INVITE N times at once (SIPp's resends when behind)",
    )
    ap.add_argument(
        "--pin",
        action="store_true",
        help="with SIPp: the server on one CPU alone, SIPp and this script on the others",
    )
    args = ap.parse_args()
    if args.in_process:
        import uvloop  # noqa: PLC0415 - a dependency of the server, not of the SIPp mode

        uvloop.run(
            in_process(
                args.in_process,
                args.concurrency,
                not args.no_call_records,
                args.profile,
                args.gc_freeze,
                args.answered_here,
                args.count_instructions,
                args.record_interval,
                args.invite_copies,
            )
        )
        return
    sipp = shutil.which("sipp")
    if sipp is None:
        sys.exit("sipp is not installed (make setup installs sip-tester)")
    server_cpus, sipp_cpus = split_cpus(args.pin)
    http_port, sip_port, uas_port = free_port(socket.SOCK_STREAM), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        module, env = args.server_module, None
        if args.no_call_records:
            # The same server, started through a module that takes the records away.
            (Path(tmp) / "bench_no_records.py").write_text(NO_RECORDS_SERVER.format(module))
            module = "bench_no_records"
            path = os.pathsep.join(filter(None, (tmp, os.environ.get("PYTHONPATH"))))
            env = {**os.environ, "PYTHONPATH": path}
        cmd = [
            sys.executable,
            "-m",
            module,
            "demo",
            "--password",
            PW,
            "--data-dir",
            tmp,
            "--http-listen",
            f"127.0.0.1:{http_port}",
            "--sip-listen",
            f"127.0.0.1:{sip_port}",
        ]
        log = Path(tmp) / "server.log"
        with (
            log.open("wb") as out,
            subprocess.Popen(
                pinned(cmd, server_cpus), stdout=out, stderr=subprocess.STDOUT, env=env
            ) as server,
        ):
            uas: subprocess.Popen[bytes] | None = None
            try:
                base = f"http://127.0.0.1:{http_port}"
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(f"{base}/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.2)
                h = prepare(base, args.answered_here)
                if not args.answered_here:
                    uas = start_uas(sipp, tmp, uas_port, args.transport, sipp_cpus)
                    asyncio.run(register(sip_port, uas_port))
                what = "answered here" if args.answered_here else "bridged to extension 1002"
                where = (
                    f", server on CPU {sorted(server_cpus)}, SIPp on {sorted(sipp_cpus)}"
                    if server_cpus is not None and sipp_cpus is not None
                    else ""
                )
                print(f"transport {args.transport}, {args.calls} calls per step, {what}{where}")
                print(f"reference loop before: {reference_loop_ms():.2f} ms")
                print(
                    "offered/s  achieved/s    ok  failed  server-CPU%  user-s  sys-s"
                    "  CPU-ms/call  calls/CPU-s  resent/recv-again  lost"
                )
                best = total_ok = 0
                for rate in (int(r) for r in args.rates.split(",")):
                    ok, failed, elapsed, (user, system), (resent, repeats, lost) = run_rate(
                        sipp, tmp, sip_port, args.transport, args.calls, rate, server.pid,
                        args.answered_here, sipp_cpus,
                    )  # fmt: skip
                    achieved, cpu = ok / elapsed, user + system
                    print(
                        f"{rate:9d}  {achieved:10.0f}  {ok:4d}  {failed:6d}  "
                        f"{100 * cpu / elapsed:11.0f}  {user:6.2f}  {system:5.2f}"
                        f"  {1000 * cpu / ok if ok else 0:11.2f}  {ok / cpu if cpu else 0:11.0f}"
                        f"  {resent:>8d}/{repeats:<8d}  {lost:4d}"
                    )
                    total_ok += ok
                    if failed:
                        print_sipp_errors(Path(tmp) / f"sipp_errors_{rate}.log")
                        break
                    best = max(best, round(achieved))
                print(f"highest rate with zero failed calls: {best} calls/s")
                print(f"reference loop after: {reference_loop_ms():.2f} ms")
                if not args.no_call_records:
                    print(f"call records at /api/v1/calls: {records_written(base, h, total_ok)}"
                          f" for {total_ok} successful calls")  # fmt: skip
                report_errors(log)
            finally:
                # SIPp's UAS may linger over calls it still holds: it must not keep the
                # server (or this script) waiting.
                if uas is not None:
                    stop(uas, grace=10)
                stop(server, grace=20)


if __name__ == "__main__":
    main()
