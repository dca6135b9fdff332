"""The two small structures under the distributor: sorted keys and the timer heap."""

import pytest

from telportal.acd.ordering import SortedKeys
from telportal.acd.timers import TimerHeap


def test_sorted_keys() -> None:
    keys: SortedKeys[tuple[int, str]] = SortedKeys()
    assert keys.first() is None
    assert keys.first_at_or_after((0, "")) is None
    for key in [(3, "c"), (1, "a"), (2, "b")]:
        keys.add(key)
    assert list(keys) == [(1, "a"), (2, "b"), (3, "c")]
    assert keys.first() == (1, "a")
    assert keys.rank((3, "c")) == 2
    assert keys.first_at_or_after((2, "")) == (2, "b")
    assert keys.first_at_or_after((4, "")) == (1, "a")  # wraps round
    keys.remove((2, "b"))
    assert len(keys) == 2
    with pytest.raises(KeyError):
        keys.remove((2, "b"))


def test_timer_heap_cancels_and_fires_in_order() -> None:
    heap: TimerHeap[str] = TimerHeap()
    late = heap.push(10.0, "late")
    heap.push(5.0, "first")
    heap.push(5.0, "second")
    gone = heap.push(1.0, "gone")
    heap.cancel(gone)
    heap.cancel(gone)
    heap.cancel(None)
    assert len(heap) == 3
    assert heap.next_deadline() == 5.0
    assert heap.pop_due(4.9) is None
    fired = []
    while (entry := heap.pop_due(5.0)) is not None:
        fired.append(entry.payload)
    assert fired == ["first", "second"]
    heap.cancel(late)
    assert heap.next_deadline() is None
    assert len(heap) == 0
