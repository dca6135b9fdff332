"""A thousand concurrent transactions on one layer: timer order and no leaks."""

import collections
import gc
import types
import weakref

import pytest

from telportal.sip import make_response
from telportal.sip.transaction import (
    Action,
    Deliver,
    Send,
    Terminated,
    Timeout,
    TransactionId,
    _Transaction,
    make_ack,
    server_transaction_id,
)
from telportal.timer_heap import TimerHeap
from tests.unit.sip.test_transaction_helpers import (
    UDP,
    Peer,
    advance_to,
    new_layer,
    only,
    request,
    respond,
    run_until,
)

COUNT = 1000
STAGGER = 0.001


def test_a_thousand_transactions_fire_their_timers_in_order_and_leave_nothing() -> None:
    layer, clock = new_layer()
    started: dict[str, list[TransactionId]] = {
        "INVITE client": [],
        "OPTIONS client": [],
        "INVITE server": [],
        "OPTIONS server": [],
    }
    created_at: dict[TransactionId, float] = {}
    for number in range(COUNT):
        kind = list(started)[number % 4]
        method, role = kind.split()
        branch = f"z9hG4bK-{number}"
        req = request(method, branch=branch, call_id=f"call-{number}")
        if role == "client":
            txn, _ = layer.send_request(req, UDP)
            if method == "OPTIONS":  # answered at once: Timer K only
                layer.receive(respond(req, 200), UDP, UDP.reliable)
        else:
            (delivered,) = only(layer.receive(req, UDP, UDP.reliable), Deliver)
            txn = delivered.transaction
            status = 486 if method == "INVITE" else 200
            layer.send_response(txn, make_response(req, status, to_tag=f"t{number}"))
            if method == "INVITE" and number % 8 == 2:  # half of them get their ACK
                layer.receive(
                    make_ack(req, make_response(req, 486, to_tag=f"t{number}")), UDP, UDP.reliable
                )
        started[kind].append(txn)
        created_at[txn] = clock.monotonic()
        clock.advance(STAGGER)
    assert len(layer) == COUNT

    timeline = run_until(layer, clock, 100.0)

    moments = [moment for moment, _ in timeline]
    assert moments == sorted(moments)
    timeouts = [
        (moment, action.transaction) for moment, action in timeline if isinstance(action, Timeout)
    ]
    # Timer B for every INVITE client, Timer H for the INVITE servers never ACKed, in order.
    unacked = [txn for number, txn in enumerate(started["INVITE server"]) if number % 2 == 1]
    expected = sorted(
        [(created_at[txn] + 32.0, txn) for txn in started["INVITE client"] + unacked],
        key=lambda item: item[0],
    )
    assert [txn for _, txn in timeouts] == [txn for _, txn in expected]
    for (moment, _), (due, _) in zip(timeouts, expected, strict=True):
        assert abs(moment - due) < 1e-9

    # Each INVITE client retransmitted on the Timer A schedule, relative to its start.
    first = started["INVITE client"][0]
    resent = [
        moment
        for moment, action in timeline
        if isinstance(action, Send) and action.transaction == first
    ]
    assert resent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]

    terminated = [action.transaction for _, action in timeline if isinstance(action, Terminated)]
    assert len(terminated) == COUNT
    assert len(set(terminated)) == COUNT
    assert (len(layer), layer.timer_count, layer.timer_heap_size) == (0, 0, 0)
    assert layer.next_deadline() is None


def test_a_late_tick_fires_everything_due_in_the_same_order() -> None:
    stepped, stepped_clock = new_layer()
    jumped, jumped_clock = new_layer()
    for layer, clock in ((stepped, stepped_clock), (jumped, jumped_clock)):
        for number in range(200):
            method = ("INVITE", "OPTIONS")[number % 2]
            layer.send_request(request(method, branch=f"z9hG4bK-{number}"), UDP)
            clock.advance(0.003)
    step_actions = [action for _, action in run_until(stepped, stepped_clock, 100.0)]
    advance_to(jumped_clock, 100.0)
    jump_actions: list[Action[Peer]] = jumped.tick()  # one tick, 100 s late
    assert jump_actions == step_actions
    assert len(jumped) == 0


def test_responses_cancel_timers_without_the_heap_growing() -> None:
    layer, clock = new_layer()
    invites = []
    for number in range(COUNT):
        invite = request("INVITE", branch=f"z9hG4bK-{number}")
        layer.send_request(invite, UDP)
        invites.append(invite)
    assert layer.timer_count == 2 * COUNT  # Timers A and B
    for invite in invites:
        layer.receive(respond(invite, 180), UDP, UDP.reliable)  # cancels A and B
        assert layer.timer_heap_size <= 2 * layer.timer_count + 2
    assert (len(layer), layer.timer_count, layer.timer_heap_size) == (COUNT, 0, 0)
    for invite in invites:
        layer.receive(respond(invite, 486), UDP, UDP.reliable)  # Timer D
    assert layer.timer_count == COUNT
    run_until(layer, clock, 40.0)
    assert (len(layer), layer.timer_count, layer.timer_heap_size) == (0, 0, 0)


