"""The screen pop of a caller the CRM does not know yet, from the enterprise's own system.

SIPp calls the demo number and presses 1; agent 1001 is a SIPp phone that answers.
The tenant's customer system (a real HTTP server) knows the caller: the pop on 1001's
desktop socket names them with their importance, and the customer is now in the CRM.
"""

from pathlib import Path

from telportal.crm import store as crm_store
from telportal.crm.identities import IdentityKind
from telportal.store.schema import CrmSettings
from telportal.tenancy.roles import Scope
from tests.integration.signaling.conftest import Api, Edge, free_port
from tests.integration.signaling.test_acd_calls import (
    CUSTOMER,
    Desktop,
    add_trunk,
    caller_scenario,
    finished,
    start_sipp,
    until_state,
)
from tests.integration.signaling.test_sipp_call import _register_callee
from tests.integration.test_crm_lookup import EnterpriseCrm, enterprise
from tests.ports import free_media_port

__all__ = ["enterprise"]  # the fixture


async def test_the_pop_names_a_caller_known_only_to_the_enterprise(
    edge: Edge, api: Api, tmp_path: Path, enterprise: EnterpriseCrm
) -> None:
    enterprise.known = f"+86{CUSTOMER}"
    sip = edge.platform.sip
    assert sip is not None
    await add_trunk(edge, free_port())
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    async with edge.platform.db.write(Scope.cli()) as uow:  # the tenant admin's setting
        uow.session.add(
            CrmSettings(
                tenant_id=acme.tenant_id,
                lookup_url=f"{enterprise.base}/customers?phone={{value}}",
                lookup_timeout_ms=800,
                lookup_headers={"X-Api-Key": "k-123"},
                updated_at=edge.platform.clock.now(),
            )
        )
    token = await api.token("1001@acme")
    port = free_port()
    phone = await start_sipp(tmp_path, "p1001", "-sn", "uas", "-p", str(port), "-m", "1")
    try:
        await _register_callee(edge, port, extension="1001")
        await until_state(api, token, "ready")
        ws = api.base.replace("http://", "ws://") + "/api/v1/events?token="
        async with Desktop(ws + token) as desk:
            (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=3000))
            caller = await start_sipp(
                tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
                "-p", str(free_port()), "-mp", str(free_media_port()),
            )  # fmt: skip
            await finished(caller, tmp_path, "caller")
            await finished(phone, tmp_path, "p1001")
    finally:
        if phone.returncode is None:
            phone.kill()
            await phone.wait()
    (_, pop), *_ = desk.pops
    assert pop["customer"]["name"] == "Li Lei" and pop["importance"] == 5
    assert pop["customer"]["external_id"] == "C-778"
    assert [q for q, _ in enterprise.asked] == [f"phone=%2B86{CUSTOMER}"]
    async with edge.platform.db.read() as session:
        stored = await crm_store.find(session, acme.tenant_id, IdentityKind.PHONE, CUSTOMER)
        assert stored is not None and stored.name == "Li Lei"
