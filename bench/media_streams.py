"""N concurrent endpoints playing a pre-encoded prompt to UDP sinks on 127.0.0.1.

The engine runs in this process (uvloop by default) with its one shared 20 ms clock.
The sinks run in a child process that only counts what arrives, so receiving costs the
engine's core nothing. Each packet's send time is taken right after `sendto` through
the engine's `wrap_transmit` seam (about half a microsecond per packet, included in the
CPU figure). Lateness of a packet = its send time minus the time its RTP timestamp says
it is due, measured against the best packet of the same stream (the stream's zero).
Only the measured window, after a warm-up, counts.

    .venv/bin/python bench/media_streams.py [--streams 1000] [--seconds 10]

Prints the engine's CPU use, packets sent and received, the share of packets sent
within 3 ms of schedule, p50/p99/max lateness, and the scheduler's late/skipped ticks.
"""

import argparse
import asyncio
import gc
import json
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

import uvloop

from telportal.media import EmbeddedMediaEngine, MediaConfig, Playlist, PlaySpeech, Transmit
from telportal.sdp import PCMA, PCMU, LocalMedia, create_offer

RTP_CLOCK = 8000
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # the Linux value; 3.11 lacks it


def sink_main(count: int) -> None:
    """Child process: count datagrams on `count` sockets until a line arrives on stdin.

    It polls every 20 ms instead of waiting in select: a reader blocked on a socket
    makes every send wake it up, which would bill the engine for the sink's wake-ups.
    It runs at the lowest priority so it never takes the CPU from the engine.
    """
    os.nice(19)
    # Root may exceed net.core.rmem_max; 20 ms of packets must fit in the buffers.
    option = SO_RCVBUFFORCE if os.geteuid() == 0 else socket.SO_RCVBUF
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, option, 16 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        sockets.append(sock)
    print(json.dumps([s.getsockname()[1] for s in sockets]), flush=True)
    received = 0
    buffer = bytearray(2048)
    while not select.select([sys.stdin], [], [], 0)[0]:
        time.sleep(0.02)
        for sock in sockets:
            receive = sock.recv_into
            while True:
                try:
                    size = receive(buffer)
                except BlockingIOError:
                    break
                if size >= 12 and not 192 <= buffer[1] <= 223:  # RTP, not RTCP
                    received += 1
    sys.stdin.readline()
    print(json.dumps({"received": received}), flush=True)


class SendLog:
    """Timestamp-and-SSRC words and send times, in flat arrays: no object per packet, so
    the measurement adds no garbage-collector work to the engine it measures."""

    def __init__(self) -> None:
        self.on = False
        self.headers = array("Q")
        self.times = array("d")


class TimedTransmit:
    def __init__(self, inner: Transmit, log: SendLog) -> None:
        self.inner = inner
        self.log = log

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.inner.sendto(data, addr)
        log = self.log
        if log.on:
            log.times.append(time.monotonic())
            log.headers.append(int.from_bytes(data[4:12]))


def lateness_ms(log: SendLog) -> list[float]:
    streams: dict[int, list[tuple[int, float]]] = {}
    for word, sent in zip(log.headers, log.times, strict=True):
        streams.setdefault(word & 0xFFFFFFFF, []).append((word >> 32, sent))
    late: list[float] = []
    for packets in streams.values():
        first = packets[0][0]
        due = [sent - ((ts - first) % (1 << 32)) / RTP_CLOCK for ts, sent in packets]
        zero = min(due)
        late.extend((d - zero) * 1000 for d in due)
    late.sort()
    return late


class GcWatch:
    """Counts the garbage collector's passes and their total pause, to tell them apart
    from other stalls."""

    def __init__(self) -> None:
        self.passes = 0
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.passes += 1
            self.seconds += time.perf_counter() - self._started


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def engine_main(args: argparse.Namespace, sink_ports: list[int]) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="telportal-bench-media-") as cache:
        return await measure(args, sink_ports, Path(cache))


