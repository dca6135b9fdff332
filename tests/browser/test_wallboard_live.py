"""The wallboard on a live call: a long-wait alarm, then listen, whisper and barge.

Agent 1002 (baresip) is sent not ready from the wallboard; a SIPp customer waits in
sales past the page's long-wait threshold and the alarm shows. The supervisor sends
1002 ready from the wallboard; 1002's phone answers the call. The supervisor's own
phone (baresip, 1009) answers the monitoring call: the page sends listen, whisper and
barge, and the API shows the supervisor on the call in each mode.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest

from tests.browser.conftest import SETUP_HINT, Baresip, Caller, LiveServer, Pages
from tests.browser.test_live_call import WAIT, waiting_in_sales
from tests.browser.test_wallboard_supervision import open_wallboard

try:
    from playwright.sync_api import expect
except ImportError:  # a failure naming the fix, never a skip
    pytest.fail(f"the browser tests need the `playwright` Python package: {SETUP_HINT}")

if TYPE_CHECKING:
    from collections.abc import Callable


def test_long_wait_alarm_then_listen_whisper_barge(
    live_server: LiveServer,
    pages: Pages,
    phones: Callable[..., Baresip],
    callers: Callable[[LiveServer, str, str], Caller],
) -> None:
    server = live_server
    sup = server.headers("supervisor@acme")
    phones(server, "1002")
    phones(server, "1009", "")  # the supervisor's phone
    wall = open_wallboard(pages, server)
    row = wall.locator("#agents tbody tr[data-agent='1002']")
    row.locator("select.force-state").select_option("not_ready:meeting")
    expect(row.locator(".badge")).to_have_attribute("data-state", "not_ready")
    assert server.agent("1002@acme")["state"] == "not_ready"
    wall.fill("#wait-threshold", "3")
    wall.press("#wait-threshold", "Enter")
    for other in ("1001", "1003"):  # nobody else takes the call
        assert server.agent(f"{other}@acme")["reachable"] is False

    number = "1370013" + str(secrets.randbelow(9000) + 1000)
    caller = callers(server, number, "1")
    waiting_in_sales(server, caller)
    alarm = wall.locator("#alarms li[data-kind=long_wait][data-queue=sales]")
    expect(alarm).to_be_visible(timeout=WAIT)
    expect(alarm).to_contain_text("sales: longest wait")
    expect(wall.locator("#queues tr[data-queue=sales]")).to_have_attribute("data-alarm", "true")

    row.locator("select.force-state").select_option("ready")
    expect(row.locator(".badge")).to_have_attribute("data-state", "talking", timeout=WAIT)
    expect(row.locator("td[data-field=contact]")).to_have_text(f"{number} · sales", timeout=WAIT)
    expect(alarm).to_have_count(0, timeout=WAIT)  # nobody waits any more

    url = f"/api/v1/live-calls/{quote(caller.call_id, safe='')}/monitor"
    for mode in ("listen", "whisper", "barge"):
        button = row.locator(f"button[data-mode={mode}]")
        expect(button).to_be_enabled(timeout=WAIT)
        with wall.expect_response(lambda r: r.url.endswith(url), timeout=WAIT) as answer:
            button.click()
        request = answer.value.request
        assert request.method == "POST"
        assert json.loads(request.post_data or "{}") == {"mode": mode}
        assert answer.value.status == 200, answer.value.text()
        live = httpx.get(f"{server.base}/api/v1/live-calls/{caller.call_id}", headers=sup).json()
        assert [(m["extension"], m["mode"]) for m in live["monitors"]] == [("1009", mode)]
        expect(button).to_have_attribute("aria-pressed", "true")
    expect(wall.locator("#board-error")).to_have_text("")

    r = httpx.post(f"{server.base}/api/v1/live-calls/{caller.call_id}/hangup", headers=sup)
    assert r.status_code == 204, r.text
    caller.finished()
    deadline = time.monotonic() + WAIT / 1000
    while httpx.get(f"{server.base}/api/v1/live-calls", headers=sup).json():
        assert time.monotonic() < deadline, "the call is still listed as live after it ended"
        time.sleep(0.2)
    expect(row.locator("td[data-field=contact]")).to_have_text("", timeout=WAIT)
