"""Hold, resume and a new address from a phone whose call ends in our media engine
(an IVR, a queue, an agent call): the engine answers the re-INVITE (RFC 3264 8).

Before, the leg answered with the SDP it had last sent: a sendonly offer got sendrecv
(RFC 3264 6.1 forbids it), RTP kept going to a phone that had put us on hold, and a
phone that moved to another port heard nothing more. An agent's hold button now
holds the call as the API's hold does: the caller hears music and the call's state
says held. A caller's phone holding the call plays the music to the agent instead of
leaving them in dead air.
"""

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from telportal.events import CallState
from telportal.rtp.dtmf import TelephoneEvent, event_code
from telportal.rtp.packet import RtpPacket
from telportal.signaling.live_calls import LiveCall
from telportal.sip import Request, Response
from tests.integration.signaling.conftest import Api, Edge
from tests.integration.signaling.scripted_phones import (
    SDP,
    Phone,
    callee_request,
    register,
    scripted_phone,
)
from tests.integration.signaling.test_acd_calls import finished, until_state
from tests.integration.signaling.test_call_control import (
    caller_dials_in,
    live_calls_of,
    stop,
)
from tests.integration.signaling.test_ivr_call import add_carrier_trunk
from tests.ports import free_media_port


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0
        self.arrived = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.packets += 1
        self.arrived.set()


@contextlib.asynccontextmanager
async def media_socket() -> AsyncIterator[tuple[int, _Counter]]:
    """A phone's RTP port, counting what arrives."""
    port = free_media_port()
    transport, counter = await asyncio.get_running_loop().create_datagram_endpoint(
        _Counter, local_addr=("127.0.0.1", port)
    )
    try:
        yield port, counter
    finally:
        transport.close()


async def packets_within(counter: _Counter, seconds: float) -> int:
    """How many packets arrive in the next `seconds` (after what was in flight)."""
    await asyncio.sleep(0.1)
    before = counter.packets
    await asyncio.sleep(seconds)
    return counter.packets - before


async def first_packet(counter: _Counter) -> None:
    counter.arrived.clear()
    async with asyncio.timeout(3):
        await counter.arrived.wait()


def offer(port: int, direction: str, version: int) -> bytes:
    return (
        SDP.replace(b"40000", str(port).encode()).replace(b"o=- 1 1", f"o=- 1 {version}".encode())
        + f"a={direction}\r\n".encode()
    )


async def press(counter: _Counter, to: tuple[str, int], digit: str) -> None:
    """A key press in RFC 4733 events from the phone's RTP port, as a phone sends it."""
    assert counter.transport is not None
    code = event_code(digit)
    steps = [(160, False), (320, False), (480, False), (640, True), (640, True), (640, True)]
    for seq, (duration, end) in enumerate(steps, start=1):
        payload = TelephoneEvent(code, end=end, duration=duration).serialize()
        packet = RtpPacket(101, seq, 8000, 0x1234, payload, marker=seq == 1)
        counter.transport.sendto(packet.serialize(), to)
        await asyncio.sleep(0.02)


def media_address(body: bytes) -> tuple[str, int]:
    host = re.search(rb"c=IN IP4 (\S+)", body)
    port = re.search(rb"m=audio (\d+) ", body)
    assert host is not None and port is not None, body
    return host.group(1).decode(), int(port.group(1))


def direction_of(body: bytes) -> str:
    found = re.search(rb"a=(sendrecv|sendonly|recvonly|inactive)", body)
    assert found is not None, body
    return found.group(1).decode()


def version_of(body: bytes) -> int:
    found = re.search(rb"o=\S+ \d+ (\d+) ", body)
    assert found is not None, body
    return int(found.group(1))


async def in_call(
    phone: Phone, uri: str, cseq: int, call_id: str, tag: str, body: bytes, *, accepted: bool = True
) -> Response:
    """A re-INVITE from the calling phone and its final response (2xx if `accepted`,
    else 4xx), which the phone then ACKs."""
    branch = "z9hG4bK" + secrets.token_hex(6)
    await phone.send(
        phone.line("INVITE", uri, cseq, call_id, [], to_tag=tag, body=body, branch=branch)
    )
    while True:  # a response to an earlier request may come again meanwhile
        final = await phone.next("2" if accepted else "4")
        assert isinstance(final, Response)
        if final.cseq.number == cseq:
            break
    # The ACK of a 2xx is a transaction of its own; of a 4xx, part of the INVITE's
    # (17.1.1.3: same branch), which stops the 4xx being sent again.
    ack_branch = None if accepted else branch
    await phone.send(phone.line("ACK", uri, cseq, call_id, [], to_tag=tag, branch=ack_branch))
    return final


