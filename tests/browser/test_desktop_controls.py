"""The agent desktop's call card, wrap-up, cases, customer timeline and shortcuts, in
Debian's Chromium against a real `telportal demo` (issue #8).

What needs a live SIP call (a call to hold, transfer, record...) cannot happen here:
those tests feed the page the events the server would send through
`window.telportalDesktop.handleEvent`, then check the request each control sends
(`page.expect_request`) and that the page shows the real server's answer. Everything
else is real: cases, notes, customers, call records, interactions, SLA timers and
escalations all go through the running server and are read back through its API.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.conftest import SETUP_HINT, VIEWPORT, Server
from tests.e2e.test_server import PW

try:
    from playwright.sync_api import expect
except ImportError:  # a failure naming the fix, never a skip
    pytest.fail(f"the browser tests need the `playwright` Python package: {SETUP_HINT}")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

AGENT = "1003@acme"
ZONE = "Asia/Shanghai"  # the browser's zone in these tests: never the server's (UTC)


@pytest.fixture
def zoned(browser: Browser, server: Server) -> Iterator[Page]:
    """A page whose browser runs in Shanghai time, failing on any page error."""
    context = browser.new_context(
        viewport=VIEWPORT, locale="en-US", timezone_id=ZONE, base_url=server.base
    )
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # A refused control is an HTTP error the page shows; the browser logs those too.
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    yield pg
    context.close()
    assert not errors, f"the page reported errors: {errors}"


@pytest.fixture(autouse=True)
def agent_signed_out_after(server: Server) -> Iterator[None]:
    """Leave agent 1003 signed out, as the other browser tests expect to find them."""
    yield
    h = server.headers(AGENT)
    httpx.post(f"{server.base}/api/v1/agents/me/sign-out", headers=h)


def sign_in(page: Page, username: str = AGENT) -> dict[str, Any]:
    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#signin-form input[name=username]", username)
    page.fill("#signin-form input[name=password]", PW)
    page.click("#signin-form button[type=submit]")
    expect(page.locator("#conn")).to_have_attribute("data-state", "online")
    expect(page.locator("#state")).not_to_have_attribute("data-state", "unknown")
    me: dict[str, Any] = page.evaluate("() => window.telportalDesktop.agent")
    return me


def feed(page: Page, event: dict[str, Any]) -> None:
    page.evaluate("(e) => window.telportalDesktop.handleEvent(e)", event)


def api_path(call_id: str, action: str) -> str:
    return f"/api/v1/live-calls/{quote(call_id, safe='')}/{action}"


def pop_event(me: dict[str, Any], call_id: str, caller: str, customer: Any = None) -> Any:
    """A screen pop exactly as the server encodes it (types.ScreenPop + the wire form)."""
    from telportal.events.types import ScreenPop
    from telportal.events.wire import event_json

    pop = ScreenPop(
        tenant_id=None,
        agent_id=me["agent_id"],
        call_id=call_id,
        queue="support",
        caller=caller,
        called="4008001000",
        service_id=None,
        customer=customer,
        importance=int(customer.get("importance", 0)) if customer else 0,
        ivr_path=["welcome", "menu", "support"],
        ivr_variables={},
        recent_calls=[],
        waited_seconds=4.0,
        decided_at=datetime.now(UTC),
    )
    return json.loads(json.dumps(event_json(pop), default=str))


def call_event(me: dict[str, Any], call_id: str, state: str, detail: str | None = None) -> Any:
    from telportal.events.types import CallState
    from telportal.events.wire import event_json

    event = CallState(
        tenant_id=None,
        call_id=call_id,
        state=state,
        agent_id=me["agent_id"],
        agent_extension=me["extension"],
        caller="13900139000",
        queue="support",
        detail=detail,
    )
    return json.loads(json.dumps(event_json(event), default=str))


def agent_event(me: dict[str, Any], state: str) -> dict[str, Any]:
    return {"type": "agent", "agent_id": me["agent_id"], "state": state, "reason": None}


def refused_as_the_server_said(page: Page, request: Request, where: str = "#call-error") -> None:
    response = request.response()
    assert response is not None and response.status in (404, 409, 422), response
    message = response.json()["message"]
    expect(page.locator(where)).to_have_text(f"Refused: {message}")


def _run(coro: Any) -> Any:
    # Playwright's sync API runs an event loop in this thread: the store code gets its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _a_finished_call(
    server: Server, tenant_id: str, call_id: str, caller: str, agent: dict[str, Any]
) -> None:
    """A whole call as the SIP side records it: arrived, queued, put through, ended."""
    from telportal.calls_store import CallRecords
    from telportal.clock import SystemClock
    from telportal.events.bus import InProcessBus
    from telportal.store.database import Database

    db = Database(server.db_url, SystemClock(), InProcessBus())
    try:
        records = CallRecords(db)
        await records.start(
            tenant_id, call_id, site="local", direction="inbound", caller=caller,
            called="4008001000",
        )  # fmt: skip
        await records.queued(tenant_id, call_id, "support")
        await records.connected(
            tenant_id, call_id, agent_id=agent["agent_id"], extension=agent["extension"]
        )
        await records.finish(tenant_id, call_id, end_reason="caller hung up", outcome="answered")
    finally:
        await db.dispose()


def boxes(page: Page) -> list[Any]:
    return [
        page.locator(sel).bounding_box()
        for sel in ("#call", "#pop", ".side-card", ".state-card", "#my-cases")
    ]


# --- call controls ----------------------------------------------------------------------


def test_call_controls_send_their_requests_and_show_the_answers(
    zoned: Page, server: Server, screenshots: Path
) -> None:
    page = zoned
    me = sign_in(page)
    before = boxes(page)
    call_id = f"{uuid.uuid4().hex}@desk-test"
    expect(page.locator("#call-state")).to_have_attribute("data-state", "idle")
    for button in ("#btn-answer", "#btn-hangup", "#btn-hold", "#btn-transfer"):
        expect(page.locator(button)).to_be_disabled()

    # Offered, then ringing: Answer is the one control that works.
    feed(page, pop_event(me, call_id, "13900139000"))
    feed(page, agent_event(me, "ringing"))
    expect(page.locator("#call-state")).to_have_text("Ringing")
    expect(page.locator("#call-caller")).to_have_text("13900139000")
    expect(page.locator("#btn-answer")).to_be_enabled()
    expect(page.locator("#btn-hangup")).to_be_disabled()
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith("/api/v1/agents/me/answer")
    ) as answered:
        page.click("#btn-answer")
    # Nothing really rings for 1003: the server refuses, and the page says why.
    refused_as_the_server_said(page, answered.value)
    assert "ringing" in answered.value.response().json()["message"]  # type: ignore[union-attr]

    # Alt+A answers too, but not while the agent types in a field.
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/answer") else None)
    page.focus("#xfer-target")
    page.keyboard.press("Alt+A")
    page.wait_for_timeout(400)
    assert sent == []
    page.focus("#btn-answer")
    page.evaluate("() => document.activeElement.blur()")
    with page.expect_request(lambda r: r.url.endswith("/api/v1/agents/me/answer")):
        page.keyboard.press("Alt+A")

    # Talking: the timer runs and every control is live.
    feed(page, agent_event(me, "talking"))
    feed(page, call_event(me, call_id, "talking"))
    expect(page.locator("#call-state")).to_have_text("Talking")
    expect(page.locator("#btn-answer")).to_be_disabled()
    expect(page.locator("#call-timer")).to_have_attribute("data-running", "true")
    expect(page.locator("#call-timer")).to_have_text(re.compile(r"^0:0[1-9]$"), timeout=4000)

    def control(selector: str, action: str, body: Any = None) -> None:
        with page.expect_request(
            lambda r: r.method == "POST" and r.url.endswith(api_path(call_id, action))
        ) as info:
            page.click(selector)
        request = info.value
        assert request.post_data_json == body, (action, request.post_data)
        # No SIP call behind the page: the real server answers 404 or 422, shown in place.
        refused_as_the_server_said(page, request)

    control("#btn-hold", "hold")
    feed(page, call_event(me, call_id, "held"))
    expect(page.locator("#call-state")).to_have_text("On hold")
    expect(page.locator("#btn-hold")).to_have_text("Resume")
    control("#btn-hold", "unhold")
    feed(page, call_event(me, call_id, "talking"))
    expect(page.locator("#btn-hold")).to_have_text("Hold")

    # The caller's phone holds the call: the card says so and the agent's controls stay.
    feed(page, call_event(me, call_id, "caller_held"))
    expect(page.locator("#call-detail")).to_have_text("The caller has put the call on hold")
    expect(page.locator("#call-state")).to_have_text("Talking")
    expect(page.locator("#btn-hold")).to_be_enabled()
    feed(page, call_event(me, call_id, "monitor_listen", "1009"))  # other news keeps it
    expect(page.locator("#call-detail")).to_have_text("The caller has put the call on hold")
    feed(page, call_event(me, call_id, "caller_resumed"))
    expect(page.locator("#call-detail")).not_to_have_text("The caller has put the call on hold")

    control("#dtmf [data-digit='5']", "dtmf", {"digits": "5"})
    control("#dtmf [data-digit='#']", "dtmf", {"digits": "#"})
    feed(page, call_event(me, call_id, "dtmf", "5#"))
    expect(page.locator("#dtmf-sent")).to_have_text("Sent: 5#")

    # A blind transfer with nothing typed asks for a target and sends nothing.
    page.click("#btn-transfer")
    expect(page.locator("#call-error")).to_have_text("Enter who to transfer to first.")
    page.fill("#xfer-target", "1002")
    control("#btn-transfer", "transfer", {"to": "1002"})
    page.select_option("#xfer-kind", "queue")
    expect(page.locator("#xfer-target")).to_have_attribute("placeholder", "Queue name")
    expect(page.locator("#btn-consult")).to_be_disabled()
    expect(page.locator("#btn-conference")).to_be_disabled()
    page.fill("#xfer-target", "sales")
    control("#btn-transfer", "transfer", {"queue": "sales"})
    page.select_option("#xfer-kind", "number")
    page.fill("#xfer-target", "13800138000")
    control("#btn-transfer", "transfer", {"number": "13800138000"})
    page.select_option("#xfer-kind", "agent")
    page.fill("#xfer-target", "1001")
    control("#btn-conference", "conference", {"to": "1001"})
    control("#btn-consult", "consult", {"to": "1001"})

    # The server's events drive the consultation; then complete or cancel it.
    expect(page.locator("#btn-complete")).to_be_disabled()
    feed(page, call_event(me, call_id, "held"))
    feed(page, call_event(me, call_id, "consulting", "1001"))
    expect(page.locator("#call-state")).to_have_text("Consulting")
    expect(page.locator("#call-detail")).to_have_text("Consulting 1001; the caller is on hold")
    expect(page.locator("#btn-transfer")).to_be_disabled()
    expect(page.locator("#btn-hold")).to_be_disabled()
    control("#btn-complete", "complete-transfer")
    control("#btn-cancel-consult", "cancel-consult")
    feed(page, call_event(me, call_id, "consult_cancelled", "1001"))
    feed(page, call_event(me, call_id, "talking"))
    expect(page.locator("#call-state")).to_have_text("Talking")
    expect(page.locator("#btn-complete")).to_be_disabled()
    feed(page, call_event(me, call_id, "conference", "1001"))
    expect(page.locator("#call-detail")).to_have_text("Conference with 1001")

    control("#btn-recording", "recording/pause")
    feed(page, call_event(me, call_id, "recording_paused"))
    expect(page.locator("#rec-state")).to_have_text("Recording paused")
    control("#btn-recording", "recording/resume")
    feed(page, call_event(me, call_id, "recording_resumed"))
    expect(page.locator("#rec-state")).to_have_text("Recording")

    # Nothing moved while the call came and changed.
    assert boxes(page) == before, "a region moved or resized when events arrived"
    page.screenshot(path=str(screenshots / "desktop-call-en.png"))

    # Alt+H hangs up; the `ended` event closes the call.
    with page.expect_request(lambda r: r.url.endswith(api_path(call_id, "hangup"))):
        page.keyboard.press("Alt+H")
    feed(page, call_event(me, call_id, "ended"))
    feed(page, agent_event(me, "not_ready"))
    expect(page.locator("#call-state")).to_have_attribute("data-state", "idle")
    expect(page.locator("#btn-hangup")).to_be_disabled()
    expect(page.locator("#call-timer")).to_have_text("0:00")

    # A blind transfer that went through: the call is no longer this agent's.
    other = f"{uuid.uuid4().hex}@desk-test"
    feed(page, agent_event(me, "talking"))
    feed(page, call_event(me, other, "talking"))
    expect(page.locator("#call-state")).to_have_text("Talking")
    feed(page, call_event(me, other, "transferring", "1002"))
    expect(page.locator("#call-state")).to_have_text("Transferring")
    moved = call_event(me, other, "transferred", "1002")
    moved["agent_id"] = str(uuid.uuid4())
    feed(page, moved)
    feed(page, agent_event(me, "not_ready"))
    expect(page.locator("#call-state")).to_have_attribute("data-state", "idle")

    page.select_option("#lang", "zh-CN")
    expect(page.locator("#call-heading")).to_have_text("当前通话")
    expect(page.locator("#btn-answer")).to_have_text("接听")
    expect(page.locator("#btn-answer")).to_have_attribute("title", "接听\uff08Alt+A\uff09")


def test_the_call_card_follows_a_call_already_connected_after_a_reload(
    zoned: Page, server: Server
) -> None:
    """After a reload the call is read from `GET /live-calls`; the server has none for
    1003, so a call shown only from events is dropped again at the next resync."""
    page = zoned
    me = sign_in(page)
    call_id = f"{uuid.uuid4().hex}@desk-test"
    feed(page, agent_event(me, "talking"))
    feed(page, call_event(me, call_id, "talking"))
    expect(page.locator("#call-state")).to_have_text("Talking")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/live-calls")) as listed:
        page.evaluate("() => window.telportalDesktop.resync()")
    assert listed.value.status == 200 and listed.value.json() == []
    expect(page.locator("#call-state")).to_have_attribute("data-state", "idle")


# --- wrap-up ------------------------------------------------------------------------------


def _into_wrap_up(page: Page, me: dict[str, Any], call_id: str, caller: str) -> None:
    feed(page, pop_event(me, call_id, caller))
    feed(page, agent_event(me, "ringing"))
    feed(page, agent_event(me, "talking"))
    feed(page, call_event(me, call_id, "talking"))
    feed(page, call_event(me, call_id, "ended"))
    feed(page, agent_event(me, "wrap_up"))


def test_wrap_up_counts_down_and_ends(zoned: Page, server: Server, screenshots: Path) -> None:
    page = zoned
    h = server.headers(AGENT)
    r = httpx.post(f"{server.base}/api/v1/agents/me/sign-in", headers=h)
    assert r.status_code == 200, r.text
    me = sign_in(page)
    queues = httpx.get(f"{server.base}/api/v1/queues", headers=h).json()["items"]
    wrap_seconds = next(q["wrap_up_seconds"] for q in queues if q["name"] == "support")
    assert wrap_seconds >= 5

    call_id = f"{uuid.uuid4().hex}@desk-test"
    _into_wrap_up(page, me, call_id, "13900139000")
    expect(page.locator("#wrap-pane")).to_be_visible()
    expect(page.locator("#call-pane")).to_be_hidden()
    expect(page.locator("#wrap-call")).to_have_text("Call from 13900139000 (support)")
    countdown = page.locator("#wrap-countdown")
    expect(countdown).to_have_text(re.compile(r"^\d+:\d\d left$"))
    first = countdown.inner_text()
    left = int(first.split()[0].split(":")[1])
    assert wrap_seconds - 2 <= left <= wrap_seconds, first
    expect(countdown).not_to_have_text(first, timeout=3000)  # it counts down
    assert page.locator("#wrap-code option").evaluate_all("os => os.map(o => o.value)") == [
        "resolved", "information_given", "callback_needed", "complaint", "wrong_number", "other",
    ]  # fmt: skip
    expect(page.locator("#wrap-code option[value=callback_needed]")).to_have_text("Callback needed")
    page.select_option("#wrap-code", "callback_needed")
    page.fill("#wrap-notes", "Customer wants a call back tomorrow morning.")
    page.screenshot(path=str(screenshots / "desktop-wrap-up-en.png"))

    # The real agent is not in wrap-up: the server refuses to end it and says so.
    with page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith("/api/v1/agents/me/end-wrap-up")
    ) as ended:
        page.click("#btn-wrap-end")
    response = ended.value.response()
    assert response is not None and response.status == 409
    expect(page.locator("#wrap-result")).to_have_text(
        f"Could not end the wrap-up: {response.json()['message']}"
    )
    # The server's `agent` event ends the wrap-up on the page.
    feed(page, agent_event(me, "ready"))
    expect(page.locator("#call-pane")).to_be_visible()
    expect(page.locator("#wrap-pane")).to_be_hidden()

    page.select_option("#lang", "zh-CN")
    _into_wrap_up(page, me, f"{uuid.uuid4().hex}@desk-test", "13900139000")
    expect(page.locator("#wrap-code option[value=wrong_number]")).to_have_text("打错电话")
    expect(page.locator("#wrap-countdown")).to_have_text(re.compile(r"^剩余 \d+:\d\d$"))
    page.screenshot(path=str(screenshots / "desktop-wrap-up-zh-CN.png"))


def test_wrap_up_is_saved_on_the_call(zoned: Page, server: Server) -> None:
    """`PUT /calls/{call_id}/wrap-up` (the SIP Call-ID) with the code and the notes.
    Fails with 404 until the server has that route."""
    page = zoned
    token = server.token(AGENT)
    me = sign_in(page)
    call_id = f"{uuid.uuid4().hex}@desk-test"
    _run(_a_finished_call(server, token["tenant_id"], call_id, "13900139001", me))
    _into_wrap_up(page, me, call_id, "13900139001")
    page.select_option("#wrap-code", "information_given")
    page.fill("#wrap-notes", "Opening hours given.")
    with page.expect_request(lambda r: r.method == "PUT" and "/wrap-up" in r.url) as saved:
        page.click("#btn-wrap-save")
    request = saved.value
    assert request.url.endswith(f"/api/v1/calls/{quote(call_id, safe='')}/wrap-up")
    assert request.post_data_json == {"code": "information_given", "notes": "Opening hours given."}
    response = request.response()
    assert response is not None
    assert response.status in (200, 204), f"{response.status}: {response.text()}"
    expect(page.locator("#wrap-result")).to_have_text("Wrap-up saved")


# --- cases from the call, customer search and timeline -----------------------------------


def test_case_from_the_call_create_or_update_and_the_timeline(
    zoned: Page, server: Server, screenshots: Path
) -> None:
    page = zoned
    token = server.token(AGENT)
    h = {"Authorization": f"Bearer {token['access_token']}"}
    base = f"{server.base}/api/v1"
    caller = "13700137" + str(uuid.uuid4().int)[:3]
    customer = httpx.post(
        f"{base}/customers",
        headers=h,
        json={
            "name": "Zhang Min",
            "importance": 3,
            "identities": [
                {"kind": "phone", "value": caller},
                {"kind": "email", "value": f"zm{caller}@example.com"},
            ],
        },
    )
    assert customer.status_code == 201, customer.text
    cust = customer.json()
    earlier = httpx.post(
        f"{base}/cases",
        headers=h,
        json={"subject": "Router keeps dropping", "customer_id": cust["id"]},
    )
    assert earlier.status_code == 201, earlier.text
    old_case = earlier.json()

    me = sign_in(page)
    call_id = f"{uuid.uuid4().hex}@desk-test"
    _run(_a_finished_call(server, token["tenant_id"], call_id, caller, me))
    card = {"id": cust["id"], "name": "Zhang Min", "importance": 3, "tags": []}
    feed(page, pop_event(me, call_id, caller, card))
    expect(page.locator("#pop-customer")).to_have_text("Zhang Min")

    # The caller's open case is offered; a note goes to it, naming the call.
    expect(page.locator("#case-open option")).to_have_count(1)
    expect(page.locator("#case-open")).to_have_value(old_case["id"])
    expect(page.locator("#case-open option")).to_have_text(
        f"#{old_case['number']} Router keeps dropping (New)"
    )
    expect(page.locator("#case-note")).to_have_value(
        f"Call from {caller} (support), call {call_id}: "
    )
    page.fill("#case-note", f"Called again ({call_id}): still dropping every evening.")
    page.click("#btn-case-note")
    expect(page.locator("#case-note-result")).to_have_text(
        f"Note added to case #{old_case['number']}"
    )
    history = httpx.get(f"{base}/cases/{old_case['id']}/history", headers=h).json()
    assert history[-1]["event"] == "note"
    assert history[-1]["details"]["text"] == (
        f"Called again ({call_id}): still dropping every evening."
    )
    record = httpx.get(f"{base}/calls", headers=h, params={"caller": caller}).json()["items"][0]
    assert history[-1]["details"]["call_record_id"] == record["id"]  # the call is linked

    # Or a new case: linked to the call and, through the caller's number, the customer.
    page.click("#btn-case")
    expect(page.locator("#case-result")).to_have_text(re.compile(r"^Case #\d+ created$"))
    number = int(re.findall(r"\d+", page.locator("#case-result").inner_text())[0])
    found = httpx.get(f"{base}/cases", headers=h, params={"customer_id": cust["id"]}).json()
    new_case = next(c for c in found["items"] if c["number"] == number)
    record = httpx.get(f"{base}/calls", headers=h, params={"agent_id": me["agent_id"]}).json()
    linked = next(c for c in record["items"] if c["call_id"] == call_id)
    assert new_case["call_record_id"] == linked["id"]
    assert new_case["customer_id"] == cust["id"]
    expect(page.locator("#case-open option")).to_have_count(2)  # now one of the open cases

    # The pop's "Timeline": the call, both cases, and what other systems push, live.
    page.click("#btn-pop-timeline")
    expect(page.locator("#panel-customers")).to_be_visible()
    expect(page.locator("#cust-name")).to_have_text("Zhang Min")
    timeline = page.locator("#timeline")
    expect(timeline.locator("li[data-kind=call]")).to_have_count(1)
    expect(timeline.locator(f"li[data-ref='{linked['id']}']")).to_contain_text(caller)
    expect(timeline.locator(f"li[data-ref='{new_case['id']}']")).to_contain_text(
        f"case {number}: Call from {caller} (support)"
    )
    expect(timeline.locator(f"li[data-ref='{old_case['id']}']")).to_contain_text(
        "Router keeps dropping"
    )
    at = datetime(2026, 3, 1, 1, 2, tzinfo=UTC)
    pushed = httpx.post(
        f"{base}/customers/{cust['id']}/interactions",
        headers=h,
        json={
            "kind": "purchase",
            "channel": "web",
            "summary": "Bought a mesh router",
            "at": at.isoformat(),
        },
    )
    assert pushed.status_code == 201, pushed.text
    entry = timeline.locator(f"li[data-ref='{pushed.json()['ref']}']")
    expect(entry).to_contain_text("Bought a mesh router")
    expect(entry.locator(".kind")).to_have_text("Purchase")
    # In the browser's zone (Shanghai, UTC+8), not the server's.
    local = at.astimezone(ZoneInfo(ZONE))
    expect(entry.locator(".when")).to_have_text(f"Mar {local.day}, {local.year}, {local:%H:%M}")
    assert f"{local:%H:%M}" == "09:02"
    page.screenshot(path=str(screenshots / "desktop-timeline-en.png"))


def test_customer_search_by_phone_email_and_ids(zoned: Page, server: Server) -> None:
    page = zoned
    h = server.headers(AGENT)
    base = f"{server.base}/api/v1"
    digits = str(uuid.uuid4().int)[:4]
    created = httpx.post(
        f"{base}/customers",
        headers=h,
        json={
            "name": "Wang Fang",
            "importance": 4,
            "external_id": f"ERP-{digits}",
            "identities": [
                {"kind": "phone", "value": f"1360013{digits}"},
                {"kind": "email", "value": f"wf{digits}@example.com"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    cust = created.json()
    sign_in(page)
    page.click("#tab-customers")
    expect(page.locator("#cust-hint")).to_be_visible()

    def search(kind: str, value: str) -> None:
        page.select_option("#cust-kind", kind)
        page.fill("#cust-query", value)
        with page.expect_response(lambda r: "/api/v1/customers/" in r.url):
            page.click("#btn-cust-search")

    # A number as people type it: the server normalises it.
    search("phone", f"+86 136-0013-{digits}")
    expect(page.locator("#cust-name")).to_have_text("Wang Fang")
    expect(page.locator("#cust-body")).to_have_attribute("data-customer-id", cust["id"])
    expect(page.locator("#cust-stars")).to_have_text("★★★★☆")
    expect(page.locator("#timeline li")).to_have_count(1)
    expect(page.locator("#timeline li")).to_have_text("Nothing recorded yet")
    search("email", f"WF{digits}@example.com")
    expect(page.locator("#cust-body")).to_have_attribute("data-customer-id", cust["id"])
    search("external_id", f"ERP-{digits}")
    expect(page.locator("#cust-body")).to_have_attribute("data-customer-id", cust["id"])
    search("id", cust["id"])
    expect(page.locator("#cust-ids")).to_contain_text(f"wf{digits}@example.com")
    search("phone", "19999999999")
    expect(page.locator("#cust-error")).to_have_text("No customer found")
    expect(page.locator("#cust-body")).to_be_hidden()

    # By name: one match opens at once; several are listed to pick from.
    made = {}
    for suffix in ("A", "B"):
        r = httpx.post(f"{base}/customers", headers=h, json={"name": f"Zhou Xun {digits} {suffix}"})
        assert r.status_code == 201, r.text
        made[suffix] = r.json()["id"]
    search("name", f"zhou xun {digits} a")
    expect(page.locator("#cust-body")).to_have_attribute("data-customer-id", made["A"])
    search("name", f"Zhou Xun {digits}")
    expect(page.locator("#cust-body")).to_be_hidden()
    matches = page.locator("#cust-matches button")
    expect(matches).to_have_count(2)
    matches.nth(1).click()
    expect(page.locator("#cust-body")).to_have_attribute("data-customer-id", made["B"])
    expect(page.locator("#cust-matches")).to_be_hidden()


# --- my cases: deadlines and alarms ---------------------------------------------------------


def _tenant_admin(server: Server, tenant_id: str) -> dict[str, str]:
    admin = server.headers("admin")
    name = f"deskadmin{uuid.uuid4().hex[:6]}"
    r = httpx.post(
        f"{server.base}/api/v1/users",
        headers=admin,
        json={"tenant_id": tenant_id, "username": name, "role": "tenant_admin", "password": PW},
    )
    assert r.status_code == 201, r.text
    return server.headers(f"{name}@acme")


def test_my_cases_with_live_deadlines_and_real_sla_alarms(
    zoned: Page, server: Server, screenshots: Path
) -> None:
    """The SLA timers and the escalation are the server's own (a few seconds long)."""
    page = zoned
    token = server.token(AGENT)
    h = {"Authorization": f"Bearer {token['access_token']}"}
    base = f"{server.base}/api/v1"
    chief = _tenant_admin(server, token["tenant_id"])
    fast, slow = f"desk-fast-{uuid.uuid4().hex[:6]}", f"desk-slow-{uuid.uuid4().hex[:6]}"
    settings = {
        "sla_policies": [
            # first response due 9 s after opening; warned at half of it
            {"id": "fast", "category": fast, "first_response_minutes": 0.15, "warning_share": 0.5},
            {"id": "slow", "category": slow, "first_response_minutes": 150},
        ],
        "escalations": [
            {
                "id": "desk",
                "trigger": "untouched",
                "categories": [fast],
                "steps": [{"after_minutes": 0.1, "notify": "1003"}],
            }
        ],
    }
    r = httpx.put(f"{base}/case-settings", headers=chief, json=settings)
    assert r.status_code == 200, r.text
    try:
        sign_in(page)
        expect(page.locator("#tab-cases")).to_have_attribute("aria-selected", "true")
        before = boxes(page)

        # Cases assigned to the agent appear by themselves (the `data` events).
        later = httpx.post(
            f"{base}/cases",
            headers=h,
            json={"subject": "Invoice copy", "category": slow, "assignee": "1003"},
        ).json()
        soon = httpx.post(
            f"{base}/cases",
            headers=h,
            json={"subject": "Line is dead", "category": fast, "assignee": "1003"},
        ).json()
        elsewhere = httpx.post(
            f"{base}/cases",
            headers=h,
            json={"subject": "Not mine", "category": slow, "assignee": "1001"},
        ).json()
        item_later = page.locator(f"#my-cases li[data-case-id='{later['id']}']")
        item_soon = page.locator(f"#my-cases li[data-case-id='{soon['id']}']")
        expect(item_later).to_be_visible()
        expect(item_soon).to_be_visible()
        expect(page.locator(f"#my-cases li[data-case-id='{elsewhere['id']}']")).to_have_count(0)
        # The nearest deadline first.
        ids = page.locator("#my-cases li").evaluate_all("ls => ls.map(l => l.dataset.caseId)")
        assert ids.index(soon["id"]) < ids.index(later["id"])

        # Due times in the browser's zone, with a live "in ..." that counts down.
        due = datetime.fromisoformat(later["sla"][0]["due_at"].replace("Z", "+00:00"))
        local = due.astimezone(ZoneInfo(ZONE))
        expect(item_later.locator(".case-due")).to_contain_text(
            f"First response due {local:%b} {local.day}, {local.year}, {local:%H:%M}"
            " · in 2 h 29 min"
        )
        expect(item_later).to_have_attribute("data-due", "ok")
        expect(item_soon.locator(".case-due")).to_contain_text(re.compile(r"· in \d+ s$"))

        # The server's timers fire: warning, escalation, breach. Each is a notice, and
        # the case is highlighted and shown overdue.
        notices = page.locator("#notices .notice")
        expect(
            notices.filter(has_text=f"Case #{soon['number']}: First response is due soon")
        ).to_have_count(1, timeout=20_000)
        expect(
            notices.filter(has_text=f"Case #{soon['number']} was escalated (step 1)")
        ).to_have_count(1, timeout=20_000)
        expect(
            notices.filter(has_text=f"Case #{soon['number']}: First response is overdue")
        ).to_have_count(1, timeout=20_000)
        expect(item_soon).to_have_attribute("data-alert", re.compile("breach|escalated"))
        expect(item_soon).to_have_attribute("data-due", "overdue")
        expect(item_soon.locator(".case-due")).to_have_text(re.compile("(late|Deadline missed)"))
        expect(page.locator("#cases-count")).to_have_attribute("data-alert", "true")
        assert boxes(page) == before, "a region moved when the alarms came"
        page.screenshot(path=str(screenshots / "desktop-cases-en.png"))

        # Looking at the case acknowledges the highlight.
        item_soon.click()
        expect(page.locator(f"#my-cases li[data-case-id='{soon['id']}']")).not_to_have_attribute(
            "data-alert", re.compile(".")
        )

        page.select_option("#lang", "zh-CN")
        page.click("#tab-cases")
        expect(page.locator("#tab-cases")).to_contain_text("我的工单")
        expect(item_later.locator(".case-due")).to_contain_text("首次响应截止")
        expect(item_later.locator(".case-state")).to_have_text("已分配")
        page.screenshot(path=str(screenshots / "desktop-cases-zh-CN.png"))

        # A resolved case leaves the list.
        r = httpx.post(
            f"{base}/cases/{later['id']}/resolve", headers=h, json={"resolution": "sent"}
        )
        assert r.status_code == 200, r.text
        expect(item_later).to_have_count(0)
    finally:
        r = httpx.put(f"{base}/case-settings", headers=chief, json={})
        assert r.status_code == 200, r.text


