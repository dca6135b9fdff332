"""Port pairs kept open between calls (`PairPool`), on real UDP sockets on 127.0.0.1.

A pair of an ended call waits, open, its datagrams discarded; it goes to a new call
only after `reuse_after` seconds (a FakeClock here), the oldest first, and at most
`keep` wait. Everything is closed by `aclose`.
"""

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from telportal.clock import FakeClock
from telportal.media import EmbeddedMediaEngine, MediaConfig, SourceLatched
from telportal.media import engine as engine_module
from telportal.media.errors import PortsExhaustedError
from telportal.media.latch import Address
from telportal.media.ports import PairPool, PortAllocator
from telportal.rtp.packet import RtpPacket
from tests.integration.media.support import HOST, Phone, next_of

FIRST, LAST = 45100, 45199


def _bindable(port: int) -> bool:
    """Whether nothing holds the pair's ports (the pool really closed them)."""
    for candidate in (port, port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((HOST, candidate))
            except OSError:
                return False
    return True


def _receiver(got: list[tuple[str, bytes]], name: str) -> Callable[[bytes, Address], None]:
    def receive(data: bytes, source: Address) -> None:
        got.append((name, data))

    return receive


@pytest.fixture
async def pool() -> AsyncIterator[tuple[PairPool, FakeClock]]:
    clock = FakeClock()
    pairs = PairPool(PortAllocator(HOST, FIRST, LAST), clock, keep=2, reuse_after=2.0)
    yield pairs, clock
    await pairs.aclose()


async def _send(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(data, (HOST, port))
    await asyncio.sleep(0.05)  # the loop reads it


async def test_an_ended_calls_pair_waits_open_and_deaf_then_serves_a_later_call(
    pool: tuple[PairPool, FakeClock],
) -> None:
    pairs, clock = pool
    got: list[tuple[str, bytes]] = []
    first = await pairs.take(_receiver(got, "a"), _receiver(got, "a-rtcp"))
    await _send(first.port, b"to a")
    await pairs.give_back(first)
    assert pairs.idle == 1 and not _bindable(first.port)  # still open
    await _send(first.port, b"late, for a")  # discarded: no call has the pair
    clock.advance(1.9)
    second = await pairs.take(_receiver(got, "b"), _receiver(got, "b-rtcp"))
    assert second.port != first.port  # a's pair has not waited long enough
    clock.advance(0.1)
    third = await pairs.take(_receiver(got, "c"), _receiver(got, "c-rtcp"))
    assert third is first and pairs.idle == 0 and pairs.opened == 2
    await _send(third.port, b"to c")
    await _send(third.port + 1, b"rtcp to c")
    assert got == [("a", b"to a"), ("c", b"to c"), ("c-rtcp", b"rtcp to c")]
    await pairs.give_back(second)
    await pairs.give_back(third)
    await pairs.aclose()
    assert pairs.idle == 0
    assert _bindable(first.port) and _bindable(second.port)
    assert pairs.ports.in_use == frozenset()


async def test_the_oldest_idle_pair_goes_first_and_at_most_keep_wait(
    pool: tuple[PairPool, FakeClock],
) -> None:
    pairs, clock = pool  # keep=2
    got: list[tuple[str, bytes]] = []
    taken = [await pairs.take(_receiver(got, "x"), _receiver(got, "x")) for _ in range(3)]
    for pair in taken:
        await pairs.give_back(pair)
        clock.advance(1.0)
    # Two were waiting: the last given back was closed, and its port is free again.
    assert pairs.idle == 2 and _bindable(taken[2].port)
    assert pairs.ports.in_use == {taken[0].port, taken[1].port}
    clock.advance(1.0)  # taken[0] has waited 4 s, taken[1] 3 s
    assert await pairs.take(_receiver(got, "y"), _receiver(got, "y")) is taken[0]
    assert await pairs.take(_receiver(got, "z"), _receiver(got, "z")) is taken[1]
    for pair in taken[:2]:
        await pairs.give_back(pair)


async def test_more_calls_a_second_than_the_pool_covers_still_reuse_pairs(
    pool: tuple[PairPool, FakeClock],
) -> None:
    """Calls ending faster than keep / reuse_after (2 in 2 s here): the pairs that
    wait are the oldest, so they grow old enough to serve, rather than each being
    closed just before it would have (every call then opened a new pair)."""
    pairs, clock = pool  # keep=2, reuse_after=2.0
    got: list[tuple[str, bytes]] = []
    for _ in range(12):  # a call every 0.5 s, each ending as the next starts
        pair = await pairs.take(_receiver(got, "x"), _receiver(got, "x"))
        clock.advance(0.5)
        await pairs.give_back(pair)
    # 12 calls: 2 pairs kept, each reused every 2 s once it first waited 2 s, so 4
    # of the 12 were served by a waiting pair (closing the oldest reused none).
    assert pairs.opened == 8


async def test_a_pair_whose_socket_failed_while_idle_is_closed_not_reused(
    pool: tuple[PairPool, FakeClock],
) -> None:
    pairs, clock = pool
    got: list[tuple[str, bytes]] = []
    broken = await pairs.take(_receiver(got, "a"), _receiver(got, "a"))
    await pairs.give_back(broken)
    broken.rtcp.close()  # as a transport does after a fatal socket error
    clock.advance(5.0)
    fresh = await pairs.take(_receiver(got, "b"), _receiver(got, "b"))
    assert fresh is not broken and fresh.port != broken.port
    assert _bindable(broken.port) and broken.port not in pairs.ports.in_use
    await pairs.give_back(fresh)


async def test_keeping_none_closes_each_pair_when_its_call_ends() -> None:
    pairs = PairPool(PortAllocator(HOST, FIRST, LAST), FakeClock(), keep=0, reuse_after=0.0)
    got: list[tuple[str, bytes]] = []
    pair = await pairs.take(_receiver(got, "a"), _receiver(got, "a"))
    await pairs.give_back(pair)
    assert pairs.idle == 0 and _bindable(pair.port) and pairs.ports.in_use == frozenset()
    with pytest.raises(ValueError, match="must not be negative"):
        PairPool(PortAllocator(HOST, FIRST, LAST), FakeClock(), keep=-1, reuse_after=0.0)


async def test_the_engine_reuses_an_ended_calls_pair_for_a_new_endpoint() -> None:
    """End to end: the reused port's RTP reaches the new endpoint, not the old one."""
    config = MediaConfig(port_min=FIRST, port_max=LAST, port_reuse_after=0.0)
    phone = await Phone.open()
    try:
        async with EmbeddedMediaEngine(config) as engine, engine.events() as events:
            old = await engine.create_endpoint("call-1", phone.offer())
            await engine.close(old.endpoint_id)
            new = await engine.create_endpoint("call-2", phone.offer())
            assert new.rtp_port == old.rtp_port and engine.pairs.opened == 1
            phone.send(RtpPacket(0, 1, 160, 0x2222, bytes(160)).serialize(), new.rtp_port)
            latched = await next_of(events, SourceLatched)
            assert latched.endpoint_id == new.endpoint_id
            assert (await engine.stats(new.endpoint_id)).packets_received == 1
        assert _bindable(new.rtp_port)  # aclose closed the pair in use and any idle
        assert engine.pairs.idle == 0
    finally:
        phone.close()


async def test_a_range_run_out_frees_a_waiting_pair_rather_than_refuse_a_call() -> None:
    """Waiting pairs must not make a full range refuse calls: the oldest is closed and
    its port serves the new call (its late packets matter less than the call)."""
    clock = FakeClock()
    pairs = PairPool(PortAllocator(HOST, FIRST, FIRST + 3), clock, keep=8, reuse_after=2.0)
    got: list[tuple[str, bytes]] = []
    try:
        first, second = [await pairs.take(_receiver(got, "x"), _receiver(got, "x")) for _ in "ab"]
        await pairs.give_back(first)
        clock.advance(0.5)  # too young to serve, and the range's two pairs are taken
        third = await pairs.take(_receiver(got, "y"), _receiver(got, "y"))
        assert third is not first and third.port == first.port and pairs.idle == 0
        with pytest.raises(PortsExhaustedError):  # nothing waits: the range is full
            await pairs.take(_receiver(got, "z"), _receiver(got, "z"))
        for pair in (second, third):
            await pairs.give_back(pair)
    finally:
        await pairs.aclose()


def test_idle_pairs_take_at_most_a_quarter_of_the_open_files_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_module.resource, "getrlimit", lambda _which: (1024, 4096))
    assert EmbeddedMediaEngine(MediaConfig()).pairs.keep == 128
    monkeypatch.setattr(engine_module.resource, "getrlimit", lambda _which: (1 << 20, 1 << 20))
    assert EmbeddedMediaEngine(MediaConfig()).pairs.keep == 4096
    assert EmbeddedMediaEngine(MediaConfig(idle_port_pairs=0)).pairs.keep == 0
    with pytest.raises(ValueError, match="must not be negative"):
        MediaConfig(port_reuse_after=-1.0)
