"""A running SIP edge with the demo tenant, on 127.0.0.1."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from telportal.api.app import create_api
from telportal.app import Platform, build_platform
from telportal.auth.credentials import Passwords
from telportal.config import Config, MediaSettings, SipConfig, parse_listen
from telportal.demo import seed_demo
from telportal.sip.transaction import TimerSettings, TransactionLayer, TwoHundredRetransmitter
from telportal.store.schema import CallDetailRecord
from tests.integration.signaling.scripted_phones import PASSWORD, Phone, registered_phones
from tests.ports import free_port, listening_socket


@dataclass
class Edge:
    platform: Platform
    port: int

    async def records_written(self, calls: int = 1) -> None:
        """Once `calls` calls have ended, write the call records still queued behind
        them (decision 0010), so the test reads what the calls recorded."""
        sip = self.platform.sip
        assert sip is not None and sip.records is not None
        async with asyncio.timeout(10):
            while sip.calls_ended < calls:  # noqa: ASYNC110 - the call tasks end on their own
                await asyncio.sleep(0.02)
        await sip.records.flush()


@pytest.fixture
async def edge(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Edge]:
    """Parametrize indirectly with a dict of SipConfig settings to change them.

    The extra key "t1" shortens the SIP timers (T1 in seconds) so that tests of
    timeouts (64*T1) finish quickly; "media" is a dict of MediaSettings.
    """
    params = dict(getattr(request, "param", {}))
    t1 = params.pop("t1", None)
    media = params.pop("media", {})  # MediaSettings to change, e.g. rtp_timeout_seconds
    port = free_port()
    config = Config(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
        sip_listen=parse_listen(f"127.0.0.1:{port}"),  # type: ignore[arg-type]
        sip=SipConfig(
            default_tenant="acme",
            auth_max_failures=4,
            **params,
        ),
        media=MediaSettings(**media),
    )
    platform = build_platform(config, passwords=Passwords.fast_for_tests())
    await platform.start()
    await seed_demo(platform, PASSWORD)
    assert platform.sip is not None
    if t1 is not None:
        timers = TimerSettings(t1=t1, t2=max(4.0, t1 * 8), t4=max(5.0, t1 * 10))
        platform.sip.transactions = TransactionLayer(platform.clock, timers)
        platform.sip.retransmitter = TwoHundredRetransmitter(platform.clock, timers)
    await platform.sip.start()
    try:
        yield Edge(platform, port)
    finally:
        await platform.sip.stop()
        await platform.close()


@dataclass
class Api:
    base: str
    client: httpx.AsyncClient

    async def token(self, username: str) -> str:
        r = await self.client.post(
            "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token


@pytest.fixture
async def phones(edge: Edge) -> AsyncIterator[tuple[Phone, Phone]]:
    """Two scripted phones (scripted_phones.py): caller 1001 and callee 1002, registered."""
    async for pair in registered_phones(edge.port):
        yield pair


@pytest.fixture
async def api(edge: Edge) -> AsyncIterator[Api]:
    """The platform's API on a real HTTP server (uvicorn) for WebSocket clients."""
    sock = listening_socket()  # held from the start: no other socket can take the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_api(edge.platform), host="127.0.0.1", port=port, log_level="warning",
            lifespan="off",
        )
    )  # fmt: skip
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn's own flag
            await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            yield Api(base, client)
    finally:
        server.should_exit = True
        await task
        sock.close()


async def ended_call_record(edge: Edge) -> CallDetailRecord:
    """The edge's one call record, once it has ended (10 s at most)."""
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                row = (await session.execute(select(CallDetailRecord))).scalars().one()
            if row.ended_at is not None:
                return row
            await asyncio.sleep(0.05)
