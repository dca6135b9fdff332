"""The garbage collector under call load: how long its collections stop the event loop,
how late a 20 ms timer wakes meanwhile (what the media ticks on the same loop see),
and which objects are young when a collection starts.

Runs `sip_calls.py --in-process N --answered-here --gc-freeze` (the collector settled
as `telportal serve` settles it, with the server's thresholds unless --thresholds) and,
from the settling on:

- every collection timed by generation (`gc.callbacks`);
- a task sleeping 20 ms in a loop, and how late each sleep ends;
- with --stalls MS, where the event loop's thread was whenever the sleeper had not
  woken MS ms after it should have (a watchdog thread samples its stack every 2 ms
  while it is late; the innermost frames, counted by sample);
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
import threading
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import sip_calls

from telportal import server

SLEEP = 0.02


class StallWatch:
    """Samples the loop thread's stack while the sleeper is late by more than limit."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.due = 0.0  # when the sleeper should wake; 0: not sleeping
        self.samples: collections.Counter[str] = collections.Counter()
        self.stalls = 0
        self._loop_thread = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        stalled = False
        while not self._stop.wait(0.002):
            due = self.due
            late = due > 0 and time.perf_counter() - due > self.limit
            if late and not stalled:
                self.stalls += 1
            stalled = late
            if late:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    stack = traceback.extract_stack(frame)[-6:]
                    self.samples[
                        " < ".join(
                            f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack)
                        )
                    ] += 1

    def report(self, top: int) -> None:
        print(f"stalls over {1000 * self.limit:.0f} ms: {self.stalls}; 2 ms samples in them:")
        for stack, count in self.samples.most_common(top):
            print(f"  {count:5d}  {stack}")


class Probe:
    def __init__(
        self,
        thresholds: tuple[int, int, int] | None,
        count_young: bool,
        types_at: int,
        stalls: StallWatch | None = None,
    ) -> None:
        self.thresholds = thresholds
        self.stalls = stalls
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
        if self.stalls is not None:
            self.stalls.start()

    async def _sleep(self) -> None:
        while True:
            start = time.perf_counter()
            if self.stalls is not None:
                self.stalls.due = start + SLEEP
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
    ap.add_argument(
        "--stalls",
        type=float,
        metavar="MS",
        help="sample the loop thread's stack while the sleeper is this late",
    )
    args = ap.parse_args()
    thresholds = None
    if args.thresholds:
        first, second, third = (int(n) for n in args.thresholds.split(","))
        thresholds = (first, second, third)
    stalls = None if args.stalls is None else StallWatch(args.stalls / 1000)
    probe = Probe(thresholds, args.count_young, args.types_at, stalls)
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
        if stalls is not None:
            stalls.stop()
    probe.report(args.calls, args.types)
    if stalls is not None:
        stalls.report(args.types)


if __name__ == "__main__":
    main()
