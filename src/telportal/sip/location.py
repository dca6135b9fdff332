"""The location service: where each address-of-record can be reached now.

Pure and clocked from outside. A binding maps an AoR (a tenant's extension,
keyed `tenant_id/extension`) to a contact URI until it expires. The registrar
(`registrar.py`) decides what a REGISTER changes; this module only keeps the
bindings, expires them and reports what changed, so the ACD can offer calls to
agents whose phones are registered and stop when they are not.

Up/down: a binding starts `reachable`; the OPTIONS keep-alive marks it
unreachable when the phone stops answering and reachable again when it answers.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Generic, Literal, TypeVar

from telportal.clock import Clock

PeerT = TypeVar("PeerT")


@dataclass(frozen=True)
class Binding(Generic[PeerT]):
    aor: str
    contact: str  # the Contact URI as the phone sent it
    expires_at: float  # on the clock's monotonic time
    call_id: str
    cseq: int
    q: float = 1.0
    # Where the REGISTER came from: the transport layer's peer (address and, for
    # TCP/TLS/WS, the connection), so requests reach phones behind NAT.
    peer: PeerT | None = None
    user_agent: str | None = None
    instance_id: str | None = None
    registered_at: datetime | None = None
    reachable: bool = True

    def expires_in(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


BindingChange = Literal["added", "refreshed", "removed", "expired", "up", "down"]


@dataclass(frozen=True)
class LocationEvent(Generic[PeerT]):
    change: BindingChange
    binding: Binding[PeerT]
    # Whether the AoR has at least one reachable binding after this change.
    aor_reachable: bool


@dataclass
class _Aor(Generic[PeerT]):
    bindings: dict[str, Binding[PeerT]] = field(default_factory=dict)


class LocationService(Generic[PeerT]):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._aors: dict[str, _Aor[PeerT]] = {}

    def lookup(self, aor: str) -> list[Binding[PeerT]]:
        """Live bindings, best first: reachable, then highest q, then newest."""
        now = self._clock.monotonic()
        entry = self._aors.get(aor)
        if entry is None:
            return []
        live = [b for b in entry.bindings.values() if b.expires_at > now]
        return sorted(live, key=lambda b: (not b.reachable, -b.q, -b.expires_at))

    def is_reachable(self, aor: str) -> bool:
        return any(b.reachable for b in self.lookup(aor))

    def get(self, aor: str, contact: str) -> Binding[PeerT] | None:
        entry = self._aors.get(aor)
        return entry.bindings.get(contact) if entry else None

    def put(self, binding: Binding[PeerT]) -> LocationEvent[PeerT]:
        entry = self._aors.setdefault(binding.aor, _Aor())
        change: BindingChange = "refreshed" if binding.contact in entry.bindings else "added"
        entry.bindings[binding.contact] = binding
        return LocationEvent(change, binding, self.is_reachable(binding.aor))

    def remove(self, aor: str, contact: str) -> LocationEvent[PeerT] | None:
        entry = self._aors.get(aor)
        if entry is None or contact not in entry.bindings:
            return None
        binding = entry.bindings.pop(contact)
        if not entry.bindings:
            del self._aors[aor]
        return LocationEvent("removed", binding, self.is_reachable(aor))

    def remove_all(self, aor: str) -> list[LocationEvent[PeerT]]:
        entry = self._aors.pop(aor, None)
        if entry is None:
            return []
        return [LocationEvent("removed", b, False) for b in entry.bindings.values()]

    def set_reachable(self, aor: str, contact: str, reachable: bool) -> LocationEvent[PeerT] | None:
        """Record a keep-alive result; an event only when the state flips."""
        entry = self._aors.get(aor)
        binding = entry.bindings.get(contact) if entry else None
        if entry is None or binding is None or binding.reachable == reachable:
            return None
        entry.bindings[contact] = replace(binding, reachable=reachable)
        return LocationEvent(
            "up" if reachable else "down", entry.bindings[contact], self.is_reachable(aor)
        )

    def expire(self) -> list[LocationEvent[PeerT]]:
        """Drop bindings whose time is up; call it periodically."""
        now = self._clock.monotonic()
        events: list[LocationEvent[PeerT]] = []
        for aor in list(self._aors):
            entry = self._aors[aor]
            for contact, binding in list(entry.bindings.items()):
                if binding.expires_at <= now:
                    del entry.bindings[contact]
                    events.append(LocationEvent("expired", binding, False))
            if not entry.bindings:
                del self._aors[aor]
            elif events and events[-1].binding.aor == aor:
                reachable = self.is_reachable(aor)
                events = [
                    LocationEvent(e.change, e.binding, reachable) if e.binding.aor == aor else e
                    for e in events
                ]
        return events

    def all_bindings(self) -> Iterator[Binding[PeerT]]:
        for entry in self._aors.values():
            yield from entry.bindings.values()

    def __len__(self) -> int:
        return sum(len(e.bindings) for e in self._aors.values())
