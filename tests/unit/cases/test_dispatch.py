"""Dispatch: first matching rule, keywords in English and Chinese, load, the default."""

import pytest

from telportal.cases import (
    DEFAULT_RULE,
    Case,
    DispatchRule,
    DispatchTable,
    dispatch,
    open_case,
)
from telportal.errors import Invalid, NotFound
from tests.unit.cases.support import OTHER, T, sh

TABLE = DispatchTable(
    T,
    [
        DispatchRule(T, "vip", "vip-desk", ("vip-1", "vip-2"), min_importance=3),
        DispatchRule(
            T,
            "refunds",
            "finance",
            ("fin-1", "fin-2", "fin-3"),
            keywords=("refund", "退款", "charged twice"),
        ),
        DispatchRule(
            T,
            "south-delivery",
            "logistics-south",
            ("log-s1",),
            services=frozenset({"hotline", "web"}),
            categories=frozenset({"delivery"}),
            regions=frozenset({"guangdong", "fujian"}),
        ),
        DispatchRule(
            T, "delivery", "logistics", ("log-1", "log-2"), categories=frozenset({"delivery"})
        ),
    ],
    default_department="front-desk",
    default_assignees=("desk-1", "desk-2"),
)


def case(subject: str = "", description: str = "", **fields: str) -> Case:
    return open_case(
        T,
        "c-1",
        actor="ivr",
        at=sh("2026-03-02", "10:00"),
        subject=subject,
        description=description,
        **fields,
    ).case


def test_the_first_matching_rule_wins_and_says_why() -> None:
    # a VIP asking for a refund about a delivery: the VIP rule comes first
    decision = dispatch(T, case("Refund please", category="delivery"), TABLE, importance=3)
    assert (decision.rule_id, decision.department, decision.assignee) == (
        "vip",
        "vip-desk",
        "vip-1",
    )
    assert decision.reasons == ("importance>=3",)
    decision = dispatch(T, case("Refund please", category="delivery"), TABLE, importance=2)
    assert (decision.rule_id, decision.reasons) == ("refunds", ("keyword=refund",))


@pytest.mark.parametrize(
    ("subject", "description", "keyword"),
    [
        ("REFUND for order 42", "", "refund"),
        ("", "I want a Refund.", "refund"),
        ("订单问题", "我要申请退款\uff0c谢谢", "退款"),
        ("申请refund退款", "", "refund"),  # Latin word inside Chinese text
        ("\uff32\uff25\uff26\uff35\uff2e\uff24", "", "refund"),  # full-width REFUND
        ("I was Charged  Twice", "", None),  # two spaces: not the phrase
        ("I was charged twice!", "", "charged twice"),
        ("refunds", "", None),  # a longer word
        ("prerefund", "", None),
        ("退 款", "", None),
    ],
)
def test_keywords(subject: str, description: str, keyword: str | None) -> None:
    decision = dispatch(T, case(subject, description), TABLE)
    if keyword is None:
        assert decision.rule_id == DEFAULT_RULE
    else:
        assert (decision.rule_id, decision.reasons) == ("refunds", (f"keyword={keyword}",))


def test_every_named_criterion_must_hold() -> None:
    south = case(service="hotline", category="delivery", region="guangdong")
    decision = dispatch(T, south, TABLE)
    assert (decision.rule_id, decision.department, decision.assignee) == (
        "south-delivery",
        "logistics-south",
        "log-s1",
    )
    assert decision.reasons == ("service=hotline", "category=delivery", "region=guangdong")
    north = case(service="hotline", category="delivery", region="beijing")
    assert dispatch(T, north, TABLE).rule_id == "delivery"
    by_email = case(service="email", category="delivery", region="guangdong")
    assert dispatch(T, by_email, TABLE).rule_id == "delivery"


def test_the_least_loaded_available_assignee() -> None:
    refund = case("refund")
    load = {"fin-1": 5, "fin-2": 2, "fin-3": 2}
    decision = dispatch(T, refund, TABLE, open_cases=load)
    assert (decision.assignee, decision.load) == ("fin-2", 2)  # a tie goes to the earlier
    decision = dispatch(T, refund, TABLE, open_cases=load, unavailable={"fin-2"})
    assert (decision.assignee, decision.load) == ("fin-3", 2)
    decision = dispatch(T, refund, TABLE, open_cases={"fin-1": 1})
    assert (decision.assignee, decision.load) == ("fin-2", 0)  # nobody's count is zero
    nobody = dispatch(T, refund, TABLE, unavailable={"fin-1", "fin-2", "fin-3"})
    assert (nobody.department, nobody.assignee, nobody.load) == ("finance", "", None)


def test_the_default_when_no_rule_matches() -> None:
    decision = dispatch(T, case("where is my invoice"), TABLE, open_cases={"desk-1": 3})
    assert (decision.rule_id, decision.department, decision.assignee, decision.reasons) == (
        DEFAULT_RULE,
        "front-desk",
        "desk-2",
        (),
    )
    assert decision.tenant_id == T and decision.case_id == "c-1"


def test_tables_and_tenants_are_checked() -> None:
    with pytest.raises(Invalid, match="same id"):
        DispatchTable(T, [DispatchRule(T, "a", "d"), DispatchRule(T, "a", "e")], "x")
    with pytest.raises(Invalid, match="another tenant"):
        DispatchTable(T, [DispatchRule(OTHER, "a", "d")], "x")
    with pytest.raises(Invalid, match="keyword"):
        DispatchRule(T, "a", "d", keywords=(" ",))
    with pytest.raises(NotFound):
        dispatch(OTHER, case(), TABLE)
    other_case = open_case(OTHER, "c-9", actor="ivr", at=sh("2026-03-02", "10:00")).case
    with pytest.raises(Invalid, match="another tenant"):
        dispatch(OTHER, other_case, TABLE)
