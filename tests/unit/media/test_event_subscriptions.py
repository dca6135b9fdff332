"""A media event subscription for one endpoint drops the other endpoints' events as
they are emitted, instead of waking its reader for each of them."""

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
