"""Expected wait and position from recent history."""

import pytest

from telportal.acd import IllegalTransition, RecentDurations, estimate_wait, expected_wait
from tests.unit.acd.support import T, agent, make, staffed


def test_recent_durations_average_over_a_window() -> None:
    recent = RecentDurations(window_seconds=100.0, max_samples=3)
    assert recent.average(0.0) is None
    recent.add(0.0, 10.0)
    recent.add(50.0, 20.0)
    assert recent.average(60.0) == 15.0
    assert recent.average(120.0) == 20.0  # the first sample left the window
    recent.add(121.0, 30.0)
    recent.add(122.0, 40.0)
    recent.add(123.0, 50.0)  # the cap drops the oldest (20)
    assert len(recent) == 3
    assert recent.average(123.0) == 40.0
    assert recent.average(1000.0) is None
    with pytest.raises(ValueError, match="window"):
        RecentDurations(window_seconds=0)


def test_expected_wait_is_position_times_handle_time_over_agents() -> None:
    assert expected_wait(1, 1, 120.0) == 120.0
    assert expected_wait(6, 3, 120.0) == 240.0
    with pytest.raises(ValueError, match="positions start at 1"):
        expected_wait(0, 1, 10.0)
    with pytest.raises(ValueError, match="serving agent"):
        expected_wait(1, 0, 10.0)


def test_estimate_falls_back_to_answered_waits_then_to_unknown() -> None:
    assert estimate_wait(4, 2, 60.0, 10.0).expected_wait == 120.0
    assert estimate_wait(4, 2, None, 10.0).basis == "answered_waits"
    assert estimate_wait(4, 2, None, 10.0).expected_wait == 10.0
    unknown = estimate_wait(4, 0, 60.0, 10.0)
    assert (unknown.position, unknown.expected_wait, unknown.basis) == (4, None, "unknown")


def test_distributor_estimate_uses_the_queues_recent_handle_times() -> None:
    clock, d = make()
    staffed(d, "a1", "a2", wrap_up=0.0)
    for contact_id in ("h1", "h2"):
        d.enqueue(T, contact_id, "sales")
    d.offer_accepted(T, "h1", "a1")
    d.offer_accepted(T, "h2", "a2")
    clock.advance(90)
    d.contact_ended(T, "h1")  # handle 90 s; a1 takes nothing (queue empty)
    clock.advance(60)
    d.contact_ended(T, "h2")  # handle 150 s
    d.not_ready(T, "a1", "x")
    d.not_ready(T, "a2", "x")
    d.ready(T, "a1")  # a1 free: the first contact goes to it
    for contact_id in ("c1", "c2", "c3", "c4"):
        d.enqueue(T, contact_id, "sales")
    estimate = d.estimate(T, "c4")
    # position 3 (c1 is ringing), one serving agent (a2 is not ready), 120 s average
    assert (estimate.position, estimate.basis) == (3, "handle_time")
    assert estimate.expected_wait == pytest.approx(3 * 120.0)
    d.ready(T, "a2")  # takes c2: c4 is now second of two waiting, with two agents
    assert d.estimate(T, "c4").expected_wait == pytest.approx(1 * 120.0)
    with pytest.raises(IllegalTransition, match="not waiting"):
        d.estimate(T, "c1")


def test_estimate_with_no_agent_serving() -> None:
    _, d = make()
    staffed(d)
    d.sign_in(agent("a1"))  # not ready
    d.enqueue(T, "c1", "sales")
    assert d.estimate(T, "c1").basis == "unknown"
