"""The emails about a case's alarms, built as RFC 5322 messages: pure, no IO.

Given the facts of a case, what happened (an SLA warning or breach, or an escalation
step) and the people to tell, `compose_all` returns one `Notice` per person with an
email address and names those without one. A notice's `kind` with its case and person
is the deduplication key (one email per case, alarm and person): an SLA alarm's kind is
`sla/<target>/<level>`, which fires once per case; an escalation's kind is the step's
own key, `escalation/<chain>/<episode start>/<level>`, because a chain that starts a
new episode (an untouched case left alone again) is a new alarm worth a new email.

Text is English or Simplified Chinese: the person's own language if they have one, else
the tenant's default, else English. Times are shown in the tenant's zone (its case
calendar's), never in the server's.
"""
# The Chinese text uses full-width punctuation on purpose: it is what is correct there.
# ruff: noqa: RUF001

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal
from zoneinfo import ZoneInfo

from telportal.notify.recipients import Addressee, Person, Reason

Language = Literal["en", "zh-CN"]
SUBJECT_MAX = 120


def choose_language(own: str | None, tenant_default: str | None) -> Language:
    """The person's language, else the tenant's, else English; any `zh*` is Chinese."""
    for tag in (own, tenant_default):
        if tag:
            return "zh-CN" if tag.lower().startswith("zh") else "en"
    return "en"


@dataclass(frozen=True, slots=True)
class CaseFacts:
    tenant_id: str
    case_id: str
    number: int
    subject: str
    customer: str
    assignee: str
    deadline: datetime | None
    """The deadline the alarm is about (for an escalation, the nearest one still running)."""
    link: str


@dataclass(frozen=True, slots=True)
class SlaAlarm:
    target: str  # first_response or resolution
    level: str  # warning or breach
    warning_percent: int | None
    late_seconds: float

    @property
    def kind(self) -> str:
        return f"sla/{self.target}/{self.level}"


@dataclass(frozen=True, slots=True)
class EscalationAlarm:
    step_key: str
    """The step's key without its `<tenant>/<case>/` prefix."""
    chain_id: str
    trigger: str
    level: int
    notify: str

    @property
    def kind(self) -> str:
        return self.step_key


Alarm = SlaAlarm | EscalationAlarm


@dataclass(frozen=True, slots=True)
class Notice:
    tenant_id: str
    case_id: str
    kind: str
    user_id: str
    to_address: str
    language: Language
    subject: str
    message: EmailMessage


@dataclass(frozen=True, slots=True)
class Skipped:
    person: Person
    why: str


def case_link(desktop_url: str, case_id: str) -> str:
    return f"{desktop_url.rstrip('/')}/?case={case_id}"


# --- text ----------------------------------------------------------------------------

