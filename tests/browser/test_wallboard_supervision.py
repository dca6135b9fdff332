"""The wallboard's supervision features against a real server, proven on real state.

- A supervisor forces agents' states from the wallboard (ready, not ready with a
  reason, sign out); the API reads each change back, and the time in state restarts.
- A case's first-response deadline is breached: the `case` breach event raises an
  alarm, and the escalation step that follows reaches the escalation inbox, as the
  API lists it; all without a reload.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser.conftest import SETUP_HINT, LiveServer, Pages
from tests.browser.test_live_call import WAIT, seconds, sign_in
from tests.e2e.test_server import PW

try:
    from playwright.sync_api import expect
except ImportError:  # a failure naming the fix, never a skip
    pytest.fail(f"the browser tests need the `playwright` Python package: {SETUP_HINT}")

if TYPE_CHECKING:
    from playwright.sync_api import Page


def open_wallboard(pages: Pages, server: LiveServer) -> Page:
    wall = pages.open(server)
    sign_in(wall, "/wallboard", "supervisor@acme")
    expect(wall.locator("#conn")).to_have_attribute("data-state", "online")
    wall.evaluate("() => { window.__sameDocument = true; }")
    return wall


def test_a_supervisor_forces_an_agents_state(live_server: LiveServer, pages: Pages) -> None:
    server = live_server
    wall = open_wallboard(pages, server)
    row = wall.locator("#agents tbody tr[data-agent='1003']")
    badge = row.locator(".badge")
    force = row.locator("select.force-state")

    wall.select_option("#agents tr[data-agent='1003'] select.force-state", "ready")
    expect(badge).to_have_attribute("data-state", "ready")
    assert server.agent("1003@acme")["state"] == "ready"

    # Time in state ticks while nothing happens.
    clock = row.locator("td[data-field=in_state]")
    expect(clock).not_to_have_text("—")
    start = seconds(clock.inner_text())
    expect(clock).not_to_have_text(clock.inner_text(), timeout=5_000)
    assert seconds(clock.inner_text()) > start

    force.select_option("not_ready:lunch")
    expect(badge).to_have_attribute("data-state", "not_ready")
    expect(row.locator("td[data-field=reason]")).to_have_text("Lunch")
    rest = server.agent("1003@acme")
    assert (rest["state"], rest["reason"]) == ("not_ready", "lunch")
    assert seconds(clock.inner_text()) <= 2, "the time in state did not restart"
    expect(force).to_have_value("")  # the menu is ready for the next change

    force.select_option("sign_out")
    expect(badge).to_have_attribute("data-state", "signed_out")
    assert server.agent("1003@acme")["state"] == "signed_out"
    expect(wall.locator("#board-error")).to_have_text("")
    assert wall.evaluate("() => window.__sameDocument") is True


def test_breached_deadline_alarm_and_escalation_inbox(
    live_server: LiveServer, pages: Pages
) -> None:
    server = live_server
    admin = server.headers("admin")
    tenants = httpx.get(f"{server.base}/api/v1/tenants", headers=admin).json()["items"]
    acme = next(t["id"] for t in tenants if t["slug"] == "acme")
    r = httpx.post(
        f"{server.base}/api/v1/users",
        headers=admin,
        json={"tenant_id": acme, "username": "chief", "role": "tenant_admin", "password": PW},
    )
    assert r.status_code in (201, 409), r.text
    # A first response within 3 seconds for this test's category; once breached, the
    # supervisor is told at once.
    r = httpx.put(
        f"{server.base}/api/v1/case-settings",
        headers=server.headers("chief@acme"),
        json={
            "sla_policies": [
                {"id": "wallboard", "category": "wallboard-test", "first_response_minutes": 0.05}
            ],
            "escalations": [
                {
                    "id": "wallboard-chain",
                    "trigger": "first_response_breached",
                    "categories": ["wallboard-test"],
                    "steps": [{"after_minutes": 0, "notify": "supervisor"}],
                }
            ],
        },
    )
    assert r.status_code == 200, r.text

    wall = open_wallboard(pages, server)
    expect(wall.locator("#alarms-empty")).to_be_visible()
    sup = server.headers("supervisor@acme")
    r = httpx.post(
        f"{server.base}/api/v1/cases",
        headers=sup,
        json={
            "subject": "Router keeps rebooting",
            "category": "wallboard-test",
            "assignee": "1002",
        },
    )
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    created = time.monotonic()

    alarm = wall.locator(f"#alarms li[data-kind=breach][data-case='{number}']")
    expect(alarm).to_be_visible(timeout=WAIT)
    assert time.monotonic() - created >= 2.5, "an alarm before the deadline"
    expect(alarm).to_contain_text(f"Case #{number}: first response deadline breached")
    expect(alarm).to_contain_text("1002")
    expect(wall.locator("#alarm-count")).to_have_attribute("data-count", "1")
    expect(wall.locator("#alarms-empty")).to_be_hidden()

    entry = wall.locator(f"#escalations li[data-case='{number}']")
    expect(entry).to_be_visible(timeout=WAIT)
    inbox = httpx.get(f"{server.base}/api/v1/case-escalations", headers=sup).json()
    (listed,) = [e for e in inbox if e["case_number"] == number]
    assert (listed["trigger"], listed["level"], listed["notify"]) == (
        "first_response_breached",
        1,
        "supervisor",
    )
    expect(entry).to_contain_text("Router keeps rebooting")
    expect(entry).to_contain_text("Level 1 · notify supervisor · first response breached")
    expect(wall.locator("#escalations li")).to_have_count(len(inbox))
    assert wall.evaluate("() => window.__sameDocument") is True

    # A supervisor dismisses the alarm; the inbox keeps the escalation.
    alarm.locator("button.dismiss").click()
    expect(alarm).to_have_count(0)
    expect(wall.locator("#alarms-empty")).to_be_visible()
    expect(entry).to_be_visible()

    wall.select_option("#lang", "zh-CN")
    expect(wall.locator("#escalations-empty")).to_be_hidden()
    expect(entry).to_contain_text("第 1 级")
