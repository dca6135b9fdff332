"""A caller who vanishes without a BYE (a crashed phone, a lost network) is hung up once
their RTP has stopped for `media.rtp_timeout_seconds`, instead of waiting in a queue
for good and being offered to an agent.

SIPp calls the demo number, presses 1 (the only RTP it sends is that key's packets)
and then stays silent, waiting for our BYE. No agent is ready, so the call waits in
the sales queue until the timeout hangs it up.
"""

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from telportal.store.schema import CallDetailRecord
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.test_acd_calls import (
    add_trunk,
    caller_scenario,
    finished,
    start_sipp,
)
from tests.ports import free_media_port

TIMEOUT = 4.0


@pytest.mark.parametrize("edge", [{"media": {"rtp_timeout_seconds": TIMEOUT}}], indirect=True)
async def test_a_silent_caller_is_hung_up_and_leaves_the_queue(edge: Edge, tmp_path: Path) -> None:
    acd, sip = edge.platform.acd, edge.platform.sip
    assert acd is not None and sip is not None
    await add_trunk(edge, free_port())
    (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=0, hung_up_by_server=True))
    started = time.monotonic()
    caller = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    await finished(caller, tmp_path, "caller")  # it got our BYE
    assert time.monotonic() - started >= TIMEOUT
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                row = (await session.execute(select(CallDetailRecord))).scalars().first()
            if row is not None and row.ended_at is not None:
                break
            await asyncio.sleep(0.1)
    assert row.queue == "sales" and row.agent_id is None
    assert row.hangup_by == "system" and row.digits == ["1"]
    acme = sip.directory.tenant_for_domain("acme")
    sales = acd.queue(acme.tenant_id, "sales") if acme else None
    assert acme is not None and sales is not None
    snapshot = acd.queue_snapshot(acme.tenant_id, sales.queue_id)
    assert snapshot.waiting == 0 and snapshot.abandoned == 1