async def ready_agent(api: Api) -> dict[str, str]:
    """1001 signs in (its phone registered) and is ready; its API headers."""
    token = await api.token("1001@acme")
    await until_state(api, token, "ready")
    return {"Authorization": f"Bearer {token}"}


async def agent_answers(
    edge: Edge, api: Api, agent: dict[str, str], phone: Phone, media_port: int
) -> tuple[Request, LiveCall]:
    """1001's phone answers the queue's call; (the INVITE it got, the connected call)."""
    sip = edge.platform.sip
    assert sip is not None
    invite = await phone.next("INVITE")
    assert isinstance(invite, Request)
    await phone.reply(invite, 200, body=offer(media_port, "sendrecv", 1))
    await phone.next("ACK")
    (call,) = await live_calls_of(api, agent)
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    live = sip.live_calls.get(acme.tenant_id, call["call_id"])
    assert live is not None
    return invite, live


async def test_a_caller_in_the_ivr_holds_moves_and_resumes(edge: Edge) -> None:
    await add_carrier_trunk(edge)  # 127.0.0.1 is acme's carrier: no credentials asked
    async with (
        scripted_phone(edge.port, "13800138000") as phone,
        media_socket() as (first_port, first),
        media_socket() as (second_port, second),
    ):
        uri = f"sip:4008001000@127.0.0.1:{edge.port}"
        call_id = "hold-in-the-ivr"
        await phone.send(
            phone.line("INVITE", uri, 1, call_id, [], body=offer(first_port, "sendrecv", 1))
        )
        ok = await phone.next("200")
        assert isinstance(ok, Response)
        tag = ok.to.tag or ""
        await phone.send(phone.line("ACK", uri, 1, call_id, [], to_tag=tag))
        await first_packet(first)  # the greeting

        held = await in_call(phone, uri, 2, call_id, tag, offer(first_port, "sendonly", 2))
        assert direction_of(held.body) == "recvonly"
        assert version_of(held.body) == version_of(ok.body) + 1
        assert await packets_within(first, 0.6) == 0, "RTP still sent to a phone on hold"

        # Resumed from another port: the prompts go there now.
        resumed = await in_call(phone, uri, 3, call_id, tag, offer(second_port, "sendrecv", 3))
        assert direction_of(resumed.body) == "sendrecv"
        assert version_of(resumed.body) == version_of(held.body) + 1
        await first_packet(second)

        # An offer that is not SDP is refused, and the call goes on as it was.
        refused = await in_call(phone, uri, 4, call_id, tag, b"this is not SDP\r\n", accepted=False)
        assert refused.status == 488
        assert await packets_within(second, 0.5) > 0

        # A re-INVITE without an offer: the engine offers in the 2xx, and the answer in
        # the ACK moves the prompts back to the first port.
        await phone.send(phone.line("INVITE", uri, 5, call_id, [], to_tag=tag))
        offered = await phone.next("200")
        assert isinstance(offered, Response) and offered.cseq.number == 5
        assert direction_of(offered.body) == "sendrecv"
        assert version_of(offered.body) == version_of(resumed.body) + 1
        # A new offer before the ACK with the answer crosses ours: 491 (RFC 3264 4).
        crossing = await in_call(
            phone, uri, 6, call_id, tag, offer(second_port, "sendonly", 4), accepted=False
        )
        assert crossing.status == 491
        answer = offer(first_port, "sendrecv", 4)
        await phone.send(phone.line("ACK", uri, 5, call_id, [], to_tag=tag, body=answer))
        await first_packet(first)
        assert await packets_within(second, 0.5) == 0
        await phone.send(phone.line("BYE", uri, 7, call_id, [], to_tag=tag))
        assert (await phone.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]


