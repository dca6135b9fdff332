"""Choosing the service center for a new contact from each center's live figures."""

from telportal.acd import CenterFigures, SkillLoad, choose_center
from tests.unit.acd.support import T, agent, make, queue


def center(
    center_id: str, *, local: bool = False, accepting: bool = True, **skills: SkillLoad
) -> CenterFigures:
    total = SkillLoad(
        free_agents=sum(s.free_agents for s in skills.values()),
        staffed_agents=sum(s.staffed_agents for s in skills.values()),
        waiting=sum(s.waiting for s in skills.values()),
    )
    return CenterFigures(center_id, total, skills, local=local, accepting=accepting)


def test_the_local_center_wins_when_it_has_a_free_agent() -> None:
    centers = [
        center("beijing", sales=SkillLoad(9, 10, 0, 0.0)),
        center("shanghai", local=True, sales=SkillLoad(1, 10, 0, 0.0)),
    ]
    choice = choose_center(T, ["sales"], centers)
    assert (choice.tenant_id, choice.center_id, choice.reason) == (
        T,
        "shanghai",
        "local_center_free",
    )
    assert choice.considered == 2


def test_otherwise_the_center_with_the_most_free_agents() -> None:
    centers = [
        center("a", sales=SkillLoad(2, 10, 0, 0.0)),
        center("b", sales=SkillLoad(5, 10, 0, 0.0)),
        center("c", local=True, sales=SkillLoad(0, 10, 3, 40.0)),
    ]
    choice = choose_center(T, ["sales"], centers)
    assert (choice.center_id, choice.reason) == ("b", "most_free_agents")
    assert choice.load == SkillLoad(5, 10, 0, 0.0)


def test_when_nobody_is_free_the_shortest_expected_wait() -> None:
    centers = [
        center("a", sales=SkillLoad(0, 10, 20, 60.0)),  # 2 per agent
        center("b", sales=SkillLoad(0, 4, 4, 90.0)),  # 1 per agent
        center("c", sales=SkillLoad(0, 8, 8, 30.0)),  # 1 per agent, shorter longest wait
    ]
    choice = choose_center(T, ["sales"], centers)
    assert (choice.center_id, choice.reason) == ("c", "shortest_wait")


def test_only_centers_staffed_for_every_needed_skill_and_accepting() -> None:
    centers = [
        center("a", sales=SkillLoad(5, 5, 0, 0.0)),  # no french
        center("b", accepting=False, sales=SkillLoad(5, 5), french=SkillLoad(5, 5)),
        center("c", sales=SkillLoad(0, 2, 1, 10.0), french=SkillLoad(1, 1, 0, 0.0)),
    ]
    choice = choose_center(T, ["sales", "french"], centers)
    # c is judged by its scarcest skill: sales has no free agent
    assert (choice.center_id, choice.reason) == ("c", "shortest_wait")
    assert choice.load == SkillLoad(free_agents=0, staffed_agents=1, waiting=1, longest_wait=10.0)
    assert choose_center(T, ["german"], centers).reason == "no_center_staffed"
    assert choose_center(T, ["german"], centers).center_id is None


def test_no_needed_skills_uses_the_totals_and_order_does_not_matter() -> None:
    centers = [center("b", x=SkillLoad(3, 3)), center("a", y=SkillLoad(3, 3))]
    assert choose_center(T, [], centers).center_id == "a"
    assert choose_center(T, [], list(reversed(centers))).center_id == "a"


def test_center_figures_from_a_distributor() -> None:
    clock, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1", skills={"sales": 5, "french": 3}), ready=True)
    d.sign_in(agent("a2", skills={"sales": 5}), ready=True)
    d.sign_in(agent("a3", skills={"sales": 5}))  # not ready: not staffed
    d.enqueue(T, "c1", "sales")  # to a1
    d.enqueue(T, "c2", "sales")  # to a2
    d.enqueue(T, "c3", "sales", skills=["french"])
    clock.advance(12)
    figures = d.center_figures(T, "shanghai", local=True)
    assert (figures.center_id, figures.local) == ("shanghai", True)
    assert figures.total == SkillLoad(0, 2, 1, 12.0)
    assert figures.skills["sales"] == SkillLoad(0, 2, 0, 0.0)
    assert figures.skills["french"] == SkillLoad(0, 1, 1, 12.0)
    assert choose_center(T, ["french"], [figures]).reason == "shortest_wait"
