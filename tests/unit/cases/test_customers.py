"""Customers: identities normalized so any form finds the customer; importance; merging."""

from datetime import timedelta
from decimal import Decimal

import pytest

from telportal.cases import (
    SPEND_WINDOW,
    CustomerFacts,
    CustomerRecord,
    Identity,
    IdentityKind,
    Importance,
    ImportanceRule,
    PhonePlan,
    TimelineEntry,
    find_by_identity,
    identity,
    importance,
    merge_customers,
    normalize_phone,
    purchase_amount,
    yearly_spend,
)
from telportal.errors import Invalid
from tests.unit.cases.support import OTHER, T, sh

MOBILE = "+8613800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138 0013 8000",
        "(+86) 138.0013.8000",
        "0086 13800138000",
        "8613800138000",  # the country code without its plus
        "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10",  # full-width
        " +86-138-0013-8000 ",
    ],
)
def test_one_mobile_number_written_many_ways(raw: str) -> None:
    assert normalize_phone(raw) == MOBILE
    assert identity("phone", raw) == Identity(IdentityKind.PHONE, MOBILE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("010-12345678", "+861012345678"),  # Beijing, trunk prefix 0
        ("(0755) 8888 6666", "+8675588886666"),  # Shenzhen
        ("4008001000", "+864008001000"),  # a 400 service number
        ("+1 (415) 555-0100", "+14155550100"),  # foreign, written internationally
        ("00 44 20 7946 0000", "+442079460000"),
    ],
)
def test_landlines_service_numbers_and_foreign_numbers(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


def test_another_country_plan() -> None:
    france = PhonePlan(country_code="33", trunk_prefix="0", max_national_digits=9)
    assert normalize_phone("01 23 45 67 89", france) == "+33123456789"
    assert normalize_phone("+33 1 23 45 67 89", france) == "+33123456789"
    assert normalize_phone("0033 1 23 45 67 89", france) == "+33123456789"


@pytest.mark.parametrize("raw", ["", "abc", "138-0013-800O", "12", "+", "1234567890123456789"])
def test_what_is_not_a_phone_number(raw: str) -> None:
    with pytest.raises(Invalid, match="phone"):
        normalize_phone(raw)


def test_emails_chat_handles_and_enterprise_ids() -> None:
    assert identity("email", "  Li.Lei@Example.COM ").value == "li.lei@example.com"
    with pytest.raises(Invalid, match="not an email"):
        identity("email", "li.lei at example.com")
    wechat = identity(IdentityKind.CHAT, " @oAbC123xYz ", network="WeChat")
    assert wechat.value == "wechat:oAbC123xYz"  # the handle keeps its case
    assert wechat.key == "chat:wechat:oAbC123xYz"
    assert identity("chat", "oabc123xyz", network="wechat") != wechat
    with pytest.raises(Invalid, match="chat handle"):
        identity("chat", "someone", network="")
    assert identity("enterprise", "91310000-7178 8808 8m").value == "91310000717888088M"
    with pytest.raises(Invalid, match="enterprise"):
        identity("enterprise", "91-31/00")
    with pytest.raises(Invalid, match="'fax' is not an identity kind"):
        identity("fax", "123")


def test_lookup_by_any_form_of_any_identity() -> None:
    li = CustomerRecord(
        T,
        "cust-li",
        "Li Lei",
        frozenset({identity("phone", "138 0013 8000"), identity("email", "li.lei@example.com")}),
    )
    han = CustomerRecord(
        T, "cust-han", "Han Meimei", frozenset({identity("phone", "010-12345678")})
    )
    people = [li, han]
    assert find_by_identity(people, identity("phone", "+86 138-0013-8000")) is li
    assert find_by_identity(people, identity("email", "LI.LEI@EXAMPLE.COM")) is li
    assert find_by_identity(people, identity("phone", "+86 10 1234 5678")) is han
    assert find_by_identity(people, identity("phone", "13900139000")) is None


# ---- importance -------------------------------------------------------------------------

RULES = [
    ImportanceRule(T, "gold", 3, min_yearly_spend=Decimal("100000")),
    ImportanceRule(T, "silver", 2, min_yearly_spend=Decimal("20000")),
    ImportanceRule(T, "press", 4, any_tags=frozenset({"journalist", "regulator"})),
    ImportanceRule(
        T, "big-and-loyal", 5, min_yearly_spend=Decimal("50000"), any_tags=frozenset({"10-years"})
    ),
]


@pytest.mark.parametrize(
    ("spend", "tags", "manual", "expected"),
    [
        ("0", set(), None, Importance(0, "")),
        ("20000", set(), None, Importance(2, "silver")),
        ("150000", set(), None, Importance(3, "gold")),
        ("10", {"regulator"}, None, Importance(4, "press")),
        ("60000", {"10-years"}, None, Importance(5, "big-and-loyal")),
        ("40000", {"10-years"}, None, Importance(2, "silver")),  # both criteria must hold
        ("150000", set(), 1, Importance(3, "gold")),  # rules raise a hand-set level
        ("0", set(), 4, Importance(4, "manual")),  # ... but never lower it
    ],
)
def test_importance_rules(
    spend: str, tags: set[str], manual: int | None, expected: Importance
) -> None:
    facts = CustomerFacts(T, "cust-1", Decimal(spend), frozenset(tags), manual)
    assert importance(T, facts, RULES) == expected


def test_importance_is_per_tenant() -> None:
    with pytest.raises(Invalid):
        importance(OTHER, CustomerFacts(T, "cust-1"), RULES)
    with pytest.raises(Invalid):
        importance(OTHER, CustomerFacts(OTHER, "cust-1"), RULES)


@pytest.mark.parametrize(
    ("data", "amount"),
    [
        ({"amount": 129.5}, Decimal("129.5")),
        ({"amount": 0.1}, Decimal("0.1")),  # the float's shortest text, not its binary value
        ({"amount": 10000}, Decimal(10000)),
        ({"amount": " 4000.00 "}, Decimal("4000.00")),
        ({"amount": -30}, Decimal(-30)),  # a refund lowers the spend
        ({"amount": "a lot"}, None),
        ({"amount": True}, None),
        ({"amount": None}, None),
        ({"amount": float("nan")}, None),
        ({"amount": "Infinity"}, None),
        ({"total": 5}, None),
        ({}, None),
    ],
)
def test_purchase_amounts(data: dict[str, object], amount: Decimal | None) -> None:
    assert purchase_amount(data) == amount


def test_yearly_spend_counts_purchases_of_the_last_365_days() -> None:
    now = sh("2026-06-01", "12:00")
    purchases = [
        (now - SPEND_WINDOW, {"amount": 1000}),  # exactly a year ago: out
        (now - SPEND_WINDOW + timedelta(seconds=1), {"amount": 200}),
        (now - timedelta(days=1), {"amount": "30.5"}),
        (now, {"amount": 4}),
        (now + timedelta(seconds=5), {"amount": 1}),  # the sender's clock runs ahead: in
        (now, {"amount": "n/a"}),
    ]
    assert yearly_spend(purchases, now) == Decimal("235.5")
    assert yearly_spend([], now) == 0
    assert timedelta(days=365) == SPEND_WINDOW


# ---- merging -----------------------------------------------------------------------------


def entry(entry_id: str, day: str, hhmm: str, kind: str = "call") -> TimelineEntry:
    return TimelineEntry(T, entry_id, sh(day, hhmm), kind, f"{kind} {entry_id}")


def test_merging_two_records_of_one_person() -> None:
    by_phone = CustomerRecord(
        T,
        "cust-1",
        "",
        frozenset({identity("phone", "13800138000")}),
        frozenset({"vip"}),
        (entry("call-1", "2026-03-01", "10:00"), entry("case-7", "2026-03-03", "09:00", "case")),
    )
    by_email = CustomerRecord(
        T,
        "cust-2",
        "Li Lei",
        frozenset({identity("email", "li.lei@example.com"), identity("phone", "+8613800138000")}),
        frozenset({"10-years"}),
        (
            entry("mail-1", "2026-03-02", "08:00", "email"),
            entry("case-7", "2026-03-03", "09:00", "case"),
        ),
        merged_ids=frozenset({"cust-0"}),
    )
    merged = merge_customers(T, by_phone, by_email)
    assert (merged.tenant_id, merged.customer_id, merged.name) == (T, "cust-1", "Li Lei")
    assert merged.identities == {
        Identity(IdentityKind.PHONE, "+8613800138000"),
        Identity(IdentityKind.EMAIL, "li.lei@example.com"),
    }
    assert merged.tags == {"vip", "10-years"}
    assert [e.entry_id for e in merged.timeline] == ["call-1", "mail-1", "case-7"]
    assert merged.merged_ids == {"cust-0", "cust-2"}
    # the email that found cust-2 now finds the merged customer
    assert find_by_identity([merged], identity("email", "Li.Lei@example.com")) is merged
    # the inputs are unchanged
    assert by_phone.name == "" and len(by_email.timeline) == 2


def test_merges_that_make_no_sense_are_refused() -> None:
    one = CustomerRecord(T, "cust-1")
    with pytest.raises(Invalid, match="itself"):
        merge_customers(T, one, one)
    with pytest.raises(Invalid, match="different tenants"):
        merge_customers(T, one, CustomerRecord(OTHER, "cust-2"))
