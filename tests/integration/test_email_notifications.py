"""Case alarms by email, end to end: a real SMTP server (aiosmtpd) on 127.0.0.1 receives
what the platform sends when SLA timers fire and escalation steps come due.

The platform is the one `build_platform` makes, with email on and pointed at the test's
server; time is the fake clock, moved by the test, and the case desk is driven by hand
as in test_cases.py. Delivery itself is real: the bus, the outbox in the store, the
sender task and aiosmtplib over TCP.
"""
# The Chinese text uses full-width punctuation on purpose.
# ruff: noqa: RUF001

import asyncio
import email
import email.policy
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from sqlalchemy import select

from telportal.api.app import create_api
from telportal.app import Platform, build_platform
from telportal.auth.credentials import Passwords
from telportal.clock import FakeClock
from telportal.config import Config, EmailSettings
from telportal.crm.cases import CaseDesk
from telportal.events import CaseAlert
from telportal.notify import DeliveryError, RecordingTransport, SmtpTransport
from telportal.store.schema import EmailOutbox
from tests.integration.api_helpers import login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@dataclass
class Received:
    sender: str
    to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # A folded header comes back with the space of its fold in front.
        return str(self.message["Subject"]).strip()

    @property
    def body(self) -> str:
        return str(self.message.get_content()).replace("\r\n", "\n")  # SMTP's line ends


