"""`EngineOffers`: a phone's mid-call offer answered by its media endpoint, and its
hold reported once per change (the integration side is test_phone_hold.py)."""

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from telportal.events import CallState
from telportal.media import EmbeddedMediaEngine, MediaConfig, MixRole
from telportal.sdp import SessionDescription
from telportal.signaling.agent_leg import AgentLeg, music_while_held
from telportal.signaling.calls import InboundCall, OutboundLeg
from telportal.signaling.live_calls import LiveCall, LiveCalls, Monitor
from telportal.signaling.media_offers import EngineOffers, holds
from telportal.signaling.service import SipService


def offer(direction: str = "sendrecv", *, port: int = 40000, address: str = "127.0.0.1") -> str:
    return (
        f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {address}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    )


@pytest.mark.parametrize(
    ("sdp", "held"),
    [
        (offer("sendrecv"), False),
        (offer("sendonly"), True),
        (offer("inactive"), True),
        (offer("recvonly"), False),  # they stop sending, they still hear us
        (offer(address="0.0.0.0"), True),  # RFC 2543's hold
        # Secure audio first (which the engine does not answer), then plain audio: the
        # plain one decides.
        (
            offer("sendrecv").replace(
                "m=audio", "m=audio 40004 RTP/SAVP 0\r\na=sendonly\r\nm=audio"
            ),
            False,
        ),
        # A video stream first, then audio on hold: the audio decides.
        (
            offer("sendonly").replace(
                "m=audio", "m=video 40002 RTP/AVP 31\r\na=sendrecv\r\nm=audio"
            ),
            True,
        ),
    ],
)
def test_what_counts_as_hold(sdp: str, held: bool) -> None:
    assert holds(SessionDescription.parse(sdp)) is held


async def test_answers_follow_the_offer_and_hold_is_reported_once_per_change(
    tmp_path: Path,
) -> None:
    changes: list[bool] = []

    async def listener(held: bool) -> None:
        changes.append(held)

    async with EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path)) as engine:
        endpoint = await engine.create_endpoint("c1", SessionDescription.parse(offer()))
        offers = EngineOffers(engine, endpoint.endpoint_id)
        offers.on_hold = listener
        for direction, answered in [
            ("sendonly", "recvonly"),
            ("sendonly", "recvonly"),  # a refresh of the hold: no second report
            ("inactive", "inactive"),
            ("sendrecv", "sendrecv"),
        ]:
            answer = await offers.answer(offer(direction).encode())
            assert isinstance(answer, bytes)
            parsed = SessionDescription.parse(answer.decode())
            assert parsed.direction_for(parsed.media[0]).value == answered
        assert changes == [True, False]
        assert await offers.answer(b"v=0\r\nnot sdp") == 488
        assert await offers.answer(b"\xff\xfe") == 488
        await engine.close(endpoint.endpoint_id)
        assert await offers.answer(offer().encode()) == 500  # the endpoint is gone


async def test_a_failing_listener_does_not_refuse_the_offer(tmp_path: Path) -> None:
    async def broken(held: bool) -> None:
        raise RuntimeError("no music today")

    async with EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path)) as engine:
        endpoint = await engine.create_endpoint("c1", SessionDescription.parse(offer()))
        offers = EngineOffers(engine, endpoint.endpoint_id)
        offers.on_hold = broken
        answer = await offers.answer(offer("sendonly").encode())
        assert isinstance(answer, bytes) and b"a=recvonly" in answer
        assert offers.held


async def test_the_caller_hears_music_while_the_agents_phone_holds(tmp_path: Path) -> None:
    """A call with no call control (a callback): `music_while_held` plays the music."""
    async with EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path)) as engine:
        caller = await engine.create_endpoint("c1", SessionDescription.parse(offer()))
        phone = await engine.create_endpoint("c1", SessionDescription.parse(offer(port=40010)))
        leg = SimpleNamespace(offer_answerer=EngineOffers(engine, phone.endpoint_id))
        agent = AgentLeg("1001", cast(OutboundLeg, leg), phone.endpoint_id)
        await engine.bridge(caller.endpoint_id, phone.endpoint_id)
        music_while_held(agent, engine, caller.endpoint_id)
        await leg.offer_answerer.answer(offer("sendonly", port=40010).encode())
        assert engine.switch.playing(caller.endpoint_id) is not None
        await leg.offer_answerer.answer(offer("sendrecv", port=40010).encode())
        assert engine.switch.playing(caller.endpoint_id) is None
        assert engine.switch.bridged_to(caller.endpoint_id) == phone.endpoint_id
        # Held and at once resumed: the music that was loading does not start after.
        await asyncio.gather(
            leg.offer_answerer.answer(offer("sendonly", port=40010).encode()),
            leg.offer_answerer.answer(offer("sendrecv", port=40010).encode()),
        )
        await asyncio.sleep(0.05)
        assert engine.switch.playing(caller.endpoint_id) is None


class _Service:
    """What `LiveCalls` asks of the SIP service: its engine, its bus, and tasks."""

    def __init__(self, engine: EmbeddedMediaEngine) -> None:
        self.media = engine
        self.published: list[str] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.bus = SimpleNamespace(publish=self._publish)

    async def _publish(self, event: CallState) -> None:
        self.published.append(event.state)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(asyncio.create_task(coro))

    async def settle(self) -> None:
        while self.tasks:
            await self.tasks.pop(0)


