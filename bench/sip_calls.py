"""Full B2BUA calls per second: SIPp UAC -> Telportal -> SIPp UAS, on 127.0.0.1.

The caller comes from a trunk's network (so it is not challenged), calls extension
1002, whose phone is a SIPp UAS registered by this script; every call is INVITE,
100, 180, 200, ACK, BYE, 200 on both legs. Prints the rate SIPp achieved, failed
calls, and the server process's CPU use. Bounded: a fixed number of calls.

    .venv/bin/python bench/sip_calls.py [--calls 2000] [--rate 200] [--transport u1]
"""

import argparse
import asyncio
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from telportal.net import Peer, SipTransportLayer, Transport
from telportal.sip import Response
from telportal.sip.digest import answer_challenge

PW = "bench-password-1"
UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="trunk caller">
  <send retrans="500"><![CDATA[
INVITE sip:1002@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]>;tag=[call_number]
To: <sip:1002@[remote_ip]:[remote_port]>
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
To: <sip:1002@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:carrier@[local_ip]>;tag=[call_number]
To: <sip:1002@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def run_rate(
    sipp: str, tmp: str, sip_port: int, transport: str, calls: int, rate: int, server_pid: int
) -> tuple[int, int, float, float]:
    """One SIPp run at `rate`; returns (successful, failed, elapsed s, server CPU s)."""
    scenario = Path(tmp) / "uac.xml"
    scenario.write_text(UAC)
    cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
    uac = subprocess.run(
        [
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
        ],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    elapsed, cpu = time.monotonic() - t0, cpu_seconds(server_pid) - cpu0
    ok = re.search(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", uac.stdout)
    failed = re.search(r"Failed call\s+\|\s+\d+\s+\|\s+(\d+)", uac.stdout)
    return (int(ok.group(1)) if ok else 0, int(failed.group(1)) if failed else calls, elapsed, cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000, help="calls per rate step")
    ap.add_argument("--rates", default="100,200,300,400,600,800", help="offered calls/s, rising")
    ap.add_argument("--transport", default="u1", help="SIPp -t: u1 (UDP) or t1 (TCP)")
    args = ap.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None:
        sys.exit("sipp is not installed (make setup installs sip-tester)")
    http_port, sip_port, uas_port = free_port(socket.SOCK_STREAM), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "telportal",
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
            subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT) as server,
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
                time.sleep(0.5)  # the SIP directory reloads on the change
                uas = subprocess.Popen(
                    [
                        sipp,
                        "-sn",
                        "uas",
                        "-i",
                        "127.0.0.1",
                        "-p",
                        str(uas_port),
                        "-t",
                        args.transport,
                        "-nostdin",
                    ],
                    cwd=tmp,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                asyncio.run(register(sip_port, uas_port))
                print(f"transport {args.transport}, {args.calls} calls per step")
                print("offered/s  achieved/s  ok  failed  server-CPU%  calls/CPU-s")
                best = 0
                for rate in (int(r) for r in args.rates.split(",")):
                    ok, failed, elapsed, cpu = run_rate(
                        sipp, tmp, sip_port, args.transport, args.calls, rate, server.pid
                    )
                    achieved = ok / elapsed
                    print(
                        f"{rate:9d}  {achieved:10.0f}  {ok:4d}  {failed:6d}  "
                        f"{100 * cpu / elapsed:10.0f}  {ok / cpu if cpu else 0:11.0f}"
                    )
                    if failed:
                        break
                    best = max(best, round(achieved))
                print(f"highest rate with zero failed calls: {best} calls/s")
                errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
                print(f"server log errors: {len(errors)}", *errors[:5], sep="\n  ")
            finally:
                if uas is not None:
                    uas.terminate()
                    uas.wait(timeout=10)
                server.terminate()
                server.wait(timeout=20)


if __name__ == "__main__":
    main()
