"""Wallboards learn from `queue` events alone when a call starts or stops waiting."""

import asyncio

import httpx
import pytest

from telportal.app import Platform
from telportal.events import QueueStatus
from tests.integration.api_helpers import login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(platform: Platform, client: httpx.AsyncClient) -> TenantWorld:
    await make_operator(platform)
    return await build_tenant(client, await login(client, "root"), "acme", "4008001000")


async def _next_status(sub: object, queue_id: str) -> QueueStatus:
    async with asyncio.timeout(5):  # figures go out once a second at most
        while True:
            event = await sub.get()  # type: ignore[attr-defined]
            if isinstance(event, QueueStatus) and event.queue_id == queue_id:
                return event


async def test_a_call_entering_and_leaving_the_queue_is_announced(
    platform: Platform, acme: TenantWorld
) -> None:
    acd = platform.acd
    assert acd is not None
    await acd.load()
    queue_id = acme.ids["queues"]
    with platform.bus.subscribe(f"queue.{acme.tenant_id}") as sub:
        acd.enqueue(acme.tenant_id, "w-1", queue_id)  # no agent is signed in: it waits
        assert (await _next_status(sub, queue_id)).waiting == 1
        acd.abandoned(acme.tenant_id, "w-1")
        assert (await _next_status(sub, queue_id)).waiting == 0