_TEXT: dict[Language, dict[str, str]] = {
    "en": {
        "first_response": "first response",
        "resolution": "resolution",
        "subject.warning": "[Case {number}] {Target} due soon ({percent}% of the time used): "
        "{subject}",
        "subject.breach": "[Case {number}] {Target} deadline missed: {subject}",
        "subject.escalation": "[Case {number}] Escalated to step {level}: {subject}",
        "hello": "Hello {name},",
        "said.warning": "The {target} deadline of case {number} is near: {percent}% of the "
        "allowed time is used.",
        "said.breach": "The {target} deadline of case {number} was missed{late}.",
        "late": " by {duration}",
        "said.escalation": "Case {number} was escalated to step {level} "
        "(chain {chain}, because: {trigger}).",
        "said.owner": "The case is now yours.",
        "what.warning": "warning at {percent}% of the {target} time",
        "what.breach": "{target} deadline breached",
        "what.escalation": "escalated to step {level}",
        "case": "Case:      {value}",
        "subject": "Subject:   {value}",
        "customer": "Customer:  {value}",
        "assignee": "Assignee:  {value}",
        "deadline": "Deadline:  {value}",
        "what": "What:      {value}",
        "nobody": "(nobody)",
        "unknown": "(unknown)",
        "none": "(none running)",
        "open": "Open the case on the desktop: {link}",
        "why.assignee": "You receive this because the case is assigned to you.",
        "why.supervisor": "You receive this as a supervisor of the case's assignee or department.",
        "why.escalation": "You receive this because the escalation step names you.",
        "hours": "{h} h {m} min",
        "minutes": "{m} min",
        "unassigned": "nobody has taken it",
        "untouched": "nobody has worked on it",
        "first_response_breached": "the first response is late",
        "resolution_breached": "the resolution is late",
    },
    "zh-CN": {
        "first_response": "首次响应",
        "resolution": "解决",
        "subject.warning": "[工单 {number}] {Target}即将超时（已用 {percent}% 时限）：{subject}",
        "subject.breach": "[工单 {number}] {Target}已超时：{subject}",
        "subject.escalation": "[工单 {number}] 已升级到第 {level} 级：{subject}",
        "hello": "{name}，您好：",
        "said.warning": "工单 {number} 的{target}时限即将到期：已用 {percent}% 的时间。",
        "said.breach": "工单 {number} 的{target}时限已超时{late}。",
        "late": "（超出 {duration}）",
        "said.escalation": "工单 {number} 已升级到第 {level} 级"
        "（升级规则 {chain}，原因：{trigger}）。",
        "said.owner": "该工单现已转交给您处理。",
        "what.warning": "{target}预警（已用 {percent}%）",
        "what.breach": "{target}已超时",
        "what.escalation": "升级到第 {level} 级",
        "case": "工单编号：{value}",
        "subject": "主题：{value}",
        "customer": "客户：{value}",
        "assignee": "处理人：{value}",
        "deadline": "截止时间：{value}",
        "what": "事件：{value}",
        "nobody": "（无）",
        "unknown": "（未知）",
        "none": "（无进行中的时限）",
        "open": "在坐席桌面打开工单：{link}",
        "why.assignee": "您收到此邮件，因为该工单由您处理。",
        "why.supervisor": "您收到此邮件，因为您是该工单处理人或所属部门的主管。",
        "why.escalation": "您收到此邮件，因为升级规则指定了您。",
        "hours": "{h} 小时 {m} 分钟",
        "minutes": "{m} 分钟",
        "unassigned": "无人受理",
        "untouched": "无人处理",
        "first_response_breached": "首次响应超时",
        "resolution_breached": "解决超时",
    },
}

_SPACE = re.compile(r"\s+")


def _one_line(text: str, limit: int | None = None) -> str:
    """Header-safe: a case subject with a newline must not become a header of its own."""
    flat = _SPACE.sub(" ", text).strip()
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat


