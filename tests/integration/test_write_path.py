"""The one write path: audit entry, revision bump and event, only when the change commits."""

import httpx
import pytest

from telportal.app import Platform
from telportal.errors import Invalid
from telportal.events import ConfigChanged
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.api_helpers import PASSWORD, create, login, make_operator


async def test_events_follow_commits_with_rising_revisions(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await make_operator(platform)
    op = await login(client, "root")
    t = await create(client, op, "tenants", {"slug": "acme", "name": "Acme"})
    sub = platform.bus.subscribe(f"config.{t['id']}")
    s1 = await create(client, op, "skills", {"tenant_id": t["id"], "name": "a"})
    s2 = await create(client, op, "skills", {"tenant_id": t["id"], "name": "b"})
    await client.patch(f"/api/v1/skills/{s1['id']}", json={"description": "d"}, headers=op)
    await client.delete(f"/api/v1/skills/{s2['id']}", headers=op)
    events = [sub.get_nowait() for _ in range(4)]
    assert all(isinstance(e, ConfigChanged) for e in events)
    changes = [(e.entity, e.entity_id, e.action) for e in events]  # type: ignore[union-attr]
    assert changes == [
        ("skill", s1["id"], "created"),
        ("skill", s2["id"], "created"),
        ("skill", s1["id"], "updated"),
        ("skill", s2["id"], "deleted"),
    ]
    revisions = [e.revision for e in events]  # type: ignore[union-attr]
    assert revisions == sorted(revisions) and len(set(revisions)) == 4
    rev = (
        await client.get("/api/v1/config/revision", headers=await _admin(client, op, t["id"]))
    ).json()
    assert rev["revision"] >= revisions[-1]


async def _admin(client: httpx.AsyncClient, op: dict[str, str], tid: str) -> dict[str, str]:
    await create(
        client,
        op,
        "users",
        {"tenant_id": tid, "username": "boss", "role": "tenant_admin", "password": PASSWORD},
    )
    return await login(client, "boss@acme")


async def test_failed_transaction_publishes_nothing_and_writes_nothing(platform: Platform) -> None:
    sub = platform.bus.subscribe()

    async def doomed() -> None:
        async with platform.db.write(Scope.cli()) as uow:
            await platform.resource("tenants").create(
                uow, s.TenantCreate(slug="ghost", name="Ghost")
            )
            raise Invalid("test", "abandon the transaction after a change")

    with pytest.raises(Invalid):
        await doomed()
    assert sub.get_nowait() is None
    async with platform.db.read() as session:
        _, total = await platform.resource("tenants").list(session, Scope.cli())
    assert total == 0


async def test_audit_records_who_and_what_without_secrets(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await make_operator(platform)
    op = await login(client, "root")
    t = await create(client, op, "tenants", {"slug": "acme", "name": "Acme"})
    u = await create(
        client,
        op,
        "users",
        {
            "tenant_id": t["id"],
            "username": "1001",
            "role": "agent",
            "password": "very-secret-pw",
            "sip_password": "sip-secret-pw",
            "extension": "1001",
        },
    )
    await client.patch(
        f"/api/v1/users/{u['id']}",
        json={"display_name": "Ann", "password": "another-secret"},
        headers=op,
    )
    log = (await client.get(f"/api/v1/audit?entity=user&entity_id={u['id']}", headers=op)).json()[
        "items"
    ]
    assert [e["action"] for e in log] == ["updated", "created"]
    assert all(e["actor_name"] == "root" and e["actor_kind"] == "user" for e in log)
    assert log[0]["changes"]["after"]["display_name"] == "Ann"
    assert log[0]["changes"]["before"]["display_name"] == ""
    text = str(log)
    for secret in ("very-secret-pw", "sip-secret-pw", "another-secret", "argon2"):
        assert secret not in text


async def test_a_phone_s_digest_secret_is_over_its_extension(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """A supervisor signs in as 'sup' but their phone registers as 1009: HA1 is over 1009."""
    from telportal.auth.credentials import digest_secrets
    from telportal.store.schema import User

    await make_operator(platform)
    op = await login(client, "root")
    t = await create(client, op, "tenants", {"slug": "acme", "name": "Acme"})
    body = {"tenant_id": t["id"], "username": "sup", "role": "supervisor"}
    r = await client.post("/api/v1/users", json={**body, "sip_password": "phone-pw-1"}, headers=op)
    assert r.status_code == 422 and "needs an extension" in r.json()["message"]
    u = await create(
        client, op, "users", {**body, "extension": "1009", "sip_password": "phone-pw-1"}
    )
    async with platform.db.read() as session:
        row = await session.get(User, u["id"])
    assert row is not None
    assert row.sip_ha1_md5 == digest_secrets("1009", "acme", "phone-pw-1").ha1_md5
    r = await client.patch(f"/api/v1/users/{u['id']}", json={"extension": "1010"}, headers=op)
    assert r.status_code == 422 and "needs a new sip_password" in r.json()["message"]
    r = await client.patch(
        f"/api/v1/users/{u['id']}",
        json={"extension": "1010", "sip_password": "phone-pw-2"},
        headers=op,
    )
    assert r.status_code == 200, r.text