# --- shortcuts, help, layout -----------------------------------------------------------------


def test_shortcuts_help_and_the_1366_layout(zoned: Page, server: Server, screenshots: Path) -> None:
    page = zoned
    base = f"{server.base}/api/v1"
    me = sign_in(page)

    def rest_state() -> str:
        state: str = httpx.get(f"{base}/agents/me", headers=server.headers(AGENT)).json()["state"]
        return state

    # Alt+R: ready (a signed-out agent is signed in first), for real.
    page.keyboard.press("Alt+R")
    expect(page.locator("#state")).to_have_attribute("data-state", "ready")
    assert rest_state() == "ready"
    # Not while typing: Alt+N in the search field leaves the agent ready.
    page.click("#tab-customers")
    page.focus("#cust-query")
    page.keyboard.press("Alt+N")
    page.wait_for_timeout(400)
    assert rest_state() == "ready"
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press("Alt+N")
    expect(page.locator("#state")).to_have_attribute("data-state", "not_ready")
    assert rest_state() == "not_ready"
    page.keyboard.press("Alt+C")
    expect(page.locator("#panel-cases")).to_be_visible()
    page.keyboard.press("Alt+F")
    expect(page.locator("#cust-query")).to_be_focused()
    page.evaluate("() => document.activeElement.blur()")

    # Tooltips name the shortcuts; the help lists them.
    expect(page.locator("#btn-answer")).to_have_attribute("title", "Answer (Alt+A)")
    expect(page.locator("#btn-hangup")).to_have_attribute("title", "Hang up (Alt+H)")
    expect(page.locator("#btn-ready")).to_have_attribute("title", "Ready (Alt+R)")
    page.keyboard.press("Alt+Slash")
    expect(page.locator("#help")).to_be_visible()
    for keys in ("Alt+A", "Alt+H", "Alt+R", "Alt+O", "Alt+E"):
        expect(page.locator("#help-list dt", has_text=keys)).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()

    # 1366x768: no horizontal scroll, with a full call and pop shown, in both languages.
    call_id = f"{uuid.uuid4().hex}@desk-test"
    feed(
        page,
        pop_event(me, call_id, "13900139000", {"id": "x", "name": "Chen Jing", "importance": 2}),
    )
    feed(page, agent_event(me, "talking"))
    feed(page, call_event(me, call_id, "talking"))
    for lang in ("en", "zh-CN"):
        page.select_option("#lang", lang)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= VIEWPORT["width"], f"{lang}: {width}px wide"
        for sel in ("#call", "#pop", ".side-card"):
            box = page.locator(sel).bounding_box()
            assert box is not None and box["x"] + box["width"] <= VIEWPORT["width"]
            assert box["y"] + box["height"] <= VIEWPORT["height"], (lang, sel, box)
        page.screenshot(path=str(screenshots / f"desktop-controls-{lang}.png"))
