"""Sign-in, tokens, API keys, lockout, and secrets that are never stored in the clear."""

import hashlib

import httpx
import pytest
from sqlalchemy import select

from telportal.app import Platform
from telportal.clock import FakeClock
from telportal.store.schema import AccessToken, ApiKey, User
from tests.integration.api_helpers import PASSWORD, assert_error, create, login, make_operator


@pytest.fixture
async def setup(platform: Platform, client: httpx.AsyncClient) -> dict[str, str]:
    await make_operator(platform)
    op = await login(client, "root")
    t = await create(client, op, "tenants", {"slug": "acme", "name": "Acme"})
    await create(
        client,
        op,
        "users",
        {
            "tenant_id": t["id"],
            "username": "1001",
            "role": "agent",
            "password": PASSWORD,
            "sip_password": "sip-pass-1001",
            "extension": "1001",
        },
    )
    return {"op": op["Authorization"], "tenant_id": t["id"]}


async def test_login_json_form_and_tenant_forms(
    client: httpx.AsyncClient, setup: dict[str, str]
) -> None:
    r = await client.post(
        "/api/v1/auth/token", json={"username": "1001@acme", "password": PASSWORD}
    )
    assert r.status_code == 200 and r.json()["role"] == "agent"
    assert r.json()["tenant_id"] == setup["tenant_id"]
    r = await client.post(
        "/api/v1/auth/token", data={"username": "1001", "password": PASSWORD, "tenant": "acme"}
    )
    assert r.status_code == 200
    me = (
        await client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
    ).json()
    assert me["name"] == "1001@acme" and me["role"] == "agent"


async def test_unknown_user_and_wrong_password_get_the_same_answer(
    client: httpx.AsyncClient, setup: dict[str, str]
) -> None:
    answers = []
    for username, password in (
        ("1001@acme", "wrong-password"),
        ("9999@acme", PASSWORD),
        ("1001@nowhere", PASSWORD),
        ("1001", PASSWORD),
    ):
        r = await client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        answers.append((r.status_code, r.json()))
    assert len(set(map(str, answers))) == 1
    assert answers[0][0] == 401


async def test_lockout_after_repeated_failures(
    client: httpx.AsyncClient, setup: dict[str, str], platform: Platform, clock: FakeClock
) -> None:
    limit = platform.config.auth.login_max_failures
    bad = {"username": "1001@acme", "password": "wrong-password"}
    for _ in range(limit):
        assert (await client.post("/api/v1/auth/token", json=bad)).status_code == 401
    # Banned now: even the right password is refused, with a Retry-After.
    r = await client.post(
        "/api/v1/auth/token", json={"username": "1001@acme", "password": PASSWORD}
    )
    assert_error(r, 429, "too_many_attempts")
    assert int(r.headers["retry-after"]) == platform.config.auth.login_ban_seconds
    clock.advance(platform.config.auth.login_ban_seconds + 1)
    assert (
        await client.post(
            "/api/v1/auth/token", json={"username": "1001@acme", "password": PASSWORD}
        )
    ).status_code == 200


async def test_tokens_expire_and_logout_revokes(
    client: httpx.AsyncClient, setup: dict[str, str], platform: Platform, clock: FakeClock
) -> None:
    h = await login(client, "1001@acme")
    assert (await client.get("/api/v1/me", headers=h)).status_code == 200
    clock.advance(platform.config.auth.token_ttl_seconds + 1)
    assert_error(await client.get("/api/v1/me", headers=h), 401, "unauthorized")
    h = await login(client, "1001@acme")
    assert (await client.post("/api/v1/auth/logout", headers=h)).status_code == 204
    assert_error(await client.get("/api/v1/me", headers=h), 401, "unauthorized")


async def test_disabled_user_and_tenant_lose_access(
    client: httpx.AsyncClient, setup: dict[str, str]
) -> None:
    op = {"Authorization": setup["op"]}
    h = await login(client, "1001@acme")
    await client.patch(f"/api/v1/tenants/{setup['tenant_id']}", json={"enabled": False}, headers=op)
    assert_error(await client.get("/api/v1/me", headers=h), 401, "unauthorized")
    r = await client.post(
        "/api/v1/auth/token", json={"username": "1001@acme", "password": PASSWORD}
    )
    assert_error(r, 401, "unauthorized")


async def test_secrets_are_hashed(platform: Platform, setup: dict[str, str]) -> None:
    async with platform.db.read() as session:
        user = (await session.execute(select(User).where(User.username == "1001"))).scalar_one()
        tokens = (await session.execute(select(AccessToken))).scalars().all()
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    # SIP secrets are kept only as digest HA1 over the tenant's realm.
    a1 = b"1001:acme:sip-pass-1001"
    assert user.sip_ha1_md5 == hashlib.md5(a1, usedforsecurity=False).hexdigest()
    assert user.sip_ha1_sha256 == hashlib.sha256(a1).hexdigest()
    assert all(len(t.token_hash) == 64 for t in tokens)


