"""Case creations through the ASGI app in this process: no uvicorn, no sockets, one
case after another (issue 7).

The HTTP benchmark (`cases_api.py`) shares two cores between the server and its
client, and the machine's other work moves its figures by 10-20% from run to run.
This measures the API's own CPU per case, and is the tool for comparing two trees
of the code: run each in turn a few times, in the same minutes,

    .venv/bin/python bench/cases_inprocess.py [--n 3000] [--profile]
    PYTHONPATH=/path/to/other/src .venv/bin/python bench/cases_inprocess.py

It builds the platform on a fresh SQLite file, seeds the demo tenant, signs in as
agent 1001, opens 200 cases to warm up, then N cases, --concurrency at a time (1:
one after another; more, and SQLite's units commit in groups); it prints the CPU
and wall time per case and, with --profile, cProfile's top functions (about 3x
real time). After the warm-up the garbage collector is settled as `telportal serve`
settles it (`server.settle_garbage_collector`).
"""

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from telportal.api.app import create_api
from telportal.app import build_platform
from telportal.config import Config
from telportal.demo import seed_demo
from telportal.server import settle_garbage_collector

PASSWORD = "bench-password-1"


async def main(n: int, concurrency: int, profile: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="telportal-bench-"))
    platform = build_platform(Config(data_dir=data))
    await platform.start()
    await seed_demo(platform, PASSWORD)
    app = create_api(platform)

    async def call(
        method: str, path: str, body: object, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, bytes]:
        raw = json.dumps(body).encode()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80), "state": {},
            "headers": [
                (b"host", b"bench"), (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()), *headers,
            ],
        }  # fmt: skip
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:  # the app only asks again to see a disconnect
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        out: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            out.append(message)

        await app(scope, receive, send)
        body_out = b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")
        return int(out[0]["status"]), body_out

    status, body = await call(
        "POST", "/api/v1/auth/token", {"username": "1001@acme", "password": PASSWORD}, []
    )
    assert status == 200, body
    auth = [(b"authorization", f"Bearer {json.loads(body)['access_token']}".encode())]

    async def serial(count: int, tag: str) -> None:
        for i in range(count):
            new = {"subject": f"{tag} {i}", "category": "bench", "urgency": "normal"}
            status, body = await call("POST", "/api/v1/cases", new, auth)
            assert status == 201, body

    async def cases(count: int, tag: str) -> None:
        share, extra = divmod(count, concurrency)
        await asyncio.gather(
            *(serial(share + (k < extra), f"{tag} {k}") for k in range(concurrency))
        )

    await cases(200, "warm-up")
    settle_garbage_collector()  # as `telportal serve` does once started
    profiler = cProfile.Profile() if profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    await cases(n, "bench")
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{n} cases in process, {concurrency} at a time: {cpu / n * 1e3:.3f} ms CPU,"
        f" {wall / n * 1e3:.3f} ms wall each"
    )
    groups = getattr(platform.db, "groups", None)  # None before group commit (A/B runs)
    if groups is not None:
        print(f"{groups.units} write units in {groups.commits} COMMITs")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    await platform.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    asyncio.run(main(args.n, args.concurrency, args.profile))
