"""The floor under bench/sip_calls.py: the same B2BUA calls with no SIP stack at all.

    .venv/bin/python bench/sip_floor.py [--calls 20000] [--concurrency 20]

Not a product and not a SIP implementation: a measuring stick. It relays the calls
of `sip_calls.py --in-process` (the same simulated caller and callee, the same 12
datagrams a call: INVITE, 100, 180, 200, ACK, BYE, 200 on each side as they occur)
with what any Python B2BUA must do at the least: one uvloop datagram callback per
message, the header lines split into a dict, a dict of calls by Call-ID, the answer
or the relayed request written as text and sent. No validation, no transactions, no
timers, no retransmission, no dialogs, no call records. Its CPU per call is what
Python and the kernel cost on this machine before any SIP logic: the gap between it
and the real stack is what the real stack's layers cost.
"""

import argparse
import asyncio
import itertools
import os
import time
from typing import cast

import uvloop
from sip_calls import SimulatedPeers, free_port

Address = tuple[str | int, ...]


def split(data: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    first, *lines = head.decode().split("\r\n")
    return first, dict(line.split(": ", 1) for line in lines), body


class FloorB2bua(asyncio.DatagramProtocol):
    def __init__(self, port: int, callee: tuple[str, int]) -> None:
        self.port, self.callee = port, callee
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, tuple[str, dict[str, str], Address]] = {}  # by B's Call-ID
        self.by_a: dict[str, str] = {}  # A's Call-ID -> B's
        self.ids = itertools.count()
        self.prefix = os.urandom(4).hex()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def reply(self, status: str, h: dict[str, str], to: Address, extra: str = "") -> None:
        assert self.transport is not None
        text = (
            f"SIP/2.0 {status}\r\nVia: {h['Via']}\r\nFrom: {h['From']}\r\nTo: {h['To']}\r\n"
            f"Call-ID: {h['Call-ID']}\r\nCSeq: {h['CSeq']}\r\n{extra}"
        )
        self.transport.sendto(text.encode(), to)

    def request(self, method: str, b_id: str, cseq: int, to_tag: str, body: bytes) -> None:
        assert self.transport is not None
        n = next(self.ids)
        text = (
            f"{method} sip:1002@127.0.0.1:{self.callee[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{self.prefix}{n};rport\r\n"
            f"From: <sip:carrier@127.0.0.1:{self.port}>;tag={b_id}\r\n"
            f"To: <sip:1002@127.0.0.1:{self.callee[1]}>{to_tag}\r\nCall-ID: {b_id}\r\n"
            f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
        )
        if body:
            text += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
            self.transport.sendto(text.encode() + body, self.callee)
        else:
            self.transport.sendto((text + "Content-Length: 0\r\n\r\n").encode(), self.callee)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        first, h, body = split(data)
        if first.startswith("SIP/2.0 "):  # from B
            call = self.calls.get(h["Call-ID"])
            if call is None:
                return
            a_id, a, source = call
            if h["CSeq"].endswith("BYE"):
                del self.calls[h["Call-ID"]]
            elif first.startswith("SIP/2.0 180"):
                self.reply("180 Ringing", a, source, "Content-Length: 0\r\n\r\n")
            elif first.startswith("SIP/2.0 200"):
                self.calls[h["Call-ID"]] = (a_id, {**a, "B-To": h["To"]}, source)
                contact = f"Contact: <sip:telportal@127.0.0.1:{self.port}>\r\n"
                sdp = f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
                assert self.transport is not None
                text = (
                    f"SIP/2.0 200 OK\r\nVia: {a['Via']}\r\nFrom: {a['From']}\r\nTo: {a['To']}\r\n"
                    f"Call-ID: {a['Call-ID']}\r\nCSeq: {a['CSeq']}\r\n{contact}{sdp}"
                )
                self.transport.sendto(text.encode() + body, source)
            return
        method = first.partition(" ")[0]
        if method == "INVITE":
            b_id = f"{self.prefix}-{next(self.ids)}"
            h["To"] += f";tag={b_id}"
            self.calls[b_id] = (h["Call-ID"], h, addr)
            self.by_a[h["Call-ID"]] = b_id
            self.reply("100 Trying", h, addr, "Content-Length: 0\r\n\r\n")
            self.request("INVITE", b_id, 1, "", body)
        elif method in ("ACK", "BYE"):
            b_id = self.by_a.get(h["Call-ID"], "")
            call = self.calls.get(b_id)
            if call is None:
                return
            tag = call[1]["B-To"].partition(">")[2]
            if method == "BYE":
                self.reply("200 OK", h, addr, "Content-Length: 0\r\n\r\n")
                del self.by_a[h["Call-ID"]]
                self.request("BYE", b_id, 2, tag, b"")
            else:
                self.request("ACK", b_id, 1, tag, b"")


async def main(calls: int, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    port = free_port()
    peers = SimulatedPeers(port, concurrency)
    await peers.open()
    floor = FloorB2bua(port, ("127.0.0.1", peers.callee_port))
    transport, _ = await loop.create_datagram_endpoint(
        lambda: floor, local_addr=("127.0.0.1", port)
    )
    try:
        await peers.run(min(500, calls))  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        await peers.run(calls)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        peers.close()
        transport.close()
    server = cpu - peers.cpu
    print(
        f"{calls} calls through the floor B2BUA ({concurrency} at a time): {wall:.2f} s, "
        f"{calls / wall:.0f} calls/s\nCPU per call: {1000 * cpu / calls:.3f} ms in all, of "
        f"which the simulated peers {1000 * peers.cpu / calls:.3f} ms; the floor B2BUA "
        f"{1000 * server / calls:.3f} ms = {calls / server:.0f} calls per CPU-second"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=20)
    args = ap.parse_args()
    uvloop.run(main(args.calls, args.concurrency))
