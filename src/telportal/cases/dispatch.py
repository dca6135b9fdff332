"""Dispatch: which department and which person a new case goes to (MISSION M11).

A tenant's `DispatchTable` is an ordered list of rules and a default. The **first rule
that matches wins**; none matching gives the default. A rule matches when every
criterion it names holds (criteria left empty match anything):

    criterion        holds when
    ---------------  --------------------------------------------------------------------
    services         the case's service is one of them
    categories       the case's category is one of them
    regions          the case's region is one of them
    keywords         any keyword occurs in the subject or the description (see below)
    min_importance   the customer's importance level is at least this

**Keywords** are compared after Unicode NFKC folding and case folding, so `Refund`,
`REFUND` and the full-width letters (U+FF21...) that Chinese input methods type are
one word.
A keyword of Latin letters and digits must stand alone (`bill` does not match `billing`;
`refund` matches `申请refund退款`, since Chinese characters are not letters of a word);
any other keyword, such as `退款`, matches wherever it occurs: Chinese text has no spaces.

**The assignee** is the least loaded of the rule's assignees who are available: the
fewest open cases in `open_cases` (absent counts as zero), ties going to the earlier
in the rule's list. With no assignee available (or none listed) the case goes to the
department unassigned, where the "unassigned" escalation watches it.
"""

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from telportal.cases.lifecycle import Case
from telportal.errors import Invalid, NotFound

DEFAULT_RULE = ""
"""The `rule_id` of a decision made by the table's default."""


def fold(text: str) -> str:
    """Text as keywords are compared: NFKC (full-width to ASCII) and case folded."""
    return unicodedata.normalize("NFKC", text).casefold()


_WORDLIKE = re.compile(r"^[0-9a-z][0-9a-z _'.-]*$")


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    folded = fold(keyword).strip()
    if not folded:
        raise Invalid("keywords", "a keyword cannot be empty")
    if _WORDLIKE.match(folded):
        # Not inside a longer Latin word or number; CJK around it is fine.
        return re.compile(rf"(?<![0-9a-z]){re.escape(folded)}(?![0-9a-z])")
    return re.compile(re.escape(folded))


@dataclass(frozen=True, slots=True)
class DispatchRule:
    tenant_id: str
    rule_id: str
    department: str
    assignees: tuple[str, ...] = ()
    services: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    min_importance: int | None = None
    _patterns: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.rule_id:
            raise Invalid("rule_id", "a dispatch rule needs an id")
        # Compiled once per rule, not per case.
        object.__setattr__(self, "_patterns", tuple(_keyword_pattern(k) for k in self.keywords))

    def why(self, case: Case, importance: int, text: str) -> tuple[str, ...] | None:
        """The criteria that matched (for the decision record), or None when one fails."""
        reasons: list[str] = []
        for name, values, value in (
            ("service", self.services, case.service),
            ("category", self.categories, case.category),
            ("region", self.regions, case.region),
        ):
            if values:
                if value not in values:
                    return None
                reasons.append(f"{name}={value}")
        if self._patterns:
            hit = next(
                (k for k, p in zip(self.keywords, self._patterns, strict=True) if p.search(text)),
                None,
            )
            if hit is None:
                return None
            reasons.append(f"keyword={hit}")
        if self.min_importance is not None:
            if importance < self.min_importance:
                return None
            reasons.append(f"importance>={self.min_importance}")
        return tuple(reasons)


@dataclass(frozen=True, slots=True)
class DispatchTable:
    tenant_id: str
    rules: Sequence[DispatchRule]
    default_department: str
    default_assignees: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = [r.rule_id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise Invalid("rules", "two dispatch rules have the same id")
        if any(r.tenant_id != self.tenant_id for r in self.rules):
            raise Invalid("rules", f"a rule of another tenant in {self.tenant_id}'s table")


@dataclass(frozen=True, slots=True)
class DispatchDecision:
    tenant_id: str
    case_id: str
    department: str
    assignee: str
    """Empty: to the department, nobody named (no assignee listed or available)."""
    rule_id: str
    """The rule that matched; DEFAULT_RULE for the default."""
    reasons: tuple[str, ...]
    """What matched (`category=billing`, `keyword=退款`, ...); empty for the default."""
    load: int | None
    """The chosen assignee's open cases when chosen."""


def dispatch(
    tenant_id: str,
    case: Case,
    table: DispatchTable,
    *,
    importance: int = 0,
    open_cases: Mapping[str, int] | None = None,
    unavailable: Collection[str] = (),
) -> DispatchDecision:
    """Route a case: first matching rule, else the default; the least loaded assignee."""
    if case.tenant_id != tenant_id:
        raise NotFound("case")
    if table.tenant_id != tenant_id:
        raise Invalid("table", "the dispatch table belongs to another tenant")
    text = fold(f"{case.subject}\n{case.description}")
    load = open_cases or {}
    for rule in table.rules:
        reasons = rule.why(case, importance, text)
        if reasons is not None:
            assignee, count = _least_loaded(rule.assignees, load, unavailable)
            return DispatchDecision(
                tenant_id, case.case_id, rule.department, assignee, rule.rule_id, reasons, count
            )
    assignee, count = _least_loaded(table.default_assignees, load, unavailable)
    return DispatchDecision(
        tenant_id, case.case_id, table.default_department, assignee, DEFAULT_RULE, (), count
    )


def _least_loaded(
    assignees: Sequence[str], load: Mapping[str, int], unavailable: Collection[str]
) -> tuple[str, int | None]:
    best: tuple[int, int, str] | None = None
    for position, assignee in enumerate(assignees):
        if assignee in unavailable:
            continue
        candidate = (load.get(assignee, 0), position, assignee)
        if best is None or candidate < best:
            best = candidate
    return ("", None) if best is None else (best[2], best[0])
