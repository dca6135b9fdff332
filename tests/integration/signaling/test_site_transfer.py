"""A flow's transfer to another site, between two running sites sharing one database.

The access site ("local", the `edge` fixture) answers SIPp's call to the demo number,
the caller presses 1, the flow notes the account and transfers the call to site
"west" (another platform on its own SIP port). West receives it over SIP with the
same service number, sees where it came from (`transfer.from_site`) and the carried
variable, and its flow takes the branch for handed-over calls. Both sites write their
own call record; the access site's shows the transfer and the site leg.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from telportal.app import Platform, build_platform
from telportal.auth.credentials import Passwords
from telportal.config import Config, SiteConfig, SiteRole, parse_listen
from telportal.ivr.checker import load_flow
from telportal.ivr.flow import Flow
from telportal.store.schema import CallDetailRecord, Site
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.test_acd_calls import add_trunk, finished, start_sipp
from tests.integration.signaling.test_ivr_transfer import _call as place_sipp_call
from tests.integration.signaling.test_ivr_transfer import caller
from tests.ports import free_media_port

FLOW = """
flow: national
tenant: acme
steps:
  start:
    type: branch
    cases:
      - when: transfer.from_site != "" and vars.account == "A-42"
        goto: handed_over
      - when: transfer.from_site != ""
        goto: handed_over_without_account
    else: menu
  menu:
    type: menu
    prompt: For the western center press 1.
    options:
      "1": note_account
    timeout: 10s
    on_timeout: bye
    on_invalid: bye
  note_account:
    type: set
    vars:
      account: '"A-42"'
    next: to_west
  to_west:
    type: transfer
    site: west
  handed_over:
    type: play
    prompt: Welcome to the western center. We have your account.
    next: bye
  handed_over_without_account:
    type: play
    prompt: Welcome to the western center.
    next: bye
  bye:
    type: hangup
