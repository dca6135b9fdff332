"""Who is told about a case's alarm: pure rules over the tenant's people.

The store has no "supervisor of" relation: users have a role and a department, and
departments form a tree (`parent_id`). So an agent's supervisors are found by place:

    1. the enabled users with the role `supervisor` in the assignee's department, else
       in the nearest department above it that has any;
    2. if that finds nobody (no assignee, or no department on the way up has a
       supervisor), the same search from the case's own department;
    3. if that finds nobody either, every enabled supervisor of the tenant, so that an
       alarm is never told to nobody.

An SLA alarm (warning or breach) goes to the assignee and their supervisors. An
escalation step goes to whom the step names: `assignee`, `supervisor` (as above),
`manager` or `tenant_admin` (the tenant's administrators), or a user by username or
id; after a step with `reassign` that user is the new owner. Each person is told once,
with the first reason that applies. The caller passes only the case's tenant's users:
that is the tenant isolation, and these functions never widen it.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    ASSIGNEE = "assignee"
    SUPERVISOR = "supervisor"
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class Person:
    user_id: str
    username: str
    display_name: str
    email: str | None
    role: str
    department_id: str | None
    enabled: bool = True
    language: str | None = None
    """The person's own language; users have none in the store yet, so None today."""


@dataclass(frozen=True, slots=True)
class Addressee:
    person: Person
    reason: Reason


MANAGER_ROLES = frozenset({"manager", "tenant_admin"})


def _by_username(people: Iterable[Person], name: str) -> Person | None:
    return next((p for p in people if p.enabled and name in (p.username, p.user_id)), None)


def _supervisors_in(
    people: Sequence[Person], department_id: str | None, parents: Mapping[str, str | None]
) -> list[Person]:
    seen: set[str] = set()  # a cycle in the tree must not loop forever
    while department_id is not None and department_id not in seen:
        seen.add(department_id)
        found = [
            p
            for p in people
            if p.enabled and p.role == "supervisor" and p.department_id == department_id
        ]
        if found:
            return found
        department_id = parents.get(department_id)
    return []


def supervisors_of(
    people: Sequence[Person],
    assignee: str,
    case_department_id: str | None,
    parents: Mapping[str, str | None],
) -> list[Person]:
    """The supervisors of the assignee (or of the case's department); see the module."""
    owner = _by_username(people, assignee) if assignee else None
    for start in (owner.department_id if owner else None, case_department_id):
        found = _supervisors_in(people, start, parents)
        if found:
            return found
    return [p for p in people if p.enabled and p.role == "supervisor"]


def _once(pairs: Iterable[tuple[Person | None, Reason]]) -> list[Addressee]:
    out: list[Addressee] = []
    seen: set[str] = set()
    for person, reason in pairs:
        if person is None or not person.enabled or person.user_id in seen:
            continue
        seen.add(person.user_id)
        out.append(Addressee(person, reason))
    return out


def alert_addressees(
    people: Sequence[Person],
    assignee: str,
    case_department_id: str | None,
    parents: Mapping[str, str | None],
) -> list[Addressee]:
    """An SLA warning or breach: the assignee first, then their supervisors."""
    owner = _by_username(people, assignee) if assignee else None
    return _once(
        [
            (owner, Reason.ASSIGNEE),
            *(
                (p, Reason.SUPERVISOR)
                for p in supervisors_of(people, assignee, case_department_id, parents)
            ),
        ]
    )


def escalation_addressees(
    people: Sequence[Person],
    notify: str,
    assignee: str,
    case_department_id: str | None,
    parents: Mapping[str, str | None],
) -> list[Addressee]:
    """An escalation step: whom `notify` names (a role, or a user: the new owner)."""
    if notify == "assignee":
        owner = _by_username(people, assignee) if assignee else None
        return _once([(owner, Reason.ASSIGNEE)])
    if notify == "supervisor":
        found = supervisors_of(people, assignee, case_department_id, parents)
        return _once((p, Reason.SUPERVISOR) for p in found)
    if notify in MANAGER_ROLES:
        return _once((p, Reason.ESCALATION) for p in people if p.role == "tenant_admin")
    return _once([(_by_username(people, notify), Reason.ESCALATION)])
