"""One national number shared by two enterprises: the caller chooses with a key.

4008001000 serves acme (key 1, the demo's flow) and bravo (key 2, its own flow). The
caller from the carrier presses 2 and bravo's flow runs; its record is bravo's.
"""

import asyncio
from pathlib import Path

from sqlalchemy import select

from telportal.ivr.checker import load_flow
from telportal.ivr.flow import Flow
from telportal.ivr.publishing import PublishedFlow
from telportal.store.schema import CallDetailRecord, NumberLink, ServiceNumber
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.test_acd_calls import add_trunk, finished, start_sipp
from tests.integration.signaling.test_ivr_transfer import caller
from tests.ports import free_media_port

BRAVO_FLOW = """
flow: bravo-main
tenant: bravo
steps:
  hello:
    type: play
    prompt: Welcome to Bravo.
    next: bye
  bye:
    type: hangup
"""


async def test_the_caller_chooses_the_enterprise_by_key(edge: Edge, tmp_path: Path) -> None:
    platform, sip = edge.platform, edge.platform.sip
    assert sip is not None
    await add_trunk(edge, free_port())
    async with platform.db.write(Scope.cli()) as uow:
        res = platform.resources
        bravo = await res["tenants"].create(uow, s.TenantCreate(slug="bravo", name="Bravo Bank"))
        center = await res["business-centers"].create(
            uow, s.BusinessCenterCreate(tenant_id=bravo.id, name="Bravo center")
        )
        service = await res["services"].create(
            uow,
            s.ServiceCreate(
                tenant_id=bravo.id, code="main", name="Main", business_center_id=center.id
            ),
        )
        number = (
            await uow.session.execute(
                select(ServiceNumber).where(ServiceNumber.number == "4008001000")
            )
        ).scalar_one()
        acme_link = (
            await uow.session.execute(select(NumberLink).where(NumberLink.number_id == number.id))
        ).scalar_one()
        await res["number-links"].update(uow, acme_link.id, s.NumberLinkUpdate(ivr_digit="1"))
        await res["number-links"].create(
            uow,
            s.NumberLinkCreate(
                number_id=number.id, tenant_id=bravo.id, service_id=service.id, ivr_digit="2"
            ),
        )
    await sip.directory.load()
    acme_flows = sip.flows
    assert acme_flows is not None
    bravo_flow = load_flow(BRAVO_FLOW)

    async def flows(tenant_id: str, service_id: str | None) -> Flow | PublishedFlow | None:
        if tenant_id == bravo.id:
            return bravo_flow
        return await acme_flows(tenant_id, service_id)

    sip.flows = flows
    (tmp_path / "caller.xml").write_text(caller(["2"], hold_ms=None))
    proc = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    await finished(proc, tmp_path, "caller")  # bravo's flow played and hung up
    async with asyncio.timeout(10):
        while True:
            async with platform.db.read() as session:
                rows = (await session.execute(select(CallDetailRecord))).scalars().all()
            if rows and rows[0].ended_at is not None:
                break
            await asyncio.sleep(0.05)
    (row,) = rows
    assert (row.tenant_id, row.service_id) == (bravo.id, service.id)
    assert [v["step"] for v in row.ivr_path] == ["hello", "bye"]
    assert row.answered_at is not None