def _duration(t: dict[str, str], seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes >= 60:
        return t["hours"].format(h=minutes // 60, m=minutes % 60)
    return t["minutes"].format(m=minutes)


def format_deadline(at: datetime, zone: ZoneInfo, language: Language) -> str:
    local = at.astimezone(zone)
    offset = local.strftime("%z")
    where = f"UTC{offset[:3]}:{offset[3:]}, {zone.key}"
    if language == "zh-CN":
        return f"{local:%Y-%m-%d %H:%M}（{where}）"
    return f"{local:%Y-%m-%d %H:%M} ({where})"


def render(
    facts: CaseFacts,
    alarm: Alarm,
    addressee: Addressee,
    language: Language,
    zone: ZoneInfo,
) -> tuple[str, str]:
    """The subject and plain-text body of one email."""
    t = _TEXT[language]
    subject = _one_line(facts.subject, SUBJECT_MAX) or "-"
    number = facts.number
    if isinstance(alarm, SlaAlarm):
        target = t.get(alarm.target, alarm.target)
        upper = target[:1].upper() + target[1:]
        percent = alarm.warning_percent if alarm.warning_percent is not None else "?"
        level = "warning" if alarm.level == "warning" else "breach"
        late = ""
        if level == "breach" and alarm.late_seconds >= 60:
            late = t["late"].format(duration=_duration(t, alarm.late_seconds))
        values = {"number": number, "Target": upper, "target": target, "percent": percent}
        title = t[f"subject.{level}"].format(subject=subject, **values)
        said = t[f"said.{level}"].format(late=late, **values)
        what = t[f"what.{level}"].format(**values)
    else:
        title = t["subject.escalation"].format(number=number, level=alarm.level, subject=subject)
        said = t["said.escalation"].format(
            number=number,
            level=alarm.level,
            chain=alarm.chain_id,
            trigger=t.get(alarm.trigger, alarm.trigger),
        )
        if addressee.reason is Reason.ESCALATION and addressee.person.username == facts.assignee:
            said += (" " if language == "en" else "") + t["said.owner"]
        what = t["what.escalation"].format(level=alarm.level)
    person = addressee.person
    deadline = format_deadline(facts.deadline, zone, language) if facts.deadline else t["none"]
    lines = [
        t["hello"].format(name=_one_line(person.display_name) or person.username),
        "",
        said,
        "",
        t["case"].format(value=number),
        t["subject"].format(value=_one_line(facts.subject) or "-"),
        t["customer"].format(value=_one_line(facts.customer) or t["unknown"]),
        t["assignee"].format(value=facts.assignee or t["nobody"]),
        t["deadline"].format(value=deadline),
        t["what"].format(value=what),
        "",
        t["open"].format(link=facts.link),
        "",
        t[f"why.{addressee.reason.value}"],
        "",
        "-- ",
        "Telportal",
        "",
    ]
    return title, "\n".join(lines)


def message_id(facts: CaseFacts, kind: str, user_id: str, domain: str) -> str:
    """Stable per notice, so a mail system that sees a resend can tell it is the same."""
    digest = hashlib.sha256(
        f"{facts.tenant_id}/{facts.case_id}/{kind}/{user_id}".encode()
    ).hexdigest()[:32]
    return f"<{digest}.case-alarm@{domain}>"


def compose(
    facts: CaseFacts,
    alarm: Alarm,
    addressee: Addressee,
    *,
    sender: str,
    language: Language,
    zone: ZoneInfo,
    now: datetime,
) -> EmailMessage:
    """One RFC 5322 message; raises ValueError when the person's address is unusable."""
    person = addressee.person
    if not person.email:
        raise ValueError("no email address")
    try:
        to = Address(display_name=_one_line(person.display_name), addr_spec=person.email.strip())
        source = Address(addr_spec=sender)
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise ValueError(f"unusable email address: {exc}") from None
    title, body = render(facts, alarm, addressee, language, zone)
    msg = EmailMessage()
    msg["From"] = Address(display_name="Telportal", addr_spec=source.addr_spec)
    msg["To"] = to
    msg["Subject"] = title
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(facts, alarm.kind, person.user_id, source.domain or "telportal")
    # RFC 3834: automatic mail, so that vacation responders do not answer it.
    msg["Auto-Submitted"] = "auto-generated"
    # Plain ASCII goes as it is (readable in any log of the mail system); anything
    # else as the library chooses (base64 or quoted-printable), never raw 8-bit, which a
    # server without 8BITMIME would refuse.
    cte = "7bit" if body.isascii() and max(map(len, body.splitlines())) <= 998 else None
    msg.set_content(body, cte=cte)
    msg["Content-Language"] = language  # after set_content, which clears Content-*
    return msg


def compose_all(
    facts: CaseFacts,
    alarm: Alarm,
    addressees: Sequence[Addressee],
    *,
    sender: str,
    tenant_language: str | None,
    zone: ZoneInfo,
    now: datetime,
) -> tuple[list[Notice], list[Skipped]]:
    """A notice for each person who can receive one; the others, with the reason."""
    notices: list[Notice] = []
    skipped: list[Skipped] = []
    for addressee in addressees:
        person = addressee.person
        language = choose_language(person.language, tenant_language)
        try:
            msg = compose(
                facts, alarm, addressee, sender=sender, language=language, zone=zone, now=now
            )
        except ValueError as exc:
            skipped.append(Skipped(person, str(exc)))
            continue
        notices.append(
            Notice(
                facts.tenant_id,
                facts.case_id,
                alarm.kind,
                person.user_id,
                str(msg["To"].addresses[0].addr_spec),
                language,
                str(msg["Subject"]),
                msg,
            )
        )
    return notices, skipped
