"""A queue's maximum wait overflows the caller to a supervisor's phone (MISSION M10).

No agent of 'sales' is ready; the queue allows 5 s of waiting and then sends the
caller to extension 1009 (the demo supervisor), whose SIPp phone answers.
"""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from telportal.media import Playlist, PlaySpeech
from telportal.signaling import acd_handoff
from telportal.store.schema import CallDetailRecord
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.test_acd_calls import (
    add_trunk,
    caller_scenario,
    finished,
    start_sipp,
)
from tests.integration.signaling.test_sipp_call import _register_callee
from tests.ports import free_media_port


async def test_waiting_too_long_overflows_to_the_supervisor(
    edge: Edge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, acd, sip = edge.platform, edge.platform.acd, edge.platform.sip
    assert acd is not None and sip is not None and sip.media is not None
    # Re-announce every 1.5 s instead of 45 s, and note what is played to the caller.
    monkeypatch.setattr(acd_handoff, "REANNOUNCE_SECONDS", 1.5)
    spoken: list[str] = []
    real_play = sip.media.play

    async def play(endpoint_id: str, playlist: Playlist, *, barge_in: bool = True) -> str:
        spoken.extend(i.text for i in playlist.items if isinstance(i, PlaySpeech))
        return await real_play(endpoint_id, playlist, barge_in=barge_in)

    monkeypatch.setattr(sip.media, "play", play)
    await add_trunk(edge, free_port())
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    sales = acd.queue(acme.tenant_id, "sales")
    assert sales is not None
    async with platform.db.write(Scope.cli()) as uow:
        await platform.resources["queues"].update(
            uow,
            sales.queue_id,
            s.QueueUpdate(
                max_wait_seconds=5,
                overflow_action=s.OverflowAction.AGENT,
                overflow_target="1009",
                offer_callback=False,
            ),
        )
    async with asyncio.timeout(5):
        while (q := acd.queue(acme.tenant_id, "sales")) is None or q.overflow_target != "1009":  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    port = free_port()
    supervisor = await start_sipp(tmp_path, "p1009", "-sn", "uas", "-p", str(port), "-m", "1")
    try:
        await _register_callee(edge, port, extension="1009")
        (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=14000))
        caller = await start_sipp(
            tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
            "-p", str(free_port()), "-mp", str(free_media_port()),
        )  # fmt: skip
        await finished(caller, tmp_path, "caller")
        await finished(supervisor, tmp_path, "p1009")  # rang, answered, got our BYE
    finally:
        if supervisor.returncode is None:
            supervisor.kill()
            await supervisor.wait()
    async with asyncio.timeout(10):
        while True:
            async with platform.db.read() as session:
                row = (await session.execute(select(CallDetailRecord))).scalars().one()
            if row.ended_at is not None:
                break
            await asyncio.sleep(0.05)
    assert row.outcome == "queue sales: overflow to 1009"
    positions = [text for text in spoken if text.startswith("You are number 1 in the queue")]
    assert len(positions) >= 2, spoken  # told again while waiting
    assert row.hangup_by == "caller"
    snapshot = acd.queue_snapshot(acme.tenant_id, sales.queue_id)
    assert (snapshot.overflowed, snapshot.answered, snapshot.waiting) == (1, 0, 0)
