"""Customers (MISSION M15): one customer whichever way they reach us.

**Identities.** A customer has identities of several kinds; each is normalized so that
the same person written two ways is one key (`Identity.key`, what the store indexes):

    kind        normalized as
    ----------  ------------------------------------------------------------------------
    phone       E.164-like `+<country><number>`: spaces, dashes, dots, brackets dropped;
                `+` or the international prefix (`00`) keeps the country given; the
                national trunk prefix (`0`) is replaced by the country code; a bare
                national number gets the country code; digits that already start with
                the country code and are too long to be national get a `+`. The
                country, prefixes and national length are a `PhonePlan` (China by
                default: 86, `00`, `0`, at most 11 national digits).
    email       trimmed and lower-cased (the whole address: people type capitals where
                no mail system treats them as different)
    chat        `<network>:<handle>`, the network lower-cased, the handle trimmed of
                spaces and a leading `@` but kept in its case: WeChat open ids and many
                handles are case-sensitive
    enterprise  an organisation's id (e.g. the unified social credit code): NFKC,
                spaces and dashes dropped, upper-cased

**Importance.** `importance()` applies a tenant's rules (yearly spend at least, any of
some tags) to a customer's facts; the highest level among matching rules wins, and a
level set by hand is a floor the rules can raise but not lower. A customer's yearly
spend (`yearly_spend()`) is the sum of the `amount` of their `purchase` interactions
dated within the last 365 days (`SPEND_WINDOW`) of `now`: what enterprise systems push
(`POST /customers/{id}/interactions`), in the tenant's one currency.

**Merging.** `merge_customers()` joins two records of one person: the survivor keeps
its id, gains the other's identities, tags and timeline (in time order, an entry present
in both kept once), and the absorbed id is recorded so that old references still lead
somewhere. It is data in, data out: the adapter stores the result and repoints cases.
"""

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from telportal.errors import Invalid


class IdentityKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    ENTERPRISE = "enterprise"


@dataclass(frozen=True, slots=True)
class Identity:
    kind: IdentityKind
    value: str
    """Already normalized; build with `identity()`."""

    @property
    def key(self) -> str:
        return f"{self.kind.value}:{self.value}"


@dataclass(frozen=True, slots=True)
class PhonePlan:
    """How a tenant's national numbers are written; China's by default."""

    country_code: str = "86"
    international_prefix: str = "00"
    trunk_prefix: str = "0"
    """The national prefix dropped for +CC (China 0, France 0; empty where there is none)."""
    max_national_digits: int = 11
    min_digits: int = 5


CHINA = PhonePlan()

_PHONE_SEPARATORS = re.compile(r"[\s\-.()/\u00a0]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ENTERPRISE_DROP = re.compile(r"[\s\-]")


def normalize_phone(raw: str, plan: PhonePlan = CHINA) -> str:
    """`+<country><number>`; Invalid when it is not a phone number."""
    text = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    international = text.startswith("+")
    digits = text[1:] if international else text
    if not digits.isdigit() or not digits.isascii():
        raise Invalid("phone", f"{raw!r} is not a phone number")
    if not international:
        digits = _international_digits(digits, plan)
    if len(digits) < plan.min_digits or len(digits) > 15:  # E.164 allows 15 digits
        raise Invalid("phone", f"{raw!r} has too few or too many digits")
    return "+" + digits


def _international_digits(digits: str, plan: PhonePlan) -> str:
    """Country code and number, for digits written without a leading `+`."""
    if plan.international_prefix and digits.startswith(plan.international_prefix):
        return digits[len(plan.international_prefix) :]
    if plan.trunk_prefix and digits.startswith(plan.trunk_prefix):
        return plan.country_code + digits[len(plan.trunk_prefix) :]
    if digits.startswith(plan.country_code) and len(digits) > plan.max_national_digits:
        return digits  # 8613800138000: the country code written without its plus
    return plan.country_code + digits


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if not _EMAIL.match(email):
        raise Invalid("email", f"{raw!r} is not an email address")
    return email


def normalize_chat(raw: str, network: str) -> str:
    handle = unicodedata.normalize("NFKC", raw).strip().removeprefix("@")
    name = network.strip().lower()
    if not handle or not name or ":" in name:
        raise Invalid("chat", f"{raw!r} on {network!r} is not a chat handle")
    return f"{name}:{handle}"


def normalize_enterprise(raw: str) -> str:
    value = _ENTERPRISE_DROP.sub("", unicodedata.normalize("NFKC", raw)).upper()
    if not value.isalnum():
        raise Invalid("enterprise", f"{raw!r} is not an enterprise id")
    return value


def identity(
    kind: IdentityKind | str, raw: str, *, plan: PhonePlan = CHINA, network: str = ""
) -> Identity:
    """A normalized identity; `network` names the chat network for chat handles."""
    try:
        kind = IdentityKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in IdentityKind)
        raise Invalid("kind", f"{kind!r} is not an identity kind ({kinds})") from None
    if kind is IdentityKind.PHONE:
        return Identity(kind, normalize_phone(raw, plan))
    if kind is IdentityKind.EMAIL:
        return Identity(kind, normalize_email(raw))
    if kind is IdentityKind.CHAT:
        return Identity(kind, normalize_chat(raw, network))
    return Identity(kind, normalize_enterprise(raw))


