import asyncio
import json
from datetime import UTC, datetime

from telportal.center.desktops import AgentDesktops
from telportal.events import ScreenPop


def _pop() -> ScreenPop:
    return ScreenPop(
        tenant_id="t1", agent_id="a1", call_id="c1", queue="sales",
        caller="13800138000", called="4008001000", service_id=None, customer=None,
        importance=0, ivr_path=[], ivr_variables={}, recent_calls=[], waited_seconds=1.0,
        decided_at=datetime(2026, 11, 26, tzinfo=UTC),
    )  # fmt: skip


async def test_a_page_that_acknowledges_is_waited_for_until_it_shows_the_pop() -> None:
    desktops = AgentDesktops()
    frames: list[str] = []

    async def send(text: str) -> None:
        frames.append(text)

    desktops.attach("t1", "a1", send, acks=True)
    delivering = asyncio.create_task(desktops.deliver("t1", "a1", _pop()))
    await asyncio.sleep(0.05)
    assert len(frames) == 1 and not delivering.done()  # written, not yet shown
    delivery = json.loads(frames[0])["delivery"]
    desktops.acked("another delivery")  # someone else's ack changes nothing
    await asyncio.sleep(0.01)
    assert not delivering.done()
    desktops.acked(delivery)
    assert await delivering == 1


async def test_silent_pages_do_not_hold_the_call_and_plain_sockets_count_when_written() -> None:
    desktops = AgentDesktops()
    plain: list[str] = []

    async def quiet(_: str) -> None:
        return None

    async def record(text: str) -> None:
        plain.append(text)

    desktops.attach("t1", "a1", quiet, acks=True)
    detach = desktops.attach("t1", "a1", record)
    started = asyncio.get_running_loop().time()
    delivered = await desktops.deliver("t1", "a1", _pop(), ack_limit_seconds=0.1)
    assert delivered == 1  # the plain socket; the page that never said it shows it did not
    assert asyncio.get_running_loop().time() - started < 0.5
    assert "delivery" not in json.loads(plain[0])  # only acknowledging pages get an id
    detach()
    assert desktops.connected("t1", "a1") == 1
    assert await desktops.deliver("t2", "a1", _pop()) == 0