async def measure(
    args: argparse.Namespace, sink_ports: list[int], cache: Path
) -> dict[str, object]:
    config = MediaConfig(
        port_min=args.port_min,
        port_max=args.port_min + 4 * args.streams + 10,
        cache_dir=cache,
        scheduler_slots=args.slots,
    )
    log = SendLog()

    prompt = Playlist.of(
        PlaySpeech("Welcome to Telportal. Your call is important to us. Please hold."),
        loop=True,
    )
    engine = EmbeddedMediaEngine(config, wrap_transmit=lambda _, inner: TimedTransmit(inner, log))
    async with engine:
        legs = []
        for index in range(args.streams):
            codec = PCMU if index % 2 else PCMA
            port = sink_ports[index % len(sink_ports)]
            offer = create_offer(LocalMedia("127.0.0.1", port, codecs=(codec,)), index, 1)
            legs.append(await engine.create_endpoint(f"bench-{index}", offer))
        await engine.load(prompt.items)  # synthesize and encode once, before the clock
        for leg in legs:
            await engine.play(leg.endpoint_id, prompt, barge_in=False)
        await asyncio.sleep(args.warmup)

        def sent() -> int:
            return sum(engine.switch.session(leg.endpoint_id).sender.packets for leg in legs)

        stats = engine.scheduler_stats
        ticks_before = (stats.ticks_run, stats.ticks_late, stats.ticks_skipped)
        before = (sent(), cpu_seconds(), time.monotonic())
        watch = GcWatch()
        gc.callbacks.append(watch)
        log.on = True
        await asyncio.sleep(args.seconds)
        log.on = False
        gc.callbacks.remove(watch)
        after = (sent(), cpu_seconds(), time.monotonic())
        wall = after[2] - before[2]
        sessions = [engine.switch.session(leg.endpoint_id) for leg in legs]
    total_sent = sum(session.sender.packets for session in sessions)
    return {
        "packets_sent": after[0] - before[0],
        "total_sent": total_sent,
        "cpu_percent": 100 * (after[1] - before[1]) / wall,
        "wall": wall,
        "ticks_run": stats.ticks_run - ticks_before[0],
        "ticks_late": stats.ticks_late - ticks_before[1],
        "ticks_skipped": stats.ticks_skipped - ticks_before[2],
        "lateness": lateness_ms(log),
        "gc": f"{watch.passes} passes, {watch.seconds * 1000:.1f} ms in all",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--sinks", type=int, default=8)
    parser.add_argument("--slots", type=int, default=10, help="scheduler slots per 20 ms")
    parser.add_argument("--within-ms", type=float, default=3.0)
    parser.add_argument("--port-min", type=int, default=30000)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink_main(args.sinks)
        return
    sink = subprocess.Popen(
        [sys.executable, __file__, "--sink", "--sinks", str(args.sinks)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None
        assert sink.stdin is not None
        sink_ports = json.loads(sink.stdout.readline())
        runner = uvloop.run if args.loop == "uvloop" else asyncio.run
        result = runner(engine_main(args, sink_ports))
        time.sleep(0.2)  # let the last datagrams land
        sink.stdin.write("stop\n")
        sink.stdin.flush()
        received = json.loads(sink.stdout.readline())["received"]
    finally:
        sink.kill()
        sink.wait()
    late: list[float] = result["lateness"]  # type: ignore[assignment]
    count = len(late)
    within = sum(1 for value in late if value <= args.within_ms)
    wall: float = result["wall"]  # type: ignore[assignment]
    sent: int = result["packets_sent"]  # type: ignore[assignment]

    def quantile(q: float) -> float:
        return late[min(count - 1, int(q * count))]

    print(f"streams           {args.streams} ({args.loop}, {args.slots} slots per 20 ms)")
    print(f"window            {wall:.1f} s after a {args.warmup:g} s warm-up")
    print(f"engine CPU        {result['cpu_percent']:.1f} % of one core")
    print(f"packets sent      {sent:,} ({sent / wall:,.0f}/s; due {args.streams * 50:,}/s)")
    print(f"packets received  {received:,} of {result['total_sent']:,} sent in the whole run")
    print(f"within {args.within_ms:g} ms      {100 * within / count:.2f} % of {count:,} timed")
    print(
        f"lateness          p50 {quantile(0.5):.2f} ms, p99 {quantile(0.99):.2f} ms, "
        f"max {late[-1]:.2f} ms"
    )
    print(
        f"scheduler         {result['ticks_run']:,} ticks, {result['ticks_late']} late, "
        f"{result['ticks_skipped']} skipped"
    )
    print(f"garbage collector {result['gc']}")
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average      {load} at the end (other work shares this machine)")


if __name__ == "__main__":
    main()
