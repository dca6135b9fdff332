"""Transactions at rest: the ones left only waiting out one fixed timer.

Once a transaction has its final response, RFC 3261 and RFC 6026 keep it a while to
absorb retransmissions: an accepted INVITE for Timer L (64*T1, 32 s), a completed
non-INVITE server transaction for Timer J (32 s), a client one for Timer K (T4, 5 s),
and so on. At a thousand calls a second that is some 37,000 transactions, nearly all a
loaded SIP element holds. Held as objects they are what CPython's collector walks: it
counts allocations less deallocations, so once calls have run longer than the longest
timer, each young collection walks about all of them, and at load that stopped the
event loop for 150-200 ms (docs/benchmarks.md, session 13).

Here they are text, bytes and numbers in dictionaries keyed by text, none of which the
collector tracks (decision 0024). The transaction layer brings one back to life as an
object when anything names it again (a retransmission, the TU), which is rare.

Each resting state waits on one timer of one duration, so its transactions expire in
the order they came to rest: a queue per timer, not a heap.
"""

import math
from collections import deque
from typing import Final, Generic, TypeVar, cast

A = TypeVar("A")

# A resting key's meta number: its kind, whether its transport is reliable, and the
# slot of its address in the address book.
_KIND_BITS: Final = 3
_KIND_MASK: Final = (1 << _KIND_BITS) - 1
_RELIABLE: Final = 1 << _KIND_BITS
_SLOT_SHIFT: Final = _KIND_BITS + 1
_NEVER: Final = math.inf


class AddressBook(Generic[A]):
    """Addresses by number, held while resting transactions still need them.

    Known by identity, not by value: the transport hands the same object for every
    message from one peer, and hashing the adapter's frozen dataclasses runs Python
    code. Equal addresses that are distinct objects take a slot each, which is only
    memory, and a slot is freed when its last user lets go.
    """

    __slots__ = ("_addresses", "_free", "_slots", "_uses")

    def __init__(self) -> None:
        self._slots: dict[int, int] = {}
        self._addresses: list[object] = []
        self._uses: list[int] = []
        self._free: list[int] = []

    def hold(self, address: A) -> int:
        """The slot of address, with one more user."""
        slot = self._slots.get(id(address), -1)
        if slot < 0:
            if self._free:
                slot = self._free.pop()
                self._addresses[slot] = address
            else:
                slot = len(self._addresses)
                self._addresses.append(address)
                self._uses.append(0)
            self._slots[id(address)] = slot
        self._uses[slot] += 1
        return slot

    def release(self, slot: int) -> A:
        """The address in slot, with one user fewer."""
        address = self._addresses[slot]
        uses = self._uses[slot] - 1
        self._uses[slot] = uses
        if uses == 0:
            del self._slots[id(address)]
            self._addresses[slot] = None
            self._free.append(slot)
        return cast(A, address)

    def __len__(self) -> int:
        """Addresses held."""
        return len(self._slots)


class RestingTransactions(Generic[A]):
    """Resting transactions by key: kind (which timer), transport, address, bytes.

    The key is the transaction id as text; the kind is the transaction layer's number
    for the resting state and its timer; data is the message the state may send again
    (the final response of a server transaction, the ACK of an INVITE client one).
    """

    __slots__ = ("_addresses", "_data", "_deadlines", "_keys", "_meta", "_next", "_stale", "_until")

    def __init__(self, kinds: int) -> None:
        if not 0 < kinds <= _KIND_MASK + 1:
            raise ValueError(f"between 1 and {_KIND_MASK + 1} kinds, not {kinds}")
        self._meta: dict[str, int] = {}  # kind | reliable | address slot, see put
        self._data: dict[str, bytes] = {}
        self._until: dict[str, float] = {}
        # Per kind, in the order they came to rest: a deadline and the key it was for.
        # An entry whose key rests no more, or rests until another time, is stale.
        self._deadlines: list[deque[float]] = [deque() for _ in range(kinds)]
        self._keys: list[deque[str]] = [deque() for _ in range(kinds)]
        self._addresses: AddressBook[A] = AddressBook()
        # The earliest head deadline, asked for after every message the element
        # handles; worked out again only once a head may have gone (_stale).
        self._next = _NEVER
        self._stale = False

    def put(
        self,
        key: str,
        kind: int,
        reliable: bool,
        address: A,
        data: bytes,
        until: float,
    ) -> None:
        """Rest key until the given time.

        A key taken back and resting again until the same time is queued again: the
        first of its entries to come up ends it and the other is stale. Rare (only
        what named a resting transaction brings it back), and robust whatever became
        of the first entry meanwhile."""
        slot = self._addresses.hold(address)
        self._meta[key] = (slot << _SLOT_SHIFT) | (_RELIABLE if reliable else 0) | kind
        if data:
            self._data[key] = data
        self._until[key] = until
        deadlines = self._deadlines[kind]
        if not deadlines and until < self._next:
            self._next = until
        deadlines.append(until)
        self._keys[kind].append(key)

    def kind_of(self, key: str) -> int:
        """The kind key rests as; -1 when it does not rest."""
        meta = self._meta.get(key, -1)
        return meta if meta < 0 else meta & _KIND_MASK

    def take(self, key: str) -> tuple[int, bool, A, bytes, float] | None:
        """Stop resting key: its kind, transport reliability, address, data and
        deadline; None when it does not rest."""
        meta = self._meta.pop(key, -1)
        if meta < 0:
            return None
        data = self._data.pop(key, b"")
        until = self._until.pop(key)
        self._stale = True  # it may have been at the head of its queue
        address = self._addresses.release(meta >> _SLOT_SHIFT)
        return meta & _KIND_MASK, bool(meta & _RELIABLE), address, data, until

    def next_deadline(self) -> float | None:
        """The earliest deadline of a resting key."""
        earliest = self._earliest()
        return None if earliest == _NEVER else earliest

    def pop_due(self, now: float) -> tuple[str, float] | None:
        """The key due the earliest at or before now, and its deadline, no longer
        resting; None when none is due."""
        if self._earliest() > now:
            return None
        best = -1
        earliest = _NEVER
        for kind in range(len(self._keys)):
            deadline = self._head(kind)
            if deadline < earliest:
                best = kind
                earliest = deadline
        if best < 0 or earliest > now:
            return None
        self._deadlines[best].popleft()
        key = self._keys[best].popleft()
        self.take(key)
        return key, earliest

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def addresses(self) -> int:
        """Distinct address objects the resting transactions hold."""
        return len(self._addresses)

    def _earliest(self) -> float:
        if self._stale:
            earliest = _NEVER
            for kind in range(len(self._keys)):
                earliest = min(earliest, self._head(kind))
            self._next = earliest
            self._stale = False
        return self._next

    def _head(self, kind: int) -> float:
        """The deadline at the head of kind's queue, stale entries dropped."""
        deadlines = self._deadlines[kind]
        keys = self._keys[kind]
        until = self._until
        while deadlines:
            deadline = deadlines[0]
            if until.get(keys[0], _NEVER) == deadline:
                return deadline
            deadlines.popleft()
            keys.popleft()
        return _NEVER