# ---- importance --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    tenant_id: str
    customer_id: str
    yearly_spend: Decimal = Decimal(0)
    tags: frozenset[str] = frozenset()
    manual_level: int | None = None
    """A level someone set by hand: a floor for the rules."""


@dataclass(frozen=True, slots=True)
class ImportanceRule:
    """A level for customers meeting every criterion named (none named: everyone)."""

    tenant_id: str
    rule_id: str
    level: int
    min_yearly_spend: Decimal | None = None
    any_tags: frozenset[str] = frozenset()

    def matches(self, facts: CustomerFacts) -> bool:
        if self.min_yearly_spend is not None and facts.yearly_spend < self.min_yearly_spend:
            return False
        return not self.any_tags or bool(self.any_tags & facts.tags)


@dataclass(frozen=True, slots=True)
class Importance:
    level: int
    rule_id: str
    """The rule that gave the level; `manual` for a hand-set level, empty for none."""


PURCHASE = "purchase"
"""The interaction kind whose `data.amount` counts as spend."""
SPEND_WINDOW = timedelta(days=365)


def purchase_amount(data: Mapping[str, object]) -> Decimal | None:
    """The `amount` of a purchase's data as an exact decimal, or None when there is none.

    Numbers and numeric strings both count ("129.50" is how many systems send money);
    a negative amount is a refund or a correction and lowers the spend. Anything else
    (absent, text, true/false, not finite) is no amount: a malformed push must not
    make a customer important, nor refuse the interaction it came with.
    """
    raw = data.get("amount")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        # str() first: a float's shortest text is what the sender wrote (129.5, not
        # 129.5000000000000000277...).
        amount = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def yearly_spend(
    purchases: Iterable[tuple[datetime, Mapping[str, object]]], now: datetime
) -> Decimal:
    """The sum of the amounts of purchases (`at`, `data`) dated after `now` - 365 days.

    Purchases dated after `now` count too: an enterprise's clock a little ahead of
    ours must not hide a purchase, since nothing looks at it again until the
    customer's facts or the rules next change.
    """
    since = now - SPEND_WINDOW
    total = Decimal(0)
    for at, data in purchases:
        amount = purchase_amount(data)
        if amount is not None and at > since:
            total += amount
    return total


def importance(tenant_id: str, facts: CustomerFacts, rules: Iterable[ImportanceRule]) -> Importance:
    """The highest level of the matching rules (the first of equals), never below manual."""
    if facts.tenant_id != tenant_id:
        raise Invalid("facts", "the customer belongs to another tenant")
    best = Importance(0, "")
    if facts.manual_level is not None:
        best = Importance(facts.manual_level, "manual")
    for rule in rules:
        if rule.tenant_id != tenant_id:
            raise Invalid("rules", f"importance rule {rule.rule_id} belongs to another tenant")
        if rule.level > best.level and rule.matches(facts):
            best = Importance(rule.level, rule.rule_id)
    return best


# ---- merging -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    tenant_id: str
    entry_id: str
    at: datetime
    kind: str
    """call, case, email, chat, order, ..."""
    summary: str = ""
    ref: str = ""
    """The id of what it is about (a call record, a case)."""


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    tenant_id: str
    customer_id: str
    name: str = ""
    identities: frozenset[Identity] = frozenset()
    tags: frozenset[str] = frozenset()
    timeline: tuple[TimelineEntry, ...] = ()
    merged_ids: frozenset[str] = frozenset()
    """Ids of customers merged into this one: lookups by them lead here."""


def merge_customers(
    tenant_id: str, survivor: CustomerRecord, absorbed: CustomerRecord
) -> CustomerRecord:
    """One record of the two; the survivor's id and name (its name, else the other's)."""
    if survivor.tenant_id != tenant_id or absorbed.tenant_id != tenant_id:
        raise Invalid("customers", "customers of different tenants cannot be merged")
    if survivor.customer_id == absorbed.customer_id:
        raise Invalid("customers", "a customer cannot be merged into itself")
    return CustomerRecord(
        tenant_id,
        survivor.customer_id,
        survivor.name or absorbed.name,
        survivor.identities | absorbed.identities,
        survivor.tags | absorbed.tags,
        merge_timelines(survivor.timeline, absorbed.timeline),
        survivor.merged_ids | absorbed.merged_ids | {absorbed.customer_id},
    )


def merge_timelines(*timelines: Sequence[TimelineEntry]) -> tuple[TimelineEntry, ...]:
    """All entries in time order (then by id), each entry id once."""
    seen: dict[str, TimelineEntry] = {}
    for timeline in timelines:
        for entry in timeline:
            seen.setdefault(entry.entry_id, entry)
    return tuple(sorted(seen.values(), key=lambda e: (e.at, e.entry_id)))


def find_by_identity(customers: Iterable[CustomerRecord], found: Identity) -> CustomerRecord | None:
    """The customer holding this (normalized) identity; for tests and small in-memory sets."""
    return next((c for c in customers if found in c.identities), None)
