"""The resource view: which service center should take a new contact (MISSION M5, M6).

Each center publishes its live figures per skill; this choice is a pure function of
them, so every access site given the same figures makes the same choice.

    1. Only centers that accept contacts and have staffed agents for every needed
       skill are considered; none: no center (the caller falls back).
    2. A center with a free agent for the needs (more free agents than contacts
       already waiting for them): the local one if it is among them, so local calls
       stay local; else the one with the most free agents.
    3. Otherwise the shortest expected wait: fewest waiting contacts per staffed
       agent, then the shortest longest-wait, the local center winning ties.

A contact needing several skills is judged by its scarcest skill (fewest free
agents, most waiting), since per-skill figures cannot say how many agents have all.
Remaining ties go to the lower center id, so the choice never depends on the order
the figures came in.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class SkillLoad:
    free_agents: int = 0
    staffed_agents: int = 0
    waiting: int = 0
    longest_wait: float = 0.0


@dataclass(frozen=True, slots=True)
class CenterFigures:
    center_id: str
    total: SkillLoad
    """All agents and contacts of the center, whatever the skill."""
    skills: Mapping[str, SkillLoad] = field(default_factory=dict)
    local: bool = False
    accepting: bool = True


CenterReason = Literal[
    "no_center_staffed", "local_center_free", "most_free_agents", "shortest_wait"
]


@dataclass(frozen=True, slots=True)
class CenterChoice:
    tenant_id: str
    center_id: str | None
    reason: CenterReason
    load: SkillLoad | None
    """The chosen center's figures for the needs."""
    considered: int


def load_for(center: CenterFigures, needed_skills: Sequence[str]) -> SkillLoad | None:
    """The center's figures for these needs, or None if some needed skill is not staffed."""
    if not needed_skills:
        return center.total if center.total.staffed_agents > 0 else None
    loads = [center.skills.get(skill) for skill in needed_skills]
    present = [load for load in loads if load is not None and load.staffed_agents > 0]
    if len(present) != len(loads):
        return None
    return SkillLoad(
        free_agents=min(load.free_agents for load in present),
        staffed_agents=min(load.staffed_agents for load in present),
        waiting=max(load.waiting for load in present),
        longest_wait=max(load.longest_wait for load in present),
    )


def choose_center(
    tenant_id: str, needed_skills: Iterable[str], centers: Iterable[CenterFigures]
) -> CenterChoice:
    needs = sorted(set(needed_skills))
    candidates: list[tuple[CenterFigures, SkillLoad]] = []
    for center in sorted(centers, key=lambda c: c.center_id):
        if not center.accepting:
            continue
        load = load_for(center, needs)
        if load is not None:
            candidates.append((center, load))
    if not candidates:
        return CenterChoice(tenant_id, None, "no_center_staffed", None, 0)

    with_free = [(c, load) for c, load in candidates if load.free_agents > load.waiting]
    if with_free:
        local = [(c, load) for c, load in with_free if c.local]
        if local:
            center, load = local[0]
            return CenterChoice(
                tenant_id, center.center_id, "local_center_free", load, len(candidates)
            )
        center, load = max(with_free, key=lambda item: item[1].free_agents - item[1].waiting)
        return CenterChoice(tenant_id, center.center_id, "most_free_agents", load, len(candidates))

    def backlog(item: tuple[CenterFigures, SkillLoad]) -> tuple[float, float, bool]:
        center, load = item
        return (load.waiting / load.staffed_agents, load.longest_wait, not center.local)

    center, load = min(candidates, key=backlog)
    return CenterChoice(tenant_id, center.center_id, "shortest_wait", load, len(candidates))
