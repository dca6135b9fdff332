"""A retried write with the same Idempotency-Key creates one object."""

import asyncio

import httpx
import pytest

from telportal.app import Platform
from tests.integration.api_helpers import assert_error, login, make_operator


@pytest.fixture
async def op(platform: Platform, client: httpx.AsyncClient) -> dict[str, str]:
    await make_operator(platform)
    return await login(client, "root")


async def _count(client: httpx.AsyncClient, op: dict[str, str]) -> int:
    total: int = (await client.get("/api/v1/tenants", headers=op)).json()["total"]
    return total


async def test_retry_returns_first_answer(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    h = {**op, "Idempotency-Key": "create-acme-1"}
    first = await client.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme"}, headers=h)
    assert first.status_code == 201
    again = await client.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme"}, headers=h)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await _count(client, op) == 1
    # Without a key, the same request is a second attempt and conflicts.
    r = await client.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme"}, headers=op)
    assert_error(r, 409, "conflict")


async def test_same_key_different_request_is_refused(
    client: httpx.AsyncClient, op: dict[str, str]
) -> None:
    h = {**op, "Idempotency-Key": "k"}
    assert (
        await client.post("/api/v1/tenants", json={"slug": "a", "name": "A"}, headers=h)
    ).status_code == 201
    r = await client.post("/api/v1/tenants", json={"slug": "b", "name": "B"}, headers=h)
    assert_error(r, 422, "idempotency_key_reused")
    assert await _count(client, op) == 1


async def test_concurrent_retries_create_one_object(
    client: httpx.AsyncClient, op: dict[str, str]
) -> None:
    h = {**op, "Idempotency-Key": "burst"}
    results = await asyncio.gather(
        *(
            client.post("/api/v1/tenants", json={"slug": "acme", "name": "Acme"}, headers=h)
            for _ in range(8)
        )
    )
    assert [r.status_code for r in results] == [201] * 8, [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in results) == 7
    assert await _count(client, op) == 1


async def test_failed_write_is_not_stored(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    h = {**op, "Idempotency-Key": "fix-and-retry"}
    r = await client.post("/api/v1/skills", json={"name": "x", "tenant_id": "missing"}, headers=h)
    assert_error(r, 422, "invalid")
    t = (
        await client.post("/api/v1/tenants", json={"slug": "acme", "name": "A"}, headers=op)
    ).json()
    r = await client.post("/api/v1/skills", json={"name": "x", "tenant_id": t["id"]}, headers=h)
    assert r.status_code == 201


async def test_keys_are_per_principal_and_validated(
    client: httpx.AsyncClient, op: dict[str, str], platform: Platform
) -> None:
    await make_operator(platform, "root2")
    op2 = await login(client, "root2")
    body = {"slug": "acme", "name": "Acme"}
    assert (
        await client.post("/api/v1/tenants", json=body, headers={**op, "Idempotency-Key": "same"})
    ).status_code == 201
    # Another principal's identical key is not a replay of someone else's answer.
    r = await client.post("/api/v1/tenants", json=body, headers={**op2, "Idempotency-Key": "same"})
    assert_error(r, 409, "conflict")
    r = await client.post(
        "/api/v1/tenants", json=body, headers={**op, "Idempotency-Key": "x" * 256}
    )
    assert_error(r, 400, "bad_idempotency_key")


async def test_delete_replay(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    t = (
        await client.post("/api/v1/tenants", json={"slug": "gone", "name": "G"}, headers=op)
    ).json()
    h = {**op, "Idempotency-Key": "del-1"}
    assert (await client.delete(f"/api/v1/tenants/{t['id']}", headers=h)).status_code == 204
    again = await client.delete(f"/api/v1/tenants/{t['id']}", headers=h)
    assert again.status_code == 204 and again.headers["idempotent-replayed"] == "true"
