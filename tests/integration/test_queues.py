"""Queue settings for the ACD: ring timeout, service level, overflow, skills, music."""

import httpx
import pytest

from telportal.app import Platform
from tests.integration.api_helpers import assert_error, login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(platform: Platform, client: httpx.AsyncClient) -> TenantWorld:
    await make_operator(platform)
    op = await login(client, "root")
    return await build_tenant(client, op, "acme", "4008001000")


async def test_queue_settings_round_trip_and_are_checked(
    client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    w = acme
    body = {
        "service_id": w.ids["services"],
        "name": "vip",
        "strategy": "skills_weighted",
        "ring_timeout_seconds": 15,
        "service_level_seconds": 10,
        "max_wait_seconds": 120,
        "overflow_action": "agent",
        "overflow_target": "1009",
        "offer_callback": False,
        "music": "acme/hold.wav",
        "skills": [{"skill_id": w.ids["skills"], "min_level": 6}],
    }
    r = await client.post("/api/v1/queues", json=body, headers=w.admin)
    assert r.status_code == 201, r.text
    q = r.json()
    assert (q["ring_timeout_seconds"], q["service_level_seconds"]) == (15, 10)
    assert (q["overflow_action"], q["overflow_target"], q["offer_callback"]) == (
        "agent",
        "1009",
        False,
    )
    assert q["skills"] == [{"skill_id": w.ids["skills"], "min_level": 6}]
    assert q["announce_position"] is True and q["music"] == "acme/hold.wav"

    r = await client.patch(
        f"/api/v1/queues/{q['id']}", json={"overflow_action": "voicemail"}, headers=w.admin
    )
    assert r.status_code == 200, r.text
    r = await client.patch(
        f"/api/v1/queues/{q['id']}",
        json={"overflow_action": "queue", "overflow_target": None},
        headers=w.admin,
    )
    assert "needs an overflow_target" in assert_error(r, 422, "invalid")["message"]
    bad = [
        ({"overflow_action": "queue"}, "needs an overflow_target"),
        ({"overflow_target": "sales"}, "needs an overflow_action"),
        ({"ring_timeout_seconds": 1}, "ring_timeout_seconds"),
        ({"music": "../../etc/passwd"}, "music"),
        ({"skills": [{"skill_id": "nope", "min_level": 3}]}, "skills.0.skill_id"),
    ]
    for change, message in bad:
        r = await client.post(
            "/api/v1/queues",
            json={"service_id": w.ids["services"], "name": "bad", **change},
            headers=w.admin,
        )
        assert r.status_code == 422, (change, r.text)
        assert message in r.text, (change, r.text)
