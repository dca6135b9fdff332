"""Small helpers for API tests: sign in, create through the API, check errors."""

from typing import Any

import httpx

from telportal.app import Platform
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Role, Scope

PASSWORD = "correct horse battery"


async def make_operator(platform: Platform, username: str = "root") -> None:
    async with platform.db.write(Scope.cli()) as uow:
        await platform.resource("users").create(
            uow,
            s.UserCreate(username=username, role=Role.PLATFORM_OPERATOR, password=PASSWORD),
        )


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> dict[str, str]:
    r = await client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, body: dict[str, Any]
) -> dict[str, Any]:
    r = await client.post(f"/api/v1/{path}", json=body, headers=headers)
    assert r.status_code == 201, f"{path}: {r.status_code} {r.text}"
    data: dict[str, Any] = r.json()
    return data


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body