def test_terminated_transactions_are_freed_before_their_cancelled_timers_surface() -> None:
    # Each OPTIONS arms Timer F for 32 s; its 200 cancels F and the transaction rests
    # until Timer K (5 s). Once K has fired they are gone, though their dead F entries
    # stay in the heap among live timers (unanswered INVITEs' A and B): those entries
    # must not keep them in memory.
    layer, clock = new_layer()
    for number in range(200):
        layer.send_request(request("INVITE", branch=f"z9hG4bK-unanswered{number}"), UDP)
    options = [request("OPTIONS", branch=f"z9hG4bK-o{number}") for number in range(100)]
    for each in options:
        layer.send_request(each, UDP)
    for each in options:
        layer.receive(respond(each, 200), UDP, UDP.reliable)
    run_until(layer, clock, 6.0)
    assert (len(layer), layer.timer_count) == (200, 400)  # the INVITEs' Timers A and B
    assert layer.timer_heap_size > layer.timer_count  # dead F entries are still there
    gc.collect()  # other tests' garbage, so that only references are counted
    ours = [
        obj
        for obj in gc.get_objects()
        if type(obj) is _Transaction and obj.id.branch.startswith("z9hG4bK-o")
    ]
    assert ours == []


def _tracked_within(root: object) -> list[object]:
    """The objects the garbage collector tracks among those root refers to, at any
    depth (classes, modules and functions not followed)."""
    seen: set[int] = set()
    tracked = []
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        if gc.is_tracked(obj):
            tracked.append(obj)
        todo += gc.get_referents(obj)
    return tracked


def test_calls_for_40_seconds_rest_where_the_collector_does_not_look() -> None:
    """Each 10 ms an INVITE answered 200 (Accepted: Timer L, 32 s) and a BYE of ours
    answered 200 (Completed: Timer K, 5 s). What they leave is what the collector would
    walk at load, so they rest as text, bytes and numbers (decision 0024): no
    transaction object, no heap entry, and a few dozen tracked objects for them all."""
    layer, clock = new_layer()
    terminated = 0
    for number in range(4000):
        clock.advance(0.01)
        terminated += len(only(layer.tick(), Terminated))
        invite = request("INVITE", branch=f"z9hG4bK-i{number}", call_id=f"rest-{number}")
        layer.receive(invite, UDP, UDP.reliable)
        layer.send_response(server_transaction_id(invite), make_response(invite, 200, to_tag="t"))
        bye = request("BYE", branch=f"z9hG4bK-b{number}", call_id=f"rest-{number}")
        layer.send_request(bye, UDP)
        layer.receive(respond(bye, 200), UDP, UDP.reliable)
    resting = len(layer)
    assert 3200 + 500 - 2 <= resting <= 3200 + 500 + 2  # 32 s of L, 5 s of K
    assert layer.resting == resting
    assert layer.timer_count == resting
    assert layer.timer_heap_size == 0  # F's cancelled entries compacted away
    assert terminated == 8000 - resting
    gc.collect()
    assert collections.Counter(type(obj) for obj in gc.get_objects())[_Transaction] == 0
    assert len(_tracked_within(layer._rest)) <= 40

    # They still end on time, in order: an INVITE 32 s after its 200, a BYE 5 s after.
    timeline = run_until(layer, clock, 80.0)
    ended = [(moment, action.transaction) for moment, action in timeline]
    assert len(ended) == resting
    assert [moment for moment, _ in ended] == sorted(moment for moment, _ in ended)
    last_invite = server_transaction_id(
        request("INVITE", branch="z9hG4bK-i3999", call_id="rest-3999")
    )
    assert (pytest.approx(40.0 + 32.0), last_invite) in ended
    assert (len(layer), layer.timer_count, layer.next_deadline()) == (0, 0, None)


def test_timer_heap_lets_go_of_a_cancelled_payload() -> None:
    class Payload:
        pass

    heap: TimerHeap[Payload] = TimerHeap()
    payload = Payload()
    gone = weakref.ref(payload)
    entry = heap.push(30.0, payload)
    for deadline in (40.0, 41.0, 42.0, 43.0):  # keep the dead entry from compaction
        heap.push(deadline, Payload())
    del payload
    assert entry.payload is gone()
    heap.cancel(entry)
    assert gone() is None
    assert heap.size == 5
    with pytest.raises(LookupError):
        _ = entry.payload


def test_timer_heap_orders_by_deadline_then_arming_order() -> None:
    heap: TimerHeap[str] = TimerHeap()
    heap.push(2.0, "b")
    heap.push(1.0, "a1")
    heap.push(1.0, "a2")
    late = heap.push(3.0, "c")
    assert heap.next_deadline() == 1.0
    heap.cancel(late)
    heap.cancel(late)  # twice is harmless
    popped = []
    while (entry := heap.pop_due(10.0)) is not None:
        popped.append(entry.payload)
    assert popped == ["a1", "a2", "b"]
    assert (len(heap), heap.size, heap.next_deadline()) == (0, 0, None)


def test_timer_heap_does_not_fire_early_and_compacts_cancelled_entries() -> None:
    heap: TimerHeap[int] = TimerHeap()
    entries = [heap.push(float(number), number) for number in range(1, 1001)]
    assert heap.pop_due(0.5) is None
    for entry in entries[:-1]:
        heap.cancel(entry)
        assert 3 * heap.size <= 4 * len(heap) + 3  # at most a quarter dead
    assert len(heap) == 1
    assert heap.next_deadline() == 1000.0
    last = heap.pop_due(1000.0)
    assert last is not None
    assert last.payload == 1000
    assert (len(heap), heap.size) == (0, 0)