@dataclass
class MailServer:
    """aiosmtpd in the test's own event loop; `stop` and `start` again on the same port."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:  # aiosmtpd's hook name
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), msg))
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="mx.test"), "127.0.0.1", self.port
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.to]


@pytest.fixture
async def mail() -> AsyncIterator[MailServer]:
    server = MailServer()
    await server.start()
    yield server
    await server.stop()


async def until(check: Callable[[], object], what: str) -> None:
    """Wait for the notifier and sender tasks (real tasks, real sockets), never for the
    fake clock. `check` may be a coroutine function."""
    try:
        async with asyncio.timeout(10):
            while True:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"waited in vain for {what}")


def email_config(db_url: str, data_dir: Path, port: int, **settings: Any) -> Config:
    return Config(
        data_dir=data_dir,
        database_url=db_url,
        email=EmailSettings(
            enabled=True, smtp_host="127.0.0.1", smtp_port=port, security="none",
            from_address="alerts@telportal.test", desktop_url="https://desk.example/",
            poll_seconds=0.05, retry_first_seconds=30, **settings,
        ),
    )  # fmt: skip


async def start(config: Config, clock: FakeClock) -> Platform:
    platform = build_platform(config, clock=clock, passwords=Passwords.fast_for_tests())
    await platform.start()
    assert platform.cases is not None
    await platform.cases.stop()  # the tests fire timers and steps at the moments they choose
    return platform


@dataclass
class Site:
    platform: Platform
    client: httpx.AsyncClient
    acme: TenantWorld
    bravo: TenantWorld

    @property
    def desk(self) -> CaseDesk:
        assert self.platform.cases is not None
        return self.platform.cases


async def outbox(platform: Platform) -> list[EmailOutbox]:
    async with platform.db.read() as session:
        rows = await session.execute(select(EmailOutbox).order_by(EmailOutbox.created_at))
        return list(rows.scalars())


async def settled(platform: Platform, count: int) -> list[EmailOutbox]:
    """The outbox once `count` rows are no longer pending (the server has the message a
    moment before the sender records it)."""

    async def done() -> bool:
        return sum(r.state != "pending" for r in await outbox(platform)) >= count

    await until(done, f"{count} emails settled")
    return await outbox(platform)


@asynccontextmanager
async def open_site(
    db_url: str, tmp_path: Path, clock: FakeClock, mail: MailServer, **settings: Any
) -> AsyncIterator[Site]:
    platform = await start(email_config(db_url, tmp_path, mail.port, **settings), clock)
    transport = httpx.ASGITransport(app=create_api(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://telportal.test") as client:
        await make_operator(platform)
        op = await login(client, "root")
        site = Site(
            platform,
            client,
            await build_tenant(client, op, "acme", "4008001000"),
            await build_tenant(client, op, "bravo", "4008002000"),
        )
        try:
            yield site
        finally:
            await platform.close()


async def set_email(site: Site, world: TenantWorld, user_key: str, address: str | None) -> None:
    r = await site.client.patch(
        f"/api/v1/users/{world.ids[user_key]}", json={"email": address}, headers=world.admin
    )
    assert r.status_code == 200, r.text


async def sla_settings(site: Site, world: TenantWorld, **extra: Any) -> None:
    r = await site.client.put(
        "/api/v1/case-settings",
        json={
            "sla_policies": [{"id": "std", "first_response_minutes": 30,
                              "resolution_minutes": 600, "warning_share": 0.5}],
            # The tenant's zone: deadlines in its emails are in Shanghai time.
            "calendar": {"timezone": "Asia/Shanghai", "weekly": {"mon-sun": "24h"}},
            **extra,
        },
        headers=world.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text


async def open_case(site: Site, world: TenantWorld, **body: Any) -> dict[str, Any]:
    r = await site.client.post(
        "/api/v1/cases",
        json={"subject": "Card blocked", "customer_id": world.ids["customers"], **body},
        headers=world.agent,
    )
    assert r.status_code == 201, r.text
    case: dict[str, Any] = r.json()
    return case


@pytest.fixture
async def site(
    db_url: str, tmp_path: Path, clock: FakeClock, mail: MailServer
) -> AsyncIterator[Site]:
    async with open_site(db_url, tmp_path, clock, mail) as s:
        yield s


async def test_warning_and_breach_reach_the_assignee_and_supervisor_of_their_tenant_only(
    site: Site, clock: FakeClock, mail: MailServer
) -> None:
    # Both tenants have users named 1001 and sup, all with addresses.
    for world in (site.acme, site.bravo):
        await set_email(site, world, "users", f"agent@{world.slug}.test")
        await set_email(site, world, "supervisor_user", f"sup@{world.slug}.test")
        await sla_settings(site, world)
    acme_case = await open_case(site, site.acme, assignee="1001")
    await open_case(site, site.bravo, assignee="1001")

    clock.advance(20 * 60)  # past half of the 30-minute first response: the warnings
    assert await site.desk.fire_due() == 2
    await until(lambda: len(mail.received) == 4, "four warning emails")
    by_to = {r.to[0]: r for r in mail.received}
    assert sorted(by_to) == [
        "agent@acme.test", "agent@bravo.test", "sup@acme.test", "sup@bravo.test",
    ]  # fmt: skip
    assert all(len(r.to) == 1 for r in mail.received)  # one person per message
    warning = by_to["agent@acme.test"]
    assert warning.sender == "alerts@telportal.test"
    assert warning.subject == (
        "[Case 1] First response due soon (50% of the time used): Card blocked"
    )
    body = warning.body
    assert body.startswith("Hello 1001,\n")
    assert "Customer:  acme customer" in body  # the acme world's customer, not bravo's
    assert "Assignee:  1001" in body
    # Opened at 2026-01-01 00:00 UTC; due 30 minutes later, shown in the tenant's zone.
    assert "Deadline:  2026-01-01 08:30 (UTC+08:00, Asia/Shanghai)" in body
    assert f"https://desk.example/?case={acme_case['id']}" in body
    assert "assigned to you" in body
    assert "as a supervisor" in by_to["sup@acme.test"].body
    assert "bravo customer" in by_to["agent@bravo.test"].body

    clock.advance(15 * 60)  # 35 minutes: breached, 5 minutes late
    assert await site.desk.fire_due() == 2
    await until(lambda: len(mail.received) == 8, "four breach emails")
    breaches = mail.to("sup@acme.test")[1:]
    assert [b.subject for b in breaches] == [
        "[Case 1] First response deadline missed: Card blocked"
    ]
    assert "The first response deadline of case 1 was missed by 5 min." in breaches[0].body

    rows = await settled(site.platform, 8)
    assert len(rows) == 8
    assert {(r.state, r.attempts, r.last_error) for r in rows} == {("sent", 1, None)}
    assert all(r.sent_at is not None for r in rows)
    assert {(r.to_address.split("@")[1], r.tenant_id) for r in rows} == {
        ("acme.test", site.acme.tenant_id), ("bravo.test", site.bravo.tenant_id),
    }  # fmt: skip

    # The same alarm told again (a replay) sends nothing more: one email per case,
    # alarm and person.
    email_parts = site.platform.email
    assert email_parts is not None
    replay = CaseAlert(
        tenant_id=site.acme.tenant_id, case_id=acme_case["id"], case_number=1, assignee="1001",
        target="first_response", level="breach", due_at=None, late_seconds=300,
    )  # fmt: skip
    assert await email_parts.notifier.notify(replay) == 0
    assert len(await outbox(site.platform)) == 8


async def test_escalations_in_chinese_reach_the_supervisor_then_the_new_owner(
    db_url: str, tmp_path: Path, clock: FakeClock, mail: MailServer
) -> None:
    zh = {"acme": "zh-CN"}
    async with open_site(db_url, tmp_path, clock, mail, tenant_languages=zh) as site:
        for world in (site.acme, site.bravo):
            await set_email(site, world, "users", f"agent@{world.slug}.test")
            await set_email(site, world, "supervisor_user", f"sup@{world.slug}.test")
        await sla_settings(
            site,
            site.acme,
            escalations=[{"id": "orphans", "trigger": "unassigned", "steps": [
                {"after_minutes": 10, "notify": "supervisor"},
                {"after_minutes": 20, "notify": "1001", "reassign": True},
            ]}],
        )  # fmt: skip
        case = await open_case(site, site.acme, subject="我的卡被冻结了")
        assert case["assignee"] == ""
        clock.advance(11 * 60)
        assert await site.desk.escalate_due() == 1
        await until(lambda: len(mail.received) == 1, "the supervisor's email")
        first = mail.received[0]
        assert first.to == ["sup@acme.test"]
        assert first.subject == "[工单 1] 已升级到第 1 级：我的卡被冻结了"
        assert first.message["Content-Language"] == "zh-CN"
        assert "工单 1 已升级到第 1 级（升级规则 orphans，原因：无人受理）。" in first.body
        assert "处理人：（无）" in first.body
        assert "客户：acme customer" in first.body
        # The nearest deadline still running: the first response, 00:30 UTC.
        assert "截止时间：2026-01-01 08:30（UTC+08:00, Asia/Shanghai）" in first.body

        clock.advance(21 * 60)
        assert await site.desk.escalate_due() == 1
        await until(lambda: len(mail.received) == 2, "the new owner's email")
        second = mail.received[1]
        assert second.to == ["agent@acme.test"]  # acme's 1001, not bravo's
        assert second.subject == "[工单 1] 已升级到第 2 级：我的卡被冻结了"
        assert "该工单现已转交给您处理。" in second.body
        assert "处理人：1001" in second.body
        assert not mail.to("sup@bravo.test") and not mail.to("agent@bravo.test")


async def test_a_person_without_an_address_is_skipped_and_logged(
    site: Site, clock: FakeClock, mail: MailServer, caplog: pytest.LogCaptureFixture
) -> None:
    await set_email(site, site.acme, "supervisor_user", "sup@acme.test")  # 1001 has none
    await sla_settings(site, site.acme)
    await open_case(site, site.acme, assignee="1001")
    clock.advance(20 * 60)
    with caplog.at_level(logging.WARNING, logger="telportal.notify"):
        assert await site.desk.fire_due() == 1
        await until(lambda: len(mail.received) == 1, "the supervisor's email")
        await asyncio.sleep(0.2)  # give a wrong second email the time to show up
    assert [r.to for r in mail.received] == [["sup@acme.test"]]
    assert "user 1001 is not emailed: no email address" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.to_address for r in await settled(site.platform, 1)] == ["sup@acme.test"]


async def test_a_server_that_is_down_gets_the_email_once_it_is_back(
    site: Site, clock: FakeClock, mail: MailServer
) -> None:
    await set_email(site, site.acme, "users", "agent@acme.test")
    await set_email(site, site.acme, "supervisor_user", "sup@acme.test")
    await sla_settings(site, site.acme)
    await open_case(site, site.acme, assignee="1001")
    await mail.stop()
    clock.advance(20 * 60)
    assert await site.desk.fire_due() == 1

    async def both_tried() -> bool:
        return len([r for r in await outbox(site.platform) if r.last_error is not None]) == 2

    await until(both_tried, "a failed try of each email")
    rows = await outbox(site.platform)
    assert {(r.state, r.attempts, r.sent_at) for r in rows} == {("pending", 1, None)}
    assert all("Connect" in (r.last_error or "") for r in rows)
    # The backoff holds them: with the clock still, the next try does not come.
    await asyncio.sleep(0.3)
    assert {r.attempts for r in await outbox(site.platform)} == {1}

    await mail.start()  # the same port
    clock.advance(31)  # past the first backoff of 30 s
    await until(lambda: len(mail.received) == 2, "both emails after the server came back")
    rows = await settled(site.platform, 2)
    assert {(r.state, r.attempts) for r in rows} == {("sent", 2)}
    assert sorted(r.to[0] for r in mail.received) == ["agent@acme.test", "sup@acme.test"]


async def test_unsent_and_never_stored_emails_go_out_after_a_restart(
    db_url: str, tmp_path: Path, clock: FakeClock, mail: MailServer
) -> None:
    async with open_site(db_url, tmp_path, clock, mail) as site:
        await set_email(site, site.acme, "users", "agent@acme.test")
        await set_email(site, site.acme, "supervisor_user", "sup@acme.test")
        await sla_settings(site, site.acme)
        await open_case(site, site.acme, assignee="1001")
        await mail.stop()
        clock.advance(20 * 60)
        assert await site.desk.fire_due() == 1

        async def both_tried() -> bool:
            return [r.last_error is None for r in await outbox(site.platform)] == [False, False]

        await until(both_tried, "a failed try of each email")
    # The site stopped with two emails unsent. Meanwhile, on a site without email (or
    # one that stopped between the alarm and its emails), the breach fires unemailed.
    plain = build_platform(
        Config(data_dir=tmp_path, database_url=db_url),
        clock=clock,
        passwords=Passwords.fast_for_tests(),
    )
    await plain.start()
    assert plain.email is None and plain.cases is not None
    await plain.cases.stop()
    clock.advance(15 * 60)
    assert await plain.cases.fire_due() == 1
    await plain.close()

    await mail.start()
    again = await start(email_config(db_url, tmp_path, mail.port), clock)
    try:
        await until(lambda: len(mail.received) == 4, "the unsent warnings and the caught-up breach")
        subjects = sorted((r.to[0], r.subject) for r in mail.received)
        assert subjects == [
            ("agent@acme.test", "[Case 1] First response deadline missed: Card blocked"),
            ("agent@acme.test",
             "[Case 1] First response due soon (50% of the time used): Card blocked"),
            ("sup@acme.test", "[Case 1] First response deadline missed: Card blocked"),
            ("sup@acme.test",
             "[Case 1] First response due soon (50% of the time used): Card blocked"),
        ]  # fmt: skip
        rows = await settled(again, 4)
        assert sorted((r.kind, r.state, r.attempts) for r in rows) == [
            ("sla/first_response/breach", "sent", 1),
            ("sla/first_response/breach", "sent", 1),
            ("sla/first_response/warning", "sent", 2),
            ("sla/first_response/warning", "sent", 2),
        ]
        # A second start does not send anything twice.
        email_parts = again.email
        assert email_parts is not None
        assert await email_parts.notifier.catch_up() == 0
    finally:
        await again.close()


async def test_the_sender_backs_off_on_the_clock_and_gives_up(
    db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """The sender's passes driven by hand: no sleeping, the fake clock decides."""
    transport = RecordingTransport()
    config = email_config(db_url, tmp_path, 25, max_attempts=3)
    platform = build_platform(
        config, clock=clock, passwords=Passwords.fast_for_tests(), mail=transport
    )
    await platform.start()
    email_parts = platform.email
    assert platform.cases is not None and email_parts is not None
    await platform.cases.stop()
    await email_parts.sender.stop()  # this test runs the passes
    sender = email_parts.sender
    transport.fail_with = DeliveryError("421 try later")
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_api(platform)), base_url="http://t.test"
        ) as client:
            await make_operator(platform)
            op = await login(client, "root")
            world = await build_tenant(client, op, "acme", "4008001000")
            site = Site(platform, client, world, world)
            await set_email(site, world, "users", "agent@acme.test")
            await sla_settings(site, world)
            await open_case(site, world, assignee="1001")
            clock.advance(20 * 60)
            assert await platform.cases.fire_due() == 1

            async def stored() -> bool:  # the bus hands the alarm to the notifier task
                return bool(await outbox(platform))

            await until(stored, "the email stored")
            # sup has no address: one row, for 1001.
            assert await sender.deliver_due() == 0
            assert [(r.attempts, r.state) for r in await outbox(platform)] == [(1, "pending")]
            clock.advance(29)
            assert await sender.deliver_due() == 0
            assert [r.attempts for r in await outbox(platform)] == [1]  # still backing off
            clock.advance(2)
            await sender.deliver_due()
            assert [r.attempts for r in await outbox(platform)] == [2]
            clock.advance(59)
            await sender.deliver_due()
            assert [r.attempts for r in await outbox(platform)] == [2]  # the wait doubled
            clock.advance(2)
            await sender.deliver_due()
            rows = await outbox(platform)
            assert [(r.attempts, r.state, r.last_error) for r in rows] == [
                (3, "failed", "421 try later")
            ]
            clock.advance(3600)
            transport.fail_with = None
            assert await sender.deliver_due() == 0  # given up means given up
            assert transport.sent == []
    finally:
        await platform.close()


