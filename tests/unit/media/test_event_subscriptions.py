"""A media event subscription for one endpoint drops the other endpoints' events as
they are emitted, instead of waking its reader for each of them."""

from pathlib import Path
from unittest.mock import patch

from telportal.media import EmbeddedMediaEngine, MediaConfig
from telportal.media.digits import DtmfMethod
from telportal.media.engine import EventSubscription
from telportal.media.events import DigitReceived, MediaEvent


def _digit(endpoint_id: str, digit: str) -> DigitReceived:
    return DigitReceived(endpoint_id, f"call-{endpoint_id}", digit, next(iter(DtmfMethod)))


async def _drained(subscription: EventSubscription) -> list[MediaEvent]:
    subscription.close()
    return [event async for event in subscription]


async def test_a_subscription_for_one_endpoint_keeps_only_its_events() -> None:
    gone: list[EventSubscription] = []
    mine = EventSubscription(gone.append, "e-1")
    everything = EventSubscription(gone.append)
    for event in (_digit("e-1", "1"), _digit("e-2", "2"), _digit("e-1", "3")):
        mine.put(event)
        everything.put(event)
    assert [e.digit for e in await _drained(mine) if isinstance(e, DigitReceived)] == ["1", "3"]
    assert len(await _drained(everything)) == 3
    assert gone == [mine, everything]  # closing unsubscribes


async def test_the_engine_offers_an_event_to_its_endpoints_subscribers_only(
    tmp_path: Path,
) -> None:
    offered: list[str] = []

    class Counted(EventSubscription):
        def put(self, event: MediaEvent) -> None:
            offered.append(f"{self.endpoint_id}:{event.endpoint_id}")
            super().put(event)

    engine = EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path))
    with patch("telportal.media.engine.EventSubscription", Counted):
        ones = [engine.events(f"e-{n}") for n in range(50)]
        everything = engine.events()
    engine._emit(_digit("e-7", "7"))
    # Not one call per subscription: the other 49 endpoints' subscribers are not asked.
    assert sorted(offered) == ["None:e-7", "e-7:e-7"]
    assert sorted(map(str, engine.subscribed_endpoints)) == sorted(
        ["None", *(f"e-{n}" for n in range(50))]
    )
    for subscription in [*ones, everything]:
        subscription.close()
    assert engine.subscribed_endpoints == []
    assert [e.endpoint_id for e in await _drained(ones[7])] == ["e-7"]


async def test_an_endpoint_listener_hears_its_endpoint_only_until_it_closes(
    tmp_path: Path,
) -> None:
    async with EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path)) as engine:
        one = await engine.create_endpoint("call-1")
        other = await engine.create_endpoint("call-2")
        heard: list[MediaEvent] = []
        stop = engine.listen(one.endpoint_id, heard.append)
        everything: list[MediaEvent] = []
        engine.add_listener(everything.append)
        engine._emit(_digit(one.endpoint_id, "1"))
        engine._emit(_digit(other.endpoint_id, "2"))
        await engine.close(one.endpoint_id)
        engine._emit(_digit(one.endpoint_id, "3"))  # after its close: not heard
        assert [type(e).__name__ for e in heard] == ["DigitReceived", "EndpointClosed"]
        assert isinstance(heard[0], DigitReceived) and heard[0].digit == "1"
        assert len(everything) == 4  # engine-wide listeners still hear everything
        assert engine.subscribed_endpoints == []  # the engine dropped the closed one's
        stop()  # and stopping afterwards is harmless


async def test_a_listener_that_fails_leaves_the_others_hearing(tmp_path: Path) -> None:
    engine = EmbeddedMediaEngine(MediaConfig(cache_dir=tmp_path))
    heard: list[MediaEvent] = []

    def broken(event: MediaEvent) -> None:
        raise RuntimeError("listener bug")

    engine.listen("e-1", broken)
    stop = engine.listen("e-1", heard.append)
    engine._emit(_digit("e-1", "1"))
    assert len(heard) == 1
    stop()
    assert engine.subscribed_endpoints == ["e-1"]  # the broken one is still listening
