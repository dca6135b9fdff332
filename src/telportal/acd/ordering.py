"""A sorted list of keys: the waiting lists and the ready-agent lists.

Keys are tuples that end in a unique id, so two keys are never equal unless they
are the same entry. A plain list kept in order with `bisect` beats a tree here: a
routing decision reads the first key, and inserting or removing moves at most a
few thousand pointers with one memmove, which costs microseconds.
"""

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=tuple[Any, ...])


class SortedKeys(Generic[K]):
    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[K] = []

    def add(self, key: K) -> None:
        insort(self._items, key)

    def remove(self, key: K) -> None:
        items = self._items
        index = bisect_left(items, key)
        if index == len(items) or items[index] != key:
            raise KeyError(key)
        del items[index]

    def first(self) -> K | None:
        return self._items[0] if self._items else None

    def first_at_or_after(self, key: K) -> K | None:
        """The first key not below `key`, wrapping round to the first key."""
        items = self._items
        if not items:
            return None
        index = bisect_left(items, key)
        return items[index] if index < len(items) else items[0]

    def rank(self, key: K) -> int:
        """How many keys sort before `key`."""
        return bisect_left(self._items, key)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)
