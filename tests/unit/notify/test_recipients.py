"""Who is told: the assignee, their supervisors found by department, whom a step names."""

from telportal.notify.recipients import (
    Person,
    Reason,
    alert_addressees,
    escalation_addressees,
    supervisors_of,
)

# A small company: sales (with its own supervisor) under "front"; care has none, and its
# parent "service" has one; a supervisor of no department; an admin.
PARENTS: dict[str, str | None] = {
    "sales": "front",
    "front": None,
    "care": "service",
    "service": None,
}
PEOPLE = [
    Person("u1", "1001", "Li Lei", "li@x.test", "agent", "sales"),
    Person("u2", "1002", "Han Mei", "han@x.test", "agent", "care"),
    Person("u3", "1003", "Wang", None, "agent", None),
    Person("s1", "sales-sup", "Sales Sup", "ss@x.test", "supervisor", "sales"),
    Person("s2", "svc-sup", "Service Sup", "vs@x.test", "supervisor", "service"),
    Person("s3", "floating", "Floating Sup", "fs@x.test", "supervisor", None),
    Person("s4", "gone", "Gone Sup", "gs@x.test", "supervisor", "sales", enabled=False),
    Person("a1", "boss", "Boss", "boss@x.test", "tenant_admin", None),
]


def names(found: list[Person]) -> list[str]:
    return [p.username for p in found]


def test_the_supervisor_of_the_assignees_department_disabled_ones_left_out() -> None:
    assert names(supervisors_of(PEOPLE, "1001", None, PARENTS)) == ["sales-sup"]


def test_a_department_without_supervisor_looks_up_the_tree() -> None:
    assert names(supervisors_of(PEOPLE, "1002", None, PARENTS)) == ["svc-sup"]


def test_no_department_on_the_assignee_uses_the_cases_then_everyone() -> None:
    assert names(supervisors_of(PEOPLE, "1003", "care", PARENTS)) == ["svc-sup"]
    assert names(supervisors_of(PEOPLE, "1003", None, PARENTS)) == [
        "sales-sup", "svc-sup", "floating",
    ]  # fmt: skip
    assert names(supervisors_of(PEOPLE, "", "sales", PARENTS)) == ["sales-sup"]


def test_a_cycle_in_the_department_tree_does_not_hang() -> None:
    looped = {"a": "b", "b": "a"}
    agent = Person("u9", "9", "", None, "agent", "a")
    only = [agent, Person("s9", "s", "", None, "supervisor", None)]
    assert names(supervisors_of(only, "9", None, looped)) == ["s"]


def test_an_alert_goes_to_the_assignee_then_their_supervisors_each_once() -> None:
    found = alert_addressees(PEOPLE, "1001", None, PARENTS)
    assert [(a.person.username, a.reason) for a in found] == [
        ("1001", Reason.ASSIGNEE),
        ("sales-sup", Reason.SUPERVISOR),
    ]
    # A supervisor who holds the case is told once, as its assignee.
    found = alert_addressees(PEOPLE, "sales-sup", None, PARENTS)
    assert [(a.person.username, a.reason) for a in found] == [("sales-sup", Reason.ASSIGNEE)]


def test_an_unassigned_case_alerts_the_supervisors_of_its_department() -> None:
    found = alert_addressees(PEOPLE, "", "care", PARENTS)
    assert [(a.person.username, a.reason) for a in found] == [("svc-sup", Reason.SUPERVISOR)]


def test_an_escalation_tells_whom_the_step_names() -> None:
    def told(notify: str, assignee: str = "1001") -> list[tuple[str, Reason]]:
        found = escalation_addressees(PEOPLE, notify, assignee, None, PARENTS)
        return [(a.person.username, a.reason) for a in found]

    assert told("supervisor") == [("sales-sup", Reason.SUPERVISOR)]
    assert told("assignee") == [("1001", Reason.ASSIGNEE)]
    assert told("assignee", assignee="") == []
    assert told("manager") == [("boss", Reason.ESCALATION)]
    assert told("1002") == [("1002", Reason.ESCALATION)]  # a user: by username
    assert told("s2") == [("svc-sup", Reason.ESCALATION)]  # or by id
    assert told("gone") == []  # a disabled user is not told
    assert told("nobody-here") == []
