"""Skills with proficiency levels, and what a contact needs of them."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from telportal.errors import Invalid

MIN_LEVEL = 1
MAX_LEVEL = 10


@dataclass(frozen=True, slots=True, order=True)
class SkillNeed:
    """A skill a contact needs, at `min_level` or better."""

    skill: str
    min_level: int = MIN_LEVEL

    def __post_init__(self) -> None:
        if not self.skill:
            raise Invalid("skill", "a skill needs a name")
        if not MIN_LEVEL <= self.min_level <= MAX_LEVEL:
            raise Invalid(self.skill, f"minimum level must be {MIN_LEVEL}-{MAX_LEVEL}")


Needs = frozenset[SkillNeed]


def needs_of(*groups: Iterable[SkillNeed | str]) -> Needs:
    """One set of needs from several (the queue's and the contact's).

    A skill named twice keeps the higher minimum, so equal requirements written two
    ways fall into the same pool of agents.
    """
    best: dict[str, int] = {}
    for group in groups:
        for item in group:
            need = SkillNeed(item) if isinstance(item, str) else item
            if need.min_level > best.get(need.skill, 0):
                best[need.skill] = need.min_level
    return frozenset(SkillNeed(skill, level) for skill, level in best.items())


def meets(levels: Mapping[str, int], needs: Needs) -> bool:
    return all(levels.get(need.skill, 0) >= need.min_level for need in needs)


def proficiency(levels: Mapping[str, int], needs: Needs) -> int:
    """The skills-weighted score: the agent's levels summed over what is needed."""
    return sum(levels.get(need.skill, 0) for need in needs)


def check_levels(levels: Mapping[str, int]) -> None:
    for skill, level in levels.items():
        if not MIN_LEVEL <= level <= MAX_LEVEL:
            raise Invalid(skill, f"level must be {MIN_LEVEL}-{MAX_LEVEL}, not {level}")