def held(live: LiveCall) -> bool:
    """The call's hold, read afresh (an attribute test would narrow it for mypy)."""
    return live.held


def caller_held(live: LiveCall) -> bool:
    return live.caller_held


async def _connected_call(engine: EmbeddedMediaEngine) -> tuple[LiveCall, LiveCalls, _Service]:
    """A caller bridged to agent 1001, both legs answered by their engine endpoints;
    the call not yet added to its `LiveCalls`."""
    caller = await engine.create_endpoint("c1", SessionDescription.parse(offer()))
    phone = await engine.create_endpoint("c1", SessionDescription.parse(offer(port=40010)))
    leg = SimpleNamespace(offer_answerer=EngineOffers(engine, phone.endpoint_id))
    agent = AgentLeg("1001", cast(OutboundLeg, leg), phone.endpoint_id)
    offers = EngineOffers(engine, caller.endpoint_id)
    party = SimpleNamespace(ended=asyncio.Event(), offer_answerer=offers)
    live = LiveCall(
        "t1", "c1", "13800000000", "sales", "u1", agent, caller.endpoint_id,
        cast(InboundCall, party), None,
    )  # fmt: skip
    service = _Service(engine)
    await engine.bridge(caller.endpoint_id, phone.endpoint_id)
    return live, LiveCalls(cast(SipService, service)), service


@pytest.mark.parametrize("held_before", [False, True])
async def test_call_control_follows_the_agents_hold_button(
    tmp_path: Path, held_before: bool
) -> None:
    """The phone's hold is the call's hold (music, `held`, the event); a phone that held
    before the call was connected is found held when it is."""
    async with EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path)) as engine:
        live, calls, service = await _connected_call(engine)
        offers = cast(EngineOffers, live.agent.leg.offer_answerer)
        caller, phone = live.caller_endpoint, live.agent.endpoint_id
        if held_before:
            await offers.answer(offer("sendonly", port=40010).encode())
        calls.add(live)
        await service.settle()
        if not held_before:
            assert not held(live) and engine.switch.playing(caller) is None
            await offers.answer(offer("sendonly", port=40010).encode())
            await service.settle()
        assert held(live) and engine.switch.playing(caller) is not None
        await offers.answer(offer("sendrecv", port=40010).encode())
        await service.settle()
        assert not held(live) and engine.switch.playing(caller) is None
        assert engine.switch.bridged_to(caller) == phone
        assert service.published == ["talking", "held", "talking"]
        calls.remove(live)
        assert offers.on_hold is None


async def test_a_callers_quick_hold_and_resume_leave_the_agent_no_music(tmp_path: Path) -> None:
    """The caller's phone holds and at once resumes: the music the hold started loading
    for the agent must not start after the resume stopped it."""
    async with EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path)) as engine:
        live, calls, service = await _connected_call(engine)
        offers = cast(EngineOffers, live.party.offer_answerer)
        caller, phone = live.caller_endpoint, live.agent.endpoint_id
        calls.add(live)
        await offers.answer(offer("sendonly").encode())
        assert caller_held(live) and engine.switch.playing(phone) is not None
        await offers.answer(offer("sendrecv").encode())
        assert not caller_held(live) and engine.switch.playing(phone) is None

        await asyncio.gather(
            offers.answer(offer("sendonly").encode()), offers.answer(offer("sendrecv").encode())
        )
        await asyncio.sleep(0.05)
        assert not caller_held(live) and live.music_to is None
        assert engine.switch.playing(phone) is None
        assert engine.switch.bridged_to(caller) == phone
        await service.settle()
        assert service.published == [
            "talking", "caller_held", "caller_resumed", "caller_held", "caller_resumed"
        ]  # fmt: skip
        calls.remove(live)
        assert offers.on_hold is None


async def test_no_music_for_the_agent_while_others_talk_to_them(tmp_path: Path) -> None:
    """With a conference party or a supervisor on the call the agent hears them in the
    mix; the caller's hold must not put music in its place."""
    async with EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path)) as engine:
        live, calls, service = await _connected_call(engine)
        offers = cast(EngineOffers, live.party.offer_answerer)
        third = await engine.create_endpoint("c1", SessionDescription.parse(offer(port=40020)))
        leg = SimpleNamespace(offer_answerer=None)
        member = AgentLeg("1003", cast(OutboundLeg, leg), third.endpoint_id)
        party = Monitor("conference:1003", "1003", MixRole.PARTICIPANT, member)
        live.monitors["conference:1003"] = party
        calls.add(live)
        await offers.answer(offer("sendonly").encode())
        assert caller_held(live) and live.music_to is None
        assert engine.switch.playing(live.agent.endpoint_id) is None
        # The party leaves: now the agent would be alone with a held caller.
        del live.monitors["conference:1003"]
        await calls._reconnect(live)
        assert engine.switch.playing(live.agent.endpoint_id) is not None
        await offers.answer(offer("sendrecv").encode())
        assert engine.switch.playing(live.agent.endpoint_id) is None
        await service.settle()
        calls.remove(live)
