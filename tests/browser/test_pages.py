"""The agent desktop (`/`) and the wallboard (`/wallboard`) in a real browser."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.browser.conftest import SETUP_HINT, Server
from tests.e2e.test_server import PW

try:
    from playwright.sync_api import expect
except ImportError:  # a failure naming the fix, never a skip
    pytest.fail(f"the browser tests need the `playwright` Python package: {SETUP_HINT}")

if TYPE_CHECKING:
    from playwright.sync_api import Page


def sign_in(page: Page, path: str, username: str) -> None:
    page.goto(path)
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#signin-form input[name=username]", username)
    page.fill("#signin-form input[name=password]", PW)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#signin")).to_be_hidden()


def agent_state(server: Server, username: str) -> dict[str, Any]:
    r = httpx.get(f"{server.base}/api/v1/agents/me", headers=server.headers(username))
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()
    return state


def test_pages_are_served_and_the_api_still_answers(server: Server) -> None:
    desktop = httpx.get(f"{server.base}/")
    assert desktop.status_code == 200 and "text/html" in desktop.headers["content-type"]
    assert "/static/desktop.js" in desktop.text
    wall = httpx.get(f"{server.base}/wallboard")
    assert wall.status_code == 200 and "/static/wallboard.js" in wall.text
    for path in ("/static/common.js", "/static/app.css", "/i18n/en.json", "/i18n/zh-CN.json"):
        assert httpx.get(f"{server.base}{path}").status_code == 200, path
    assert httpx.get(f"{server.base}/healthz").json()["status"] == "ok"
    doc = httpx.get(f"{server.base}/api/v1/openapi.json").json()
    assert "/api/v1/queues-status" in doc["paths"] and "/" not in doc["paths"]
    assert httpx.get(f"{server.base}/api/v1/agents").status_code == 401


def test_catalogs_have_the_same_keys() -> None:
    here = Path(__file__).resolve().parents[2] / "src" / "telportal" / "web" / "i18n"
    en = json.loads((here / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((here / "zh-CN.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh)
    used = set()
    for f in (here.parent / "static").iterdir():
        used |= set(re.findall(r'data-i18n(?:-[a-z]+)?="([\w.-]+)"', f.read_text("utf-8")))
        used |= set(re.findall(r'\bt\("([\w.-]+)"', f.read_text("utf-8")))
    assert used - set(en) == set(), "texts used by the pages but missing from the catalogs"


def test_agent_goes_ready_and_not_ready_and_follows_live_events(page: Page, server: Server) -> None:
    sign_in(page, "/", "1001@acme")
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "online")
    state = page.locator("#state")
    expect(state).to_have_attribute("data-state", agent_state(server, "1001@acme")["state"])
    expect(page.locator("#agent-details")).to_contain_text("1001")

    page.click("#btn-ready")
    expect(state).to_have_attribute("data-state", "ready")
    expect(state).to_have_text("Ready")
    assert agent_state(server, "1001@acme")["state"] == "ready"

    page.select_option("#reason", "lunch")
    page.click("#btn-not-ready")
    expect(state).to_have_attribute("data-state", "not_ready")
    expect(page.locator("#state-reason")).to_have_text("Reason: Lunch")
    rest = agent_state(server, "1001@acme")
    assert (rest["state"], rest["reason"]) == ("not_ready", "lunch")

    # A supervisor changes the agent's state: the `agent` event updates the page.
    sup = server.headers("supervisor@acme")
    r = httpx.post(f"{server.base}/api/v1/agents/{rest['agent_id']}/ready", headers=sup)
    assert r.status_code == 200, r.text
    expect(state).to_have_attribute("data-state", "ready")

    # The socket drops; a change made meanwhile shows once it reconnects (REST resync).
    page.evaluate("() => window.telportalDesktop.socket.ws.close()")
    expect(conn).not_to_have_attribute("data-state", "online")
    r = httpx.post(
        f"{server.base}/api/v1/agents/{rest['agent_id']}/not-ready",
        headers=sup,
        json={"reason": "training"},
    )
    assert r.status_code == 200, r.text
    expect(conn).to_have_attribute("data-state", "online")
    expect(state).to_have_attribute("data-state", "not_ready")
    expect(page.locator("#state-reason")).to_have_text("Reason: Training")

    page.click("#btn-sign-out")
    expect(state).to_have_attribute("data-state", "signed_out")
    assert agent_state(server, "1001@acme")["state"] == "signed_out"


async def _record_call(server: Server, tenant_id: str, call_id: str, caller: str) -> None:
    """A call record as the SIP side writes it when a call arrives (same store code)."""
    from telportal.calls_store import CallRecords
    from telportal.clock import SystemClock
    from telportal.events.bus import InProcessBus
    from telportal.store.database import Database

    db = Database(server.db_url, SystemClock(), InProcessBus())
    try:
        await CallRecords(db).start(
            tenant_id,
            call_id,
            site="local",
            direction="inbound",
            caller=caller,
            called="4008001000",
        )
    finally:
        await db.dispose()


def test_screen_pop_and_create_case(page: Page, server: Server, screenshots: Path) -> None:
    from telportal.events.types import ScreenPop
    from telportal.events.wire import event_json

    token = server.token("1002@acme")
    h = {"Authorization": f"Bearer {token['access_token']}"}
    caller = "13800138" + str(uuid.uuid4().int)[:3]
    customer = httpx.post(
        f"{server.base}/api/v1/customers",
        headers=h,
        json={
            "name": "Li Wei",
            "importance": 5,
            "tags": ["vip"],
            "identities": [{"kind": "phone", "value": caller}],
        },
    )
    assert customer.status_code == 201, customer.text
    call_id = f"{uuid.uuid4().hex}@browser-test"
    # Playwright's sync API runs an event loop in this thread: the store code gets its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _record_call(server, token["tenant_id"], call_id, caller)).result()

    sign_in(page, "/", "1002@acme")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    expect(page.locator("#pop-empty")).to_be_visible()
    box_before = page.locator("#pop").bounding_box()
    me = agent_state(server, "1002@acme")

    # The screen pop exactly as the server writes it to the agent's socket. The SIP
    # path that produces it (IVR, queue, offer) is not driven from this test.
    c = customer.json()
    pop = ScreenPop(
        tenant_id=token["tenant_id"],
        agent_id=me["agent_id"],
        call_id=call_id,
        queue="support",
        caller=caller,
        called="4008001000",
        service_id=None,
        customer={"id": c["id"], "name": "Li Wei", "importance": 5, "tags": ["vip"]},
        importance=5,
        ivr_path=["welcome", "menu", "support"],
        ivr_variables={"choice": "2"},
        recent_calls=[
            {
                "call_id": "earlier@x",
                "started_at": "2026-11-20T09:30:00+00:00",
                "queue": "sales",
                "agent": "1001",
                "outcome": "answered",
            }
        ],
        waited_seconds=12.4,
        decided_at=datetime.now(UTC),
    )
    wire = json.loads(json.dumps(event_json(pop), ensure_ascii=False, default=str))
    page.evaluate("(e) => window.telportalDesktop.handleEvent(e)", wire)

    expect(page.locator("#pop-caller")).to_have_text(caller)
    expect(page.locator("#pop-customer")).to_have_text("Li Wei")
    expect(page.locator("#pop-stars")).to_have_text("★★★★★")
    expect(page.locator("#pop-vip")).to_be_visible()
    expect(page.locator("#pop-queue")).to_have_text("support")
    expect(page.locator("#pop-ivr")).to_have_text("welcome \u203a menu \u203a support")
    expect(page.locator("#pop-recent li")).to_have_count(1)
    expect(page.locator("#pop-recent")).to_contain_text("sales · 1001 · answered")
    box_after = page.locator("#pop").bounding_box()
    assert box_before is not None and box_after is not None
    assert (box_before["x"], box_before["y"], box_before["width"]) == (
        box_after["x"],
        box_after["y"],
        box_after["width"],
    ), "the pop card moved when the pop arrived"
    page.screenshot(path=str(screenshots / "desktop-en.png"))

    expect(page.locator("#case-subject")).to_have_value(f"Call from {caller} (support)")
    page.click("#btn-case")
    result = page.locator("#case-result")
    expect(result).to_have_text(re.compile(r"^Case #\d+ created$"))
    number = int(re.findall(r"\d+", result.inner_text())[0])
    expect(page.locator("#btn-case")).to_be_disabled()

    cases = httpx.get(f"{server.base}/api/v1/cases", headers=h, params={"limit": 500}).json()
    mine = [x for x in cases["items"] if x["number"] == number]
    assert len(mine) == 1 and mine[0]["subject"] == f"Call from {caller} (support)"
    assert mine[0]["customer_id"] == c["id"]  # found from the linked call's caller

    # The same desktop in Chinese: the choice is kept for this user.
    page.select_option("#lang", "zh-CN")
    expect(page.locator("#pop-heading")).to_have_text("来电")
    expect(page.locator("#btn-ready")).to_have_text("就绪")
    expect(result).to_have_text(f"已创建工单 #{number}")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.screenshot(path=str(screenshots / "desktop-zh-CN.png"))
    page.reload()
    expect(page.locator("#state-heading")).to_have_text("我的状态")


def test_supervisor_sees_the_wallboard_live(page: Page, server: Server, screenshots: Path) -> None:
    sign_in(page, "/wallboard", "supervisor@acme")
    expect(page.locator("#board")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    expect(page.locator("#queues tbody tr[data-queue=sales]")).to_have_count(1)
    expect(page.locator("#queues tbody tr[data-queue=support]")).to_have_count(1)
    for ext in ("1001", "1002", "1003"):
        expect(page.locator(f"#agents tbody tr[data-agent='{ext}']")).to_have_count(1)

    # An agent goes ready: the `agent` event updates their row, `queue` events the queues.
    h = server.headers("1003@acme")
    r = httpx.post(f"{server.base}/api/v1/agents/me/sign-in", headers=h)
    assert r.status_code == 200, r.text
    row = page.locator("#agents tbody tr[data-agent='1003']")
    expect(row.locator(".badge")).to_have_attribute("data-state", "not_ready")
    r = httpx.post(f"{server.base}/api/v1/agents/me/not-ready", headers=h, json={"reason": "break"})
    assert r.status_code == 200, r.text
    expect(row).to_contain_text("Break")
    figures = {
        q["name"]: q
        for q in httpx.get(
            f"{server.base}/api/v1/queues-status", headers=server.headers("supervisor@acme")
        ).json()
    }
    for name in ("sales", "support"):
        q = figures[name]
        expect(page.locator(f"#queues tr[data-queue={name}] td[data-field=agents]")).to_have_text(
            f"{q['agents_free']} / {q['agents_staffed']}"
        )
    page.screenshot(path=str(screenshots / "wallboard-en.png"))

    page.select_option("#lang", "zh-CN")
    expect(page.locator("#board h2").first).to_have_text("队列")
    expect(row).to_contain_text("小休")
    page.screenshot(path=str(screenshots / "wallboard-zh-CN.png"))


def test_an_agent_is_refused_the_wallboard(page: Page, server: Server) -> None:
    sign_in(page, "/wallboard", "1001@acme")
    expect(page.locator("#denied")).to_be_visible()
    expect(page.locator("#denied")).to_contain_text("Access denied")
    expect(page.locator("#board")).to_be_hidden()


def test_language_defaults_from_the_browser(browser: Any, server: Server) -> None:
    context = browser.new_context(locale="zh-CN", base_url=server.base)
    try:
        pg = context.new_page()
        pg.goto("/")
        pg.wait_for_selector("body[data-ready=true]")
        expect(pg.locator("#signin h1")).to_have_text("登录")
        expect(pg.locator("#lang")).to_have_value("zh-CN")
    finally:
        context.close()
