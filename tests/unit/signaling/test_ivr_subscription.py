"""An IVR call listens to its own media endpoint's events only, from the moment the
endpoint exists: at 20 calls in progress, a subscription to every endpoint took the
events of the other 19 calls, each one a wake-up of the call's task for nothing."""

import asyncio
import gc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from telportal.clock import SystemClock
from telportal.ivr.checker import load_flow
from telportal.media import EmbeddedMediaEngine, EndpointInfo, MediaConfig
from telportal.sdp import SessionDescription
from telportal.signaling.calls import InboundCall
from telportal.signaling.ivr_call import IvrCall

FLOW = """
flow: wait
tenant: acme
steps:
  ask:
    type: gather
    prompt: Press a key.
    into: pressed
    min_digits: 1
    max_digits: 1
    timeout: 30s
    next: done
  done:
    type: hangup
"""

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 9 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
)


class Call:
    """The parts of an inbound call an IVR uses (no trunk: no site handover)."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.caller = "13800000000"
        self.tenant_id = "t-acme"
        self.trunk = None
        self.request = None
        self.offer = OFFER.encode()
        self.ended = asyncio.Event()
        self.answered = asyncio.Event()
        self._when_ended: list[Callable[[], None]] = []

    async def answer(self, sdp: bytes) -> None:
        assert sdp.startswith(b"v=0")
        self.answered.set()

    def when_ended(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._when_ended.append(callback)
        return lambda: self._when_ended.remove(callback)

    def end(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            for callback in self._when_ended:
                callback()

    async def hangup(self, reason: str) -> None:
        self.end()


class Engine(EmbeddedMediaEngine):
    """Notes the subscriptions open while each endpoint is being made: the window in
    which an IVR that subscribed first took every endpoint's events."""

    seen_while_creating: list[str | None]

    async def create_endpoint(
        self, call_id: str, remote_sdp: SessionDescription | None = None
    ) -> EndpointInfo:
        self.seen_while_creating.extend(self.subscribed_endpoints)
        await asyncio.sleep(0)  # the other calls go on meanwhile
        info = await super().create_endpoint(call_id, remote_sdp)
        self.seen_while_creating.extend(self.subscribed_endpoints)
        return info


def ivr_for(call: InboundCall, engine: EmbeddedMediaEngine, folder: Path) -> IvrCall:
    return IvrCall(
        call, engine, load_flow(FLOW), SystemClock(), called="4008001000", site="local",
        tenant_slug="acme", prompt_dir=folder, recording_dir=folder,
    )  # fmt: skip


async def test_each_ivr_call_subscribes_to_its_own_endpoint(tmp_path: Path) -> None:
    async with Engine(MediaConfig(cache_dir=tmp_path)) as engine:
        engine.seen_while_creating = []
        calls = [Call(f"call-{n}") for n in range(3)]
        ivrs = [ivr_for(cast(InboundCall, cast(Any, call)), engine, tmp_path) for call in calls]
        served = [asyncio.create_task(ivr.serve()) for ivr in ivrs]
        async with asyncio.timeout(10):
            for call in calls:
                await call.answered.wait()
        assert sorted(map(str, engine.subscribed_endpoints)) == sorted(i.endpoint for i in ivrs)
        assert None not in engine.seen_while_creating  # never a subscription to everything
        # Waiting in the menu, a call is its own task and nothing more: no task per
        # call pumping its events, none per wait racing the next event against the end.
        assert asyncio.all_tasks() == {*served, asyncio.current_task()}
        for call in calls:
            call.end()  # the callers hang up while the menu waits
        async with asyncio.timeout(10):
            records = await asyncio.gather(*served)
        assert [r.outcome for r in records] == ["caller hung up"] * 3
        assert engine.subscribed_endpoints == []
        assert all(not call._when_ended for call in calls)  # each IVR stopped waiting


async def test_an_ended_ivr_call_is_freed_without_the_collector(tmp_path: Path) -> None:
    """Once served, nothing keeps an IVR call in a reference cycle, so reference counting
    frees it at once. It kept its endpoint listener's remover, which holds the call's
    bound `_on_media`: every call left some 36 objects that only the cyclic collector
    could free, and at 2,000 calls/s they made young collections run every third of a
    second and middle ones of 0.6-0.8 s (docs/benchmarks.md, session 17)."""
    async with Engine(MediaConfig(cache_dir=tmp_path)) as engine:
        engine.seen_while_creating = []
        call = Call("call-1")
        ivr = ivr_for(cast(InboundCall, cast(Any, call)), engine, tmp_path)
        served = asyncio.create_task(ivr.serve())
        async with asyncio.timeout(10):
            await call.answered.wait()
        call.end()
        async with asyncio.timeout(10):
            await served
        gone = weakref.ref(ivr)
        gc.disable()
        try:
            del ivr, served
            assert gone() is None
        finally:
            gc.enable()