async def test_the_agents_hold_button_plays_music_to_the_caller(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    tmp = tmp_path
    sip = edge.platform.sip
    assert sip is not None and sip.media is not None
    await add_carrier_trunk(edge)
    bus = edge.platform.bus.subscribe()
    async with (
        scripted_phone(edge.port, "1001") as phone,
        media_socket() as (media_port, _),
    ):
        await register(phone, edge.port)
        agent = await ready_agent(api)  # 1002 is not signed in: the call goes to 1001
        caller = await caller_dials_in(edge, tmp)
        try:
            invite, live = await agent_answers(edge, api, agent, phone, media_port)
            assert not live.held
            playing = sip.media.switch.playing

            async def reinvite(cseq: int, direction: str) -> Response:
                body = offer(media_port, direction, cseq)
                await phone.send(callee_request(phone, edge.port, invite, "INVITE", cseq, body))
                answer = await phone.next("200")
                assert isinstance(answer, Response) and answer.cseq.number == cseq
                await phone.send(callee_request(phone, edge.port, invite, "ACK", cseq))
                return answer

            on_hold = await reinvite(2, "sendonly")
            assert direction_of(on_hold.body) == "recvonly"
            view = (
                await api.client.get(f"/api/v1/live-calls/{live.call_id}", headers=agent)
            ).json()
            assert view["held"] is True
            assert live.held and playing(live.caller_endpoint) is not None  # the music

            off_hold = await reinvite(3, "sendrecv")
            assert direction_of(off_hold.body) == "sendrecv"
            assert not live.held and playing(live.caller_endpoint) is None
            assert sip.media.switch.bridged_to(live.caller_endpoint) == live.agent.endpoint_id

            await phone.send(callee_request(phone, edge.port, invite, "BYE", 4))
            assert (await phone.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
            await finished(caller, tmp, "caller")  # the caller got our BYE
        finally:
            await stop(caller)
    states = []
    while (event := bus.get_nowait()) is not None:
        if isinstance(event, CallState):
            states.append(event.state)
    assert states[:3] == ["talking", "held", "talking"], states


async def test_a_hold_from_the_agents_phone_leaves_with_it_at_a_transfer(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    """1001's phone holds the call, then 1001 transfers it to 1002 from the desktop: the
    caller is put through to 1002 at once, not left on music with 1002 in silence."""
    sip = edge.platform.sip
    assert sip is not None and sip.media is not None
    await add_carrier_trunk(edge)
    async with (
        scripted_phone(edge.port, "1001") as phone,
        scripted_phone(edge.port, "1002") as other,
        media_socket() as (media_port, _),
    ):
        await register(phone, edge.port)
        await register(other, edge.port)
        agent = await ready_agent(api)  # 1002 is not signed in: the call goes to 1001
        caller = await caller_dials_in(edge, tmp_path)
        try:
            invite, live = await agent_answers(edge, api, agent, phone, media_port)
            body = offer(media_port, "sendonly", 2)
            await phone.send(callee_request(phone, edge.port, invite, "INVITE", 2, body))
            assert (await phone.next("200")).cseq.number == 2  # type: ignore[union-attr]
            await phone.send(callee_request(phone, edge.port, invite, "ACK", 2))
            assert live.held and live.held_by_phone

            url = f"/api/v1/live-calls/{live.call_id}/transfer"
            transfer = asyncio.create_task(api.client.post(url, json={"to": "1002"}, headers=agent))
            ring = await other.next("INVITE")
            assert isinstance(ring, Request)
            await other.reply(ring, 200, body=offer(media_port + 2, "sendrecv", 1))
            await other.next("ACK")
            bye = await phone.next("BYE")  # 1001's leg, ended by the transfer
            assert isinstance(bye, Request)
            await phone.reply(bye, 200)
            r = await transfer
            assert r.status_code == 200, r.text
            assert r.json()["held"] is False and r.json()["agent_extension"] == "1002"
            assert not live.held and sip.media.switch.playing(live.caller_endpoint) is None
            assert sip.media.switch.bridged_to(live.caller_endpoint) == live.agent.endpoint_id
            await other.send(callee_request(other, edge.port, ring, "BYE", 2))
            assert (await other.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
            await finished(caller, tmp_path, "caller")
        finally:
            await stop(caller)


async def test_a_caller_who_holds_plays_music_to_the_agent(edge: Edge, api: Api) -> None:
    """The caller's phone holds the call: the agent hears music rather than dead air,
    the desktop is told, the agent's own hold still means silence for the agent, and
    the caller's resume gives the conversation back."""
    sip = edge.platform.sip
    assert sip is not None and sip.media is not None
    switch = sip.media.switch
    await add_carrier_trunk(edge)
    bus = edge.platform.bus.subscribe()
    events = SDP.replace(b"RTP/AVP 0", b"RTP/AVP 0 101") + b"a=rtpmap:101 telephone-event/8000\r\n"
    async with (
        scripted_phone(edge.port, "13800138000") as caller,
        scripted_phone(edge.port, "1001") as phone,
        media_socket() as (caller_port, caller_media),
        media_socket() as (agent_port, agent_media),
    ):
        await register(phone, edge.port)
        agent = await ready_agent(api)
        uri = f"sip:4008001000@127.0.0.1:{edge.port}"
        call_id = "caller-holds-the-agent"

        def sdp(direction: str, version: int) -> bytes:
            body = events.replace(b"40000", str(caller_port).encode())
            return body.replace(b"o=- 1 1", f"o=- 1 {version}".encode()) + (
                f"a={direction}\r\n".encode()
            )

        await caller.send(caller.line("INVITE", uri, 1, call_id, [], body=sdp("sendrecv", 1)))
        ok = await caller.next("200")
        assert isinstance(ok, Response)
        tag = ok.to.tag or ""
        await caller.send(caller.line("ACK", uri, 1, call_id, [], to_tag=tag))
        await first_packet(caller_media)  # the greeting
        await press(caller_media, media_address(ok.body), "1")  # sales: 1001 rings
        _, live = await agent_answers(edge, api, agent, phone, agent_port)
        view_url = f"/api/v1/live-calls/{live.call_id}"
        # The caller sends no audio in this test: before the hold the agent hears nothing.
        assert await packets_within(agent_media, 0.4) == 0

        held = await in_call(caller, uri, 2, call_id, tag, sdp("sendonly", 2))
        assert direction_of(held.body) == "recvonly"
        assert live.caller_held and not live.held
        assert switch.playing(live.agent.endpoint_id) is not None
        assert await packets_within(agent_media, 0.4) > 0, "the agent hears dead air"
        assert switch.bridged_to(live.caller_endpoint) == live.agent.endpoint_id
        view = (await api.client.get(view_url, headers=agent)).json()
        assert view["caller_held"] is True and view["held"] is False

        # The agent holds too: silence for the agent, as on any hold; unhold: music again.
        r = await api.client.post(f"{view_url}/hold", headers=agent)
        assert r.status_code == 200, r.text
        assert switch.playing(live.agent.endpoint_id) is None
        assert await packets_within(agent_media, 0.4) == 0
        r = await api.client.post(f"{view_url}/unhold", headers=agent)
        assert r.status_code == 200, r.text
        assert switch.playing(live.agent.endpoint_id) is not None

        resumed = await in_call(caller, uri, 3, call_id, tag, sdp("sendrecv", 3))
        assert direction_of(resumed.body) == "sendrecv"
        assert not live.caller_held and switch.playing(live.agent.endpoint_id) is None
        assert switch.bridged_to(live.caller_endpoint) == live.agent.endpoint_id
        assert await packets_within(agent_media, 0.4) == 0
        assert (await api.client.get(view_url, headers=agent)).json()["caller_held"] is False

        await caller.send(caller.line("BYE", uri, 4, call_id, [], to_tag=tag))
        assert (await caller.next("200")).cseq.method == "BYE"  # type: ignore[union-attr]
        bye = await phone.next("BYE")  # the agent's leg ends with the caller's
        assert isinstance(bye, Request)
        await phone.reply(bye, 200)
    states = []
    while (event := bus.get_nowait()) is not None:
        if isinstance(event, CallState) and event.call_id == live.call_id:
            states.append(event.state)
    assert states[:6] == ["talking", "caller_held", "held", "talking", "caller_resumed", "ended"], (
        states
    )