async def test_the_smtp_adapter_logs_in_and_reads_refusals() -> None:
    """SmtpTransport against aiosmtpd: login with the configured credentials; a 550
    for the recipient is permanent, a server that is not there is not."""
    logins: list[tuple[str, str]] = []

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret")

    class Handler(MailServer):
        async def handle_RCPT(  # aiosmtpd's hook name
            self, server: SMTP, session: Session, envelope: Envelope, address: str,
            rcpt_options: list[str],
        ) -> str:  # fmt: skip
            if address.startswith("nobody@"):
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    handler = Handler()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler, hostname="mx.test", authenticator=authenticator,
            auth_require_tls=False,  # AUTH offered in the clear: the test has no certificate
        ),
        "127.0.0.1", 0,
    )  # fmt: skip
    port = server.sockets[0].getsockname()[1]

    def message(to: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "alerts@telportal.test", to, "hi"
        msg.set_content("hello")
        return msg

    def transport(password: str, at: int = port) -> SmtpTransport:
        return SmtpTransport(
            EmailSettings(
                smtp_host="127.0.0.1", smtp_port=at, security="none",
                username="telportal", password=password,
                timeout_seconds=5,
            )
        )  # fmt: skip

    try:
        await transport("s3cret").send(message("agent@acme.test"))
        assert [r.to for r in handler.received] == [["agent@acme.test"]]
        assert logins == [("telportal", "s3cret")]
        with pytest.raises(DeliveryError) as refused:
            await transport("s3cret").send(message("nobody@acme.test"))
        assert refused.value.permanent and "550" in str(refused.value)
        with pytest.raises(DeliveryError) as wrong:
            await transport("wrong").send(message("agent@acme.test"))
        assert not wrong.value.permanent  # our configuration: may be fixed while rows wait
        assert "wrong" not in str(wrong.value)
    finally:
        server.close()
        await server.wait_closed()
    with pytest.raises(DeliveryError) as down:
        await transport("s3cret").send(message("agent@acme.test"))
    assert not down.value.permanent
