"""A flow's voicemail and case steps open cases linked to the call (MISSION M10)."""

import asyncio
from pathlib import Path

from sqlalchemy import select

from telportal.ivr.checker import load_flow
from telportal.ivr.flow import Flow
from telportal.store.schema import CallDetailRecord, Case
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.test_acd_calls import add_trunk, finished, start_sipp
from tests.integration.signaling.test_ivr_transfer import caller
from tests.ports import free_media_port

FLOW = """
flow: after-hours
tenant: acme
steps:
  message:
    type: voicemail
    prompt: We are closed. Please leave a message after the tone.
    max_duration: 3s
    min_duration: 1s
    subject: "Voicemail from {caller}"
    urgency: high
    department: sales
    next: note
  note:
    type: case
    subject: "After-hours call from {caller}"
    fields:
      reason: '"closed"'
    next: bye
  bye:
    type: hangup
"""


async def test_voicemail_and_case_steps_open_cases_linked_to_the_call(
    edge: Edge, tmp_path: Path
) -> None:
    sip = edge.platform.sip
    assert sip is not None
    await add_trunk(edge, free_port())
    flow = load_flow(FLOW)

    async def flows(_tenant: str, _service: str | None) -> Flow:
        return flow

    sip.flows = flows
    (tmp_path / "caller.xml").write_text(caller([], hold_ms=None))
    proc = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    await finished(proc, tmp_path, "caller")
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                cases = (await session.execute(select(Case).order_by(Case.number))).scalars().all()
                record = (await session.execute(select(CallDetailRecord))).scalars().first()
            if len(cases) == 2 and record is not None and record.ended_at is not None:
                break
            await asyncio.sleep(0.05)
    voicemail, note = cases
    assert voicemail.subject == "Voicemail from 13800138000"
    assert (voicemail.channel, voicemail.urgency, voicemail.department) == (
        "voicemail", "high", "sales",
    )  # fmt: skip
    assert voicemail.call_record_id == record.id and voicemail.state == "new"
    recording = voicemail.description.split("recording: ", 1)[1].strip()
    assert (edge.platform.config.data_dir / recording).is_file()  # the message itself
    assert note.subject == "After-hours call from 13800138000"
    assert note.description == "reason: closed" and note.call_record_id == record.id
    assert [v["step"] for v in record.ivr_path] == ["message", "note", "bye"]
