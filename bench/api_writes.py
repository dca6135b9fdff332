"""Configuration writes through the real HTTP API on SQLite (or a given database URL).

Starts `telportal demo` as a separate process on a free port, signs in as the
demo admin, then creates N skills with C concurrent clients and prints the
throughput and latency percentiles. Bounded in count and time; loopback only.

    .venv/bin/python bench/api_writes.py [--n 2000] [--concurrency 16]
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

import httpx

PW = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def run(base: str, n: int, concurrency: int) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        r = await client.post("/api/v1/auth/token", json={"username": "admin", "password": PW})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        tenants = (await client.get("/api/v1/tenants", headers=headers)).json()
        tid = tenants["items"][0]["id"]
        latencies: list[float] = []
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                t0 = time.perf_counter()
                resp = await client.post(
                    "/api/v1/skills",
                    json={"tenant_id": tid, "name": f"skill-{i}"},
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
    print(f"creates: {n}  concurrency: {concurrency}  elapsed: {elapsed:.2f} s")
    print(f"throughput: {n / elapsed:.0f} creates/s")
    print(
        f"latency ms: p50 {q[49] * 1000:.1f}  p99 {q[98] * 1000:.1f}"
        f"  max {latencies[-1] * 1000:.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    port = free_port()
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
            f"127.0.0.1:{port}",
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
