"""Agent selection: the order a queue's strategy puts free agents in, and the pick.

Each pool keeps its free agents sorted by a key made here, so the pick is the
first key (or, for round robin, the first after the last agent offered):

    strategy          key (smallest first)                          picks
    ----------------  --------------------------------------------  -------------------------
    longest idle      free since                                    the longest free
    least calls       calls answered today, free since              the fewest calls today
    skills weighted   -(levels summed over the pool's needs),       the most proficient
                      free since
    round robin       the agent's order in the tenant               the next after the last
                                                                    one offered, wrapping
    ring all          free since                                    all of them

"Free since" is when the agent last became free to take a contact (end of wrap-up,
going ready). Every key ends in the agent's order and id, so ties are stable and
keys are unique.
"""

from telportal.acd.agents import Agent, AgentKey
from telportal.acd.ordering import SortedKeys
from telportal.acd.queues import Strategy
from telportal.acd.skills import Needs, proficiency

_BEFORE_ALL = float("-inf")


def agent_key(strategy: Strategy, agent: Agent, needs: Needs) -> AgentKey:
    since = agent.available_since
    if strategy is Strategy.LEAST_CALLS:
        return (float(agent.calls_today), since, agent.order, agent.agent_id)
    if strategy is Strategy.SKILLS_WEIGHTED:
        score = proficiency(agent.profile.skills, needs)
        return (-float(score), since, agent.order, agent.agent_id)
    if strategy is Strategy.ROUND_ROBIN:
        return (float(agent.order), 0.0, agent.order, agent.agent_id)
    return (since, 0.0, agent.order, agent.agent_id)


def pick(strategy: Strategy, ready: SortedKeys[AgentKey], last_order: int) -> AgentKey | None:
    """The one agent to offer to (for ring all: the first of them)."""
    if strategy is Strategy.ROUND_ROBIN:
        return ready.first_at_or_after((float(last_order + 1), _BEFORE_ALL, -1, ""))
    return ready.first()
