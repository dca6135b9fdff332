"""Live statistics per queue and per agent: counters for the day, figures for now.

Pure accumulation: the distributor calls the tallies as events happen, and a snapshot
is a plain frozen dataclass. "The day" is whatever the caller says it is: it calls
`Distributor.start_day(tenant_id)` at the tenant's midnight, since only the caller
knows the tenant's time zone.

Definitions (they differ between products, so here they are):
- service level = contacts answered within the queue's threshold / (answered +
  abandoned); callbacks cancelled and overflows are left out;
- handle time = talk time + wrap-up time, counted when the wrap-up ends;
- answer wait = time from entering the queue to the agent's answer.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from telportal.acd.agents import AgentState


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def service_level(answered_in_time: int, answered: int, abandoned: int) -> float | None:
    """Share of contacts served in time; None before any contact has been answered or lost."""
    return ratio(answered_in_time, answered + abandoned)


class QueueTally:
    __slots__ = (
        "abandoned",
        "answer_wait_total",
        "answered",
        "answered_in_time",
        "callbacks",
        "callbacks_cancelled",
        "entered",
        "handled",
        "longest_answer_wait",
        "overflowed",
        "talk_total",
        "wrap_total",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.entered = 0
        self.answered = 0
        self.answered_in_time = 0
        self.abandoned = 0
        self.overflowed = 0
        self.callbacks = 0
        self.callbacks_cancelled = 0
        self.handled = 0
        self.answer_wait_total = 0.0
        self.longest_answer_wait = 0.0
        self.talk_total = 0.0
        self.wrap_total = 0.0

    def answer(self, wait: float, threshold: float) -> None:
        self.answered += 1
        if wait <= threshold:
            self.answered_in_time += 1
        self.answer_wait_total += wait
        self.longest_answer_wait = max(self.longest_answer_wait, wait)

    def handle(self, talk: float, wrap: float) -> None:
        self.handled += 1
        self.talk_total += talk
        self.wrap_total += wrap


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    tenant_id: str
    queue_id: str
    # now
    waiting: int
    ringing: int
    talking: int
    longest_wait: float
    agents_free: int
    agents_staffed: int
    # today
    entered: int
    answered: int
    answered_in_time: int
    abandoned: int
    overflowed: int
    callbacks: int
    callbacks_cancelled: int
    handled: int
    service_level_seconds: float
    service_level: float | None
    average_answer_wait: float | None
    longest_answer_wait: float
    average_talk_time: float | None
    average_handle_time: float | None


def queue_snapshot(
    tenant_id: str,
    queue_id: str,
    tally: QueueTally,
    *,
    waiting: int,
    ringing: int,
    talking: int,
    longest_wait: float,
    agents_free: int,
    agents_staffed: int,
    service_level_seconds: float,
) -> QueueSnapshot:
    return QueueSnapshot(
        tenant_id,
        queue_id,
        waiting=waiting,
        ringing=ringing,
        talking=talking,
        longest_wait=longest_wait,
        agents_free=agents_free,
        agents_staffed=agents_staffed,
        entered=tally.entered,
        answered=tally.answered,
        answered_in_time=tally.answered_in_time,
        abandoned=tally.abandoned,
        overflowed=tally.overflowed,
        callbacks=tally.callbacks,
        callbacks_cancelled=tally.callbacks_cancelled,
        handled=tally.handled,
        service_level_seconds=service_level_seconds,
        service_level=service_level(tally.answered_in_time, tally.answered, tally.abandoned),
        average_answer_wait=ratio(tally.answer_wait_total, tally.answered),
        longest_answer_wait=tally.longest_answer_wait,
        average_talk_time=ratio(tally.talk_total, tally.handled),
        average_handle_time=ratio(tally.talk_total + tally.wrap_total, tally.handled),
    )


class AgentTally:
    """One agent's day: calls and the time spent in each state."""

    __slots__ = (
        "answered",
        "entered_at",
        "handle_total",
        "handled",
        "missed",
        "offered",
        "since",
        "state",
        "state_seconds",
        "talk_total",
    )

    def __init__(self, state: AgentState, now: float) -> None:
        self.state = state
        self.since = now  # accounted up to here
        self.entered_at = now  # the present state began here
        self.state_seconds: dict[AgentState, float] = {}
        self.offered = 0
        self.answered = 0
        self.missed = 0
        self.handled = 0
        self.talk_total = 0.0
        self.handle_total = 0.0

    def enter(self, state: AgentState, now: float) -> None:
        if state is self.state:
            return
        self._close(now)
        self.state = state
        self.entered_at = now

    def _close(self, now: float) -> None:
        spent = max(now - self.since, 0.0)
        self.state_seconds[self.state] = self.state_seconds.get(self.state, 0.0) + spent
        self.since = now

    def reset(self, now: float) -> None:
        self.since = now
        self.state_seconds = {}
        self.offered = self.answered = self.missed = self.handled = 0
        self.talk_total = self.handle_total = 0.0

    def durations(self, now: float) -> dict[AgentState, float]:
        """Seconds per state today, the present state's running time included."""
        out = dict(self.state_seconds)
        out[self.state] = out.get(self.state, 0.0) + max(now - self.since, 0.0)
        return out


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    tenant_id: str
    agent_id: str
    state: AgentState
    reason: str | None
    in_state_for: float
    offered: int
    answered: int
    missed: int
    handled: int
    talk_time: float
    average_handle_time: float | None
    state_seconds: Mapping[AgentState, float]


def agent_snapshot(
    tenant_id: str, agent_id: str, reason: str | None, tally: AgentTally, now: float
) -> AgentSnapshot:
    return AgentSnapshot(
        tenant_id,
        agent_id,
        tally.state,
        reason,
        in_state_for=max(now - tally.entered_at, 0.0),
        offered=tally.offered,
        answered=tally.answered,
        missed=tally.missed,
        handled=tally.handled,
        talk_time=tally.talk_total,
        average_handle_time=ratio(tally.handle_total, tally.handled),
        state_seconds=tally.durations(now),
    )