"""


@pytest.fixture
async def west(edge: Edge, tmp_path: Path) -> AsyncIterator[tuple[Platform, int]]:
    """A second site on the same database, as in a distributed install."""
    port = free_port()
    config = Config(
        data_dir=tmp_path / "west",
        database_url=edge.platform.config.database_url,
        sip_listen=parse_listen(f"127.0.0.1:{port}"),  # type: ignore[arg-type]
        site=SiteConfig(name="west", roles=(SiteRole.ACCESS, SiteRole.CENTER)),
    )
    platform = build_platform(config, passwords=Passwords.fast_for_tests())
    await platform.start()
    assert platform.sip is not None
    await platform.sip.start()
    try:
        yield platform, port
    finally:
        await platform.sip.stop()
        await platform.close()


async def _use_flow(platform: Platform) -> None:
    assert platform.sip is not None
    flow = load_flow(FLOW)

    async def flows(_tenant: str, _service: str | None) -> Flow:
        return flow

    platform.sip.flows = flows


async def _add_west(edge: Edge, west_port: int) -> None:
    """The demo seeded the access site; the operator adds the western center and gives
    both their SIP addresses."""
    async with edge.platform.db.read() as session:
        local = (await session.execute(select(Site).where(Site.name == "local"))).scalar_one()
    async with edge.platform.db.write(Scope.cli()) as uow:
        sites = edge.platform.resources["sites"]
        await sites.update(uow, local.id, s.SiteUpdate(sip_uri=f"sip:127.0.0.1:{edge.port}"))
        await sites.create(
            uow,
            s.SiteCreate(
                name="west", roles=[SiteRole.CENTER], region="west",
                sip_uri=f"sip:127.0.0.1:{west_port}",
            ),
        )  # fmt: skip


async def _ended_records(edge: Edge, count: int) -> list[CallDetailRecord]:
    """The call records of both sites once `count` of them are written and ended."""
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                rows = list((await session.execute(select(CallDetailRecord))).scalars().all())
            if len(rows) >= count and all(r.ended_at is not None for r in rows):
                return rows
            await asyncio.sleep(0.1)


async def test_a_flow_transfers_the_call_to_another_site(
    edge: Edge, west: tuple[Platform, int], tmp_path: Path
) -> None:
    west_platform, west_port = west
    await _add_west(edge, west_port)
    for platform in (edge.platform, west_platform):
        assert platform.sip is not None
        await platform.sip.directory.load()
        await _use_flow(platform)
    assert edge.platform.sip is not None and west_platform.sip is not None
    assert edge.platform.sip.directory.site("west") is not None
    assert edge.platform.sip.directory.site("local") is None  # never itself

    # West plays its welcome and hangs up.
    await place_sipp_call(edge, tmp_path, caller(["1"], hold_ms=None))

    rows = await _ended_records(edge, 2)
    by_site = {r.site: r for r in rows}
    access, center = by_site["local"], by_site["west"]
    assert access.transfers == [{"kind": "ivr", "to": "site west"}]
    assert [(leg["kind"], leg["target"]) for leg in access.legs] == [("site", "west")]
    assert [v["step"] for v in access.ivr_path] == ["start", "menu", "note_account", "to_west"]
    assert access.hangup_by == "callee"  # west ended the call
    # West ran the same service's flow, knew where the call came from and the account.
    assert center.called == "4008001000" and center.caller == access.caller
    assert [v["step"] for v in center.ivr_path] == ["start", "handed_over", "bye"]


async def test_a_transfer_to_an_unknown_site_apologises(edge: Edge, tmp_path: Path) -> None:
    await add_trunk(edge, free_port())  # the caller comes from the carrier's address
    await _use_flow(edge.platform)  # no site "west" exists
    (tmp_path / "caller.xml").write_text(caller(["1"], hold_ms=None))
    proc = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    await finished(proc, tmp_path, "caller")  # the apology, then our BYE
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                row = (await session.execute(select(CallDetailRecord))).scalars().first()
            if row is not None and row.ended_at is not None:
                break
            await asyncio.sleep(0.1)
    assert row.transfers == [{"kind": "ivr", "to": "site west"}] and row.legs == []


def test_a_site_sip_uri_is_checked() -> None:
    with pytest.raises(ValueError, match="without a user part"):
        s.SiteCreate(name="x", roles=[SiteRole.CENTER], region="r", sip_uri="sip:bob@host")
    with pytest.raises(ValueError, match="transport"):
        s.SiteCreate(name="x", roles=[SiteRole.CENTER], region="r", sip_uri="sip:h;transport=x")


def _handing_to(site: str) -> str:
    return f"""
flow: national
tenant: acme
steps:
  start:
    type: transfer
    site: {site}
"""


async def test_sites_that_hand_a_call_to_each_other_stop_when_max_forwards_runs_out(
    edge: Edge, west: tuple[Platform, int], tmp_path: Path
) -> None:
    """Two sites whose flows send every call to the other (a configuration mistake):
    each hand-over carries Max-Forwards down by one (RFC 7332), so the loop ends where
    it runs out, instead of calls being made until something else gives way."""
    west_platform, west_port = west
    await _add_west(edge, west_port)
    for platform, other in ((edge.platform, "west"), (west_platform, "local")):
        assert platform.sip is not None
        await platform.sip.directory.load()
        flow = load_flow(_handing_to(other))

        async def flows(_tenant: str, _service: str | None, flow: Flow = flow) -> Flow:
            return flow

        platform.sip.flows = flows

    # The caller's INVITE allows three more hops: local, west, local, then west refuses.
    scenario = caller([], hold_ms=None).replace("Max-Forwards: 70", "Max-Forwards: 3", 1)
    await place_sipp_call(edge, tmp_path, scenario)
    await _ended_records(edge, 4)
    await asyncio.sleep(0.5)  # a fifth call, if the loop went on, would show by now
    async with edge.platform.db.read() as session:
        rows = (await session.execute(select(CallDetailRecord))).scalars().all()
    assert sorted(r.site for r in rows) == ["local", "local", "west", "west"]
    assert all(r.ended_at is not None for r in rows)
