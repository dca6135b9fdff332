"""The open connections, found by id or by remote address, with admission limits (pure).

Limits apply to connections peers open to us: a total, so a flood cannot take every file
descriptor, and one per remote host, so one host cannot take them all (set it well above
one: many phones share the public address of one NAT). Connections we open ourselves
are not limited: we only open them to send, and refusing would lose the message.

Lookup by address serves connection reuse (RFC 3261 18.1.1, RFC 5923's spirit): a
request for a peer goes over the newest open connection to that address, whichever side
opened it. A connection we dialled by name is also found by the name it was dialled by.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from telportal.net.address import Peer, Transport

Channel = TypeVar("Channel")


@dataclass(slots=True)
class _Entry(Generic[Channel]):
    channel: Channel
    peers: tuple[Peer, ...]
    inbound: bool
    transport: Transport


@dataclass(slots=True)
class ConnectionTable(Generic[Channel]):
    max_inbound: int
    max_inbound_per_host: int
    _entries: dict[int, _Entry[Channel]] = field(default_factory=dict)
    # Ids per address, oldest first: the newest is the one to reuse.
    _by_peer: dict[Peer, list[int]] = field(default_factory=dict)
    _inbound_per_host: Counter[str] = field(default_factory=Counter)
    _inbound: int = 0

    def refusal(self, host: str) -> str | None:
        """Why a connection from host must be refused now; None to admit it."""
        if self._inbound >= self.max_inbound:
            return f"{self._inbound} connections open, the limit is {self.max_inbound}"
        count = self._inbound_per_host[host]
        if count >= self.max_inbound_per_host:
            return f"{count} connections from {host}, the limit is {self.max_inbound_per_host}"
        return None

    def add(
        self,
        connection_id: int,
        peer: Peer,
        channel: Channel,
        *,
        inbound: bool,
        aliases: tuple[Peer, ...] = (),
    ) -> None:
        if connection_id in self._entries:
            raise ValueError(f"connection {connection_id} is already registered")
        peers = (peer, *(alias for alias in aliases if alias != peer))
        self._entries[connection_id] = _Entry(channel, peers, inbound, peer.transport)
        for key in peers:
            self._by_peer.setdefault(key, []).append(connection_id)
        if inbound:
            self._inbound += 1
            self._inbound_per_host[peer.host] += 1

    def remove(self, connection_id: int) -> Channel | None:
        entry = self._entries.pop(connection_id, None)
        if entry is None:
            return None
        for key in entry.peers:
            ids = self._by_peer[key]
            ids.remove(connection_id)
            if not ids:
                del self._by_peer[key]
        if entry.inbound:
            self._inbound -= 1
            host = entry.peers[0].host
            self._inbound_per_host[host] -= 1
            if self._inbound_per_host[host] <= 0:
                del self._inbound_per_host[host]
        return entry.channel

    def get(self, connection_id: int) -> Channel | None:
        entry = self._entries.get(connection_id)
        return None if entry is None else entry.channel

    def find(self, peer: Peer) -> Channel | None:
        """The newest connection to peer, if any."""
        ids = self._by_peer.get(peer)
        return None if not ids else self._entries[ids[-1]].channel

    def count(self, transport: Transport) -> int:
        return sum(1 for entry in self._entries.values() if entry.transport is transport)

    def channels(self) -> list[Channel]:
        return [entry.channel for entry in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._entries))