async def test_api_keys(
    client: httpx.AsyncClient, setup: dict[str, str], platform: Platform
) -> None:
    op = {"Authorization": setup["op"]}
    await create(
        client,
        op,
        "users",
        {
            "tenant_id": setup["tenant_id"],
            "username": "boss",
            "role": "tenant_admin",
            "password": PASSWORD,
        },
    )
    admin = await login(client, "boss@acme")
    r = await client.post(
        "/api/v1/api-keys", json={"name": "crm", "role": "supervisor"}, headers=admin
    )
    assert r.status_code == 201
    created = r.json()
    secret = created["key"]
    assert secret.startswith("tpk_") and created["prefix"] == secret[:12]
    listed = (await client.get(f"/api/v1/api-keys/{created['id']}", headers=admin)).json()
    assert "key" not in listed and listed["role"] == "supervisor"
    async with platform.db.read() as session:
        stored = (await session.execute(select(ApiKey))).scalar_one()
    assert secret not in stored.key_hash
    bot = {"Authorization": f"Bearer {secret}"}
    me = (await client.get("/api/v1/me", headers=bot)).json()
    assert (
        me["actor_kind"] == "api_key"
        and me["role"] == "supervisor"
        and me["tenant_id"] == setup["tenant_id"]
    )
    # A supervisor key cannot write configuration, and cannot mint keys.
    assert_error(
        await client.post("/api/v1/skills", json={"name": "x"}, headers=bot), 403, "forbidden"
    )
    # Nobody grants more than they have.
    r = await client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "platform_operator"}, headers=admin
    )
    assert_error(r, 403, "forbidden")
    assert (
        await client.delete(f"/api/v1/api-keys/{created['id']}", headers=admin)
    ).status_code == 204
    assert_error(await client.get("/api/v1/me", headers=bot), 401, "unauthorized")
    assert (await client.get(f"/api/v1/api-keys/{created['id']}", headers=admin)).json()[
        "revoked_at"
    ]


async def test_cached_bearers_are_refused_at_once_when_revoked_here(
    client: httpx.AsyncClient, setup: dict[str, str], platform: Platform
) -> None:
    """Bearers are cached for a few seconds, yet a sign-out, a disabled user or a
    revoked API key in this process refuses them on the very next request."""
    op = {"Authorization": setup["op"]}
    h = await login(client, "1001@acme")
    for _ in range(2):  # the second answer comes from the cache
        assert (await client.get("/api/v1/me", headers=h)).status_code == 200
    assert len(platform.auth.cache) >= 1
    users = (await client.get("/api/v1/users", headers=op)).json()["items"]
    agent = next(u for u in users if u["username"] == "1001")
    r = await client.patch(f"/api/v1/users/{agent['id']}", json={"enabled": False}, headers=op)
    assert r.status_code == 200, r.text
    assert_error(await client.get("/api/v1/me", headers=h), 401, "unauthorized")

    await create(
        client, op, "users",
        {"tenant_id": setup["tenant_id"], "username": "boss", "role": "tenant_admin",
         "password": PASSWORD},
    )  # fmt: skip
    admin = await login(client, "boss@acme")
    key = await create(client, admin, "api-keys", {"name": "crm", "role": "supervisor"})
    bot = {"Authorization": f"Bearer {key['key']}"}
    for _ in range(2):
        assert (await client.get("/api/v1/me", headers=bot)).status_code == 200
    r = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
    assert r.status_code == 204, r.text
    assert_error(await client.get("/api/v1/me", headers=bot), 401, "unauthorized")


async def test_a_revocation_by_another_process_counts_within_the_cache_time(
    client: httpx.AsyncClient, setup: dict[str, str], platform: Platform, clock: FakeClock
) -> None:
    """A change this process did not make (the CLI, another site) is seen once the
    cached answer is older than the cache time: seconds, not the token's lifetime."""
    h = await login(client, "1001@acme")
    assert (await client.get("/api/v1/me", headers=h)).status_code == 200
    token_hash = hashlib.sha256(h["Authorization"].removeprefix("Bearer ").encode()).hexdigest()
    # Straight to the store, as another process would: no commit in this process.
    async with platform.db.read() as session, session.begin():
        row = (
            await session.execute(select(AccessToken).where(AccessToken.token_hash == token_hash))
        ).scalar_one()
        row.revoked_at = clock.now()
    assert (await client.get("/api/v1/me", headers=h)).status_code == 200  # cached
    clock.advance(platform.auth.cache.ttl)
    assert_error(await client.get("/api/v1/me", headers=h), 401, "unauthorized")
