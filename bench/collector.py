"""The garbage collector under call load: how long its collections stop the event loop,
how late a 20 ms timer wakes meanwhile (what the media ticks on the same loop see),
and which objects are young when a collection starts.

Runs `sip_calls.py --in-process N --answered-here --gc-freeze` (the collector settled
as `telportal serve` settles it, with the server's thresholds unless --thresholds) and,
from the settling on:

- every collection timed by generation (`gc.callbacks`);
- a task sleeping 20 ms in a loop, and how late each sleep ends;
- the young objects by type at the first young collection (or --types-at N). Divided
  by the calls per young collection (calls / young collections) that is about what a
  call leaves alive for a while: what makes collections frequent (in a run short
  enough that collections come at an even pace: 20,000 calls). Later collections
  find more: the count that triggers them is allocations less deallocations, and the
  objects that die meanwhile are mostly older ones.

    .venv/bin/python bench/collector.py [--calls 20000] [--concurrency 20]
        [--thresholds 50000,20,100] [--types 12]

Figures are real time on this machine: compare runs made one after another.
"""

import argparse
import asyncio
import collections
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import sip_calls

from telportal import server

SLEEP = 0.02


class Probe:
    def __init__(
        self, thresholds: tuple[int, int, int] | None, count_young: bool, types_at: int
    ) -> None:
        self.thresholds = thresholds
        self.types_at = types_at
        self.young_collections = 0
        self.count_young = count_young
        self.young_sizes: list[int] = []
        self.on = False
        self.started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.young: collections.Counter[str] | None = None
        self.lateness: list[float] = []
        self.sleeper: asyncio.Task[None] | None = None
        self._settle = server.settle_garbage_collector

    def settle(self) -> None:
        """What sip_calls calls after its warm-up, in place of the server's own."""
        self._settle()
        if self.thresholds is not None:
            gc.set_threshold(*self.thresholds)
        self.on = True
        self.sleeper = asyncio.get_running_loop().create_task(self._sleep())

    async def _sleep(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(SLEEP)
            self.lateness.append(time.perf_counter() - start - SLEEP)

    def collection(self, phase: str, info: dict[str, Any]) -> None:
        if not self.on:
            return
        if phase == "start":
            if info["generation"] == 0:
                self.young_collections += 1
            if info["generation"] == 0 and self.young_collections == self.types_at:
                self.young = collections.Counter(
                    type(obj).__qualname__ for obj in gc.get_objects(0)
                )
            if self.count_young:  # a collection walks its generation and the younger
                walked = range(info["generation"] + 1)
                self.young_sizes.append(sum(len(gc.get_objects(g)) for g in walked))
            self.started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self.started)

    def report(self, calls: int, types: int) -> None:
        print(f"thresholds {gc.get_threshold()}")
        for generation, pauses in self.pauses.items():
            if pauses:
                print(
                    f"generation {generation}: {len(pauses)} collections, "
                    f"{1000 * sum(pauses):.0f} ms in all ({1e6 * sum(pauses) / calls:.1f} us "
                    f"a call), longest {1000 * max(pauses):.1f} ms"
                )
        if self.young_sizes:
            print(f"objects in the collected generations: {self.young_sizes}")
        late = sorted(self.lateness)
        if late:

            def at(q: float) -> float:
                return 1000 * late[min(len(late) - 1, int(q * len(late)))]

            print(
                f"a {1000 * SLEEP:.0f} ms sleep woke late by: p50 {at(0.5):.1f} ms, "
                f"p99 {at(0.99):.1f} ms, max {1000 * late[-1]:.1f} ms ({len(late)} sleeps)"
            )
        # Every collection, of whatever generation, starts the young count again.
        runs = len(self.pauses[0]) + len(self.pauses[1]) + len(self.pauses[2])
        if self.young is not None and runs:
            per_collection = calls / runs
            total = sum(self.young.values())
            print(
                f"young objects at young collection {self.types_at}: {total}; about "
                f"{per_collection:.0f} calls per collection, so {total / per_collection:.1f} "
                "a call, of which:"
            )
            for name, count in self.young.most_common(types):
                print(f"  {count / per_collection:6.2f} {name}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--thresholds", help="gc.set_threshold after settling (the server's)")
    ap.add_argument("--types", type=int, default=12, help="object types listed")
    ap.add_argument(
        "--count-young",
        action="store_true",
        help="count the objects of the generations each collection walks (makes sleeps later)",
    )
    ap.add_argument(
        "--types-at", type=int, default=1, help="list young objects at this young collection"
    )
    args = ap.parse_args()
    thresholds = None
    if args.thresholds:
        first, second, third = (int(n) for n in args.thresholds.split(","))
        thresholds = (first, second, third)
    probe = Probe(thresholds, args.count_young, args.types_at)
    server.settle_garbage_collector = probe.settle  # sip_calls imports it when it settles
    gc.callbacks.append(probe.collection)
    sys.argv = [
        "sip_calls.py",
        "--in-process",
        str(args.calls),
        "--concurrency",
        str(args.concurrency),
        "--answered-here",
        "--gc-freeze",
    ]
    try:
        sip_calls.main()
    finally:
        gc.callbacks.remove(probe.collection)
    probe.report(args.calls, args.types)


if __name__ == "__main__":
    main()
