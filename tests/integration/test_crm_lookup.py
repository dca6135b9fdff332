"""Asking the enterprise's own customer system about callers the CRM does not know.

The enterprise system is a real HTTP server (uvicorn on 127.0.0.1) that counts what it
is asked; Telportal's API is driven as a tenant's admin and agent would.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from tests.integration.api_helpers import assert_error
from tests.integration.world import TenantWorld
from tests.ports import listening_socket

KNOWN = "+8613900139000"


@dataclass
class EnterpriseCrm:
    """The enterprise's customer system: what it was asked, and how it answers."""

    base: str = ""
    asked: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    mode: str = "normal"  # normal, slow, broken, garbage
    known: str = KNOWN

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.asked.append((scope["query_string"].decode(), headers))
        status, body = 404, {"error": "unknown"}
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "broken":
            status, body = 500, {"error": "down"}
        elif headers.get("x-api-key") != "k-123":
            status, body = 401, {"error": "key"}
        elif scope["query_string"].decode() == "phone=" + self.known.replace("+", "%2B"):
            status = 200
            body = {
                "id": "C-778", "name": "Li Lei", "importance": 5, "tags": ["gold"],
                "notes": "prefers Mandarin", "attributes": {"branch": "Pudong", "credit": 9000},
            }  # fmt: skip
        payload = b"{not json" if self.mode == "garbage" and status == 200 else json.dumps(body)
        data = payload if isinstance(payload, bytes) else payload.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": data})


@pytest.fixture
async def enterprise() -> AsyncIterator[EnterpriseCrm]:
    crm = EnterpriseCrm()
    sock = listening_socket()  # held from the start: no other socket can take the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(crm, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn's own flag
            await asyncio.sleep(0.02)
    crm.base = f"http://127.0.0.1:{port}"
    try:
        yield crm
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_settings_are_for_tenant_admins_and_hide_credentials(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld], enterprise: EnterpriseCrm
) -> None:
    acme, _ = tenants
    body = {"lookup_url": f"{enterprise.base}/customers?phone={{value}}",
            "lookup_timeout_ms": 500, "lookup_headers": {"X-Api-Key": "k-123"}}  # fmt: skip
    r = await client.put("/api/v1/crm-settings", json=body, headers=acme.agent)
    assert_error(r, 403, "forbidden")
    for bad, field_name in (
        ({**body, "lookup_url": "ftp://crm.example/{value}"}, "lookup_url"),
        ({**body, "lookup_url": f"{enterprise.base}/customers"}, "lookup_url"),
        ({**body, "lookup_timeout_ms": 60_000}, "lookup_timeout_ms"),
        ({**body, "lookup_headers": {"bad header": "x"}}, "lookup_headers"),
    ):
        r = await client.put("/api/v1/crm-settings", json=bad, headers=acme.admin)
        problem = assert_error(r, 422, "invalid_request")
        assert any(field_name in d["field"] for d in problem["details"]), problem
    r = await client.put("/api/v1/crm-settings", json=body, headers=acme.admin)
    assert r.status_code == 200, r.text
    shown = (await client.get("/api/v1/crm-settings", headers=acme.admin)).json()
    assert shown["lookup_header_names"] == ["X-Api-Key"] and "k-123" not in json.dumps(shown)
    # A change of URL alone keeps the stored key.
    r = await client.put(
        "/api/v1/crm-settings",
        json={"lookup_url": body["lookup_url"], "lookup_timeout_ms": 500},
        headers=acme.admin,
    )
    assert r.json()["lookup_header_names"] == ["X-Api-Key"]


async def test_a_miss_asks_the_enterprise_once_and_the_answer_is_kept(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld], enterprise: EnterpriseCrm
) -> None:
    acme, bravo = tenants
    r = await client.put(
        "/api/v1/crm-settings",
        json={"lookup_url": f"{enterprise.base}/customers?phone={{value}}",
              "lookup_timeout_ms": 800, "lookup_headers": {"X-Api-Key": "k-123"}},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text

    # The agent types the number as the caller said it; the enterprise gets E.164.
    r = await client.get(
        "/api/v1/customers/lookup", params={"phone": "139 0013 9000"}, headers=acme.agent
    )
    assert r.status_code == 200, r.text
    found = r.json()
    assert (found["name"], found["importance"], found["external_id"]) == ("Li Lei", 5, "C-778")
    assert found["tags"] == ["gold"] and found["attributes"]["branch"] == "Pudong"
    assert [q for q, _ in enterprise.asked] == ["phone=%2B8613900139000"]
    assert enterprise.asked[0][1]["x-api-key"] == "k-123"

    # Now the CRM knows them: no second question, the same record.
    r = await client.get("/api/v1/customers/lookup", params={"phone": KNOWN}, headers=acme.agent)
    assert r.status_code == 200 and r.json()["id"] == found["id"]
    assert len(enterprise.asked) == 1
    r = await client.get(f"/api/v1/customers/{found['id']}/timeline", headers=acme.agent)
    assert r.status_code == 200

    # Unknown there too: 404, and asked each time (no guessing).
    r = await client.get(
        "/api/v1/customers/lookup", params={"phone": "13700137000"}, headers=acme.agent
    )
    assert_error(r, 404, "not_found")
    assert len(enterprise.asked) == 2

    # Another tenant has no lookup configured: nothing is asked, and acme's customer
    # is not theirs.
    r = await client.get("/api/v1/customers/lookup", params={"phone": KNOWN}, headers=bravo.agent)
    assert_error(r, 404, "not_found")
    assert len(enterprise.asked) == 2


@pytest.mark.parametrize("mode", ["slow", "broken", "garbage"])
async def test_a_failing_enterprise_system_counts_as_unknown_within_the_timeout(
    client: httpx.AsyncClient,
    tenants: tuple[TenantWorld, TenantWorld],
    enterprise: EnterpriseCrm,
    mode: str,
) -> None:
    acme, _ = tenants
    enterprise.mode = mode
    r = await client.put(
        "/api/v1/crm-settings",
        json={"lookup_url": f"{enterprise.base}/customers?phone={{value}}",
              "lookup_timeout_ms": 300, "lookup_headers": {"X-Api-Key": "k-123"}},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    started = time.monotonic()
    r = await client.get("/api/v1/customers/lookup", params={"phone": KNOWN}, headers=acme.agent)
    assert_error(r, 404, "not_found")
    assert time.monotonic() - started < 1.5  # the 2 s answer was not waited for
    assert len(enterprise.asked) == 1
