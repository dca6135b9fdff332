"""The emails: subject, body, headers and language, from the facts of one alarm."""
# The Chinese text uses full-width punctuation on purpose.
# ruff: noqa: RUF001

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from telportal.notify.messages import (
    CaseFacts,
    EscalationAlarm,
    SlaAlarm,
    case_link,
    choose_language,
    compose_all,
    format_deadline,
)
from telportal.notify.recipients import Addressee, Person, Reason

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
FACTS = CaseFacts(
    tenant_id="t1",
    case_id="c1",
    number=42,
    subject="Card blocked",
    customer="Zhang San",
    assignee="1001",
    deadline=datetime(2026, 3, 2, 2, 0, tzinfo=UTC),  # 10:00 in Shanghai
    link=case_link("https://desk.example/", "c1"),
)
AGENT = Person("u1", "1001", "Li Lei", "li@acme.test", "agent", None)
SUP = Person("s1", "sup", "", "sup@acme.test", "supervisor", None)
WARNING = SlaAlarm("first_response", "warning", 80, 0.0)
BREACH = SlaAlarm("resolution", "breach", None, 3900.0)
STEP = EscalationAlarm(
    "escalation/orphans/20260302T010000.000000Z/2", "orphans", "unassigned", 2, "1001"
)


def one(
    alarm: SlaAlarm | EscalationAlarm, who: Addressee, language: str | None = None
) -> EmailMessage:
    notices, skipped = compose_all(
        FACTS, alarm, [who], sender="alerts@acme.test", tenant_language=language,
        zone=SHANGHAI, now=NOW,
    )  # fmt: skip
    assert skipped == [] and len(notices) == 1
    # What is stored and sent is the serialised text: read it back as a mail client would.
    parsed = email.message_from_string(notices[0].message.as_string(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def subject(msg: EmailMessage) -> str:
    # A folded header comes back with the space of its fold in front (the library's way).
    return str(msg["Subject"]).strip()


def test_a_warning_in_english_names_the_case_the_share_and_the_local_deadline() -> None:
    msg = one(WARNING, Addressee(AGENT, Reason.ASSIGNEE))
    assert subject(msg) == "[Case 42] First response due soon (80% of the time used): Card blocked"
    assert msg["To"] == "Li Lei <li@acme.test>"
    assert msg["From"] == "Telportal <alerts@acme.test>"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Content-Language"] == "en"
    assert msg["Date"] == "Mon, 02 Mar 2026 01:30:00 +0000"
    body = msg.get_content()
    assert body.startswith("Hello Li Lei,\n")
    assert (
        "The first response deadline of case 42 is near: 80% of the allowed time is used." in body
    )
    assert "Customer:  Zhang San" in body
    assert "Deadline:  2026-03-02 10:00 (UTC+08:00, Asia/Shanghai)" in body
    assert "What:      warning at 80% of the first response time" in body
    assert "Open the case on the desktop: https://desk.example/?case=c1" in body
    assert "because the case is assigned to you" in body


def test_a_breach_in_chinese_says_how_late() -> None:
    msg = one(BREACH, Addressee(SUP, Reason.SUPERVISOR), language="zh-CN")
    assert subject(msg) == "[工单 42] 解决已超时：Card blocked"
    assert msg["Content-Language"] == "zh-CN"
    body = msg.get_content()
    assert body.startswith("sup，您好：\n")  # no display name: the username
    assert "工单 42 的解决时限已超时（超出 1 小时 5 分钟）。" in body
    assert "截止时间：2026-03-02 10:00（UTC+08:00, Asia/Shanghai）" in body
    assert "客户：Zhang San" in body
    assert "您是该工单处理人或所属部门的主管" in body


def test_an_escalation_to_the_new_owner_says_the_case_is_theirs() -> None:
    msg = one(STEP, Addressee(AGENT, Reason.ESCALATION))
    assert subject(msg) == "[Case 42] Escalated to step 2: Card blocked"
    body = msg.get_content()
    assert (
        "Case 42 was escalated to step 2 (chain orphans, because: nobody has taken it). "
        "The case is now yours." in body
    )
    assert "What:      escalated to step 2" in body
    zh = one(STEP, Addressee(SUP, Reason.SUPERVISOR), language="zh").get_content()
    assert "工单 42 已升级到第 2 级（升级规则 orphans，原因：无人受理）。\n" in zh  # not the owner


def test_the_language_is_the_persons_then_the_tenants_then_english() -> None:
    assert choose_language("zh-CN", "en") == "zh-CN"
    assert choose_language(None, "zh-Hans") == "zh-CN"
    assert choose_language("en-GB", "zh-CN") == "en"
    assert choose_language(None, None) == "en"
    chinese_agent = Person("u7", "7", "", "7@acme.test", "agent", None, language="zh-CN")
    assert (
        one(WARNING, Addressee(chinese_agent, Reason.ASSIGNEE), language="en")["Content-Language"]
        == "zh-CN"
    )


def test_people_without_a_usable_address_are_skipped_with_the_reason() -> None:
    nobody = Person("u2", "1002", "", None, "agent", None)
    broken = Person("u3", "1003", "", "not an address", "agent", None)
    notices, skipped = compose_all(
        FACTS, WARNING,
        [Addressee(nobody, Reason.ASSIGNEE), Addressee(broken, Reason.SUPERVISOR),
         Addressee(SUP, Reason.SUPERVISOR)],
        sender="alerts@acme.test", tenant_language=None, zone=SHANGHAI, now=NOW,
    )  # fmt: skip
    assert [n.user_id for n in notices] == ["s1"]
    assert [(s.person.username, s.why.split(":")[0]) for s in skipped] == [
        ("1002", "no email address"), ("1003", "unusable email address"),
    ]  # fmt: skip


def test_the_dedup_kind_and_message_id_are_stable() -> None:
    assert WARNING.kind == "sla/first_response/warning"
    assert STEP.kind == "escalation/orphans/20260302T010000.000000Z/2"
    a = one(WARNING, Addressee(AGENT, Reason.ASSIGNEE))
    b = one(WARNING, Addressee(AGENT, Reason.ASSIGNEE))
    c = one(BREACH, Addressee(AGENT, Reason.ASSIGNEE))
    assert a["Message-ID"] == b["Message-ID"] != c["Message-ID"]
    assert str(a["Message-ID"]).endswith("@acme.test>")


def test_a_subject_with_line_breaks_cannot_add_headers() -> None:
    facts = CaseFacts("t1", "c1", 7, "Hi\r\nBcc: victim@evil.test\n" + "x" * 300, "", "", None, "l")
    notices, _ = compose_all(
        facts, WARNING, [Addressee(AGENT, Reason.ASSIGNEE)], sender="a@acme.test",
        tenant_language=None, zone=SHANGHAI, now=NOW,
    )  # fmt: skip
    msg = notices[0].message
    assert msg["Bcc"] is None
    assert str(msg["Subject"]).startswith("[Case 7] First response due soon")
    assert str(msg["Subject"]).endswith("…") and "\n" not in str(msg["Subject"])
    body = msg.get_content()
    assert "Assignee:  (nobody)" in body and "Deadline:  (none running)" in body


@pytest.mark.parametrize(
    ("zone", "language", "shown"),
    [
        ("UTC", "en", "2026-03-02 02:00 (UTC+00:00, UTC)"),
        ("America/New_York", "en", "2026-03-01 21:00 (UTC-05:00, America/New_York)"),
        ("Asia/Shanghai", "zh-CN", "2026-03-02 10:00（UTC+08:00, Asia/Shanghai）"),
    ],
)
def test_deadlines_are_shown_in_the_zone(zone: str, language: str, shown: str) -> None:
    assert format_deadline(FACTS.deadline or NOW, ZoneInfo(zone), language) == shown  # type: ignore[arg-type]
