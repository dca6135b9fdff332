"""Symmetric RTP (RFC 4961 behaviour toward peers that do not signal it): send media back to
where the peer's media really comes from, which for a caller behind NAT is not the address
in its SDP.

Rules (one latch for RTP, a separate one for RTCP):
- until a first VALID packet arrives (it parsed, and for RTP its payload type is one we
  negotiated; the caller checks that before asking), we send to the signalled address
  and accept a packet from any source;
- the first valid packet latches: from then on we send to its source address and port;
- packets from any other source are dropped (counted by the caller), which stops a third
  party from injecting audio or stealing the stream ("RTP bleed");
- re-latch: a valid packet from a new source moves the latch only when the latched source
  has been silent for at least `relatch_after` seconds (a NAT that re-mapped the port,
  a phone that changed network); while the latched source keeps talking, nobody else can
  take the stream over;
- a new SDP from the peer (`reset`) forgets the latch: the new signalled address is used
  until the next valid packet latches again;
- with `enabled=False` the signalled address is always used and packets from any source
  are accepted (plain RFC 3550 behaviour, for peers on the same network).
"""

import enum

Address = tuple[str, int]


class Verdict(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    LATCHED = "latched"  # accepted, and the latch moved to this source


class SymmetricLatch:
    __slots__ = ("_last_seen", "enabled", "latched", "relatch_after", "relatches", "signalled")

    def __init__(
        self, signalled: Address | None, *, enabled: bool = True, relatch_after: float = 1.0
    ) -> None:
        self.enabled = enabled
        self.relatch_after = relatch_after
        self.signalled = signalled
        self.latched: Address | None = None
        self._last_seen = 0.0
        self.relatches = 0

    @property
    def target(self) -> Address | None:
        """Where to send: the latched source if any, else the signalled address."""
        return self.latched or self.signalled

    def reset(self, signalled: Address | None) -> None:
        self.signalled = signalled
        self.latched = None

    def accept(self, source: Address, now: float) -> Verdict:
        """What to do with a valid packet from `source`."""
        if not self.enabled:
            return Verdict.ACCEPT
        latched = self.latched
        if latched is not None and source == latched:
            self._last_seen = now
            return Verdict.ACCEPT
        if latched is not None and now - self._last_seen < self.relatch_after:
            return Verdict.DROP
        if latched is not None:
            self.relatches += 1
        self.latched = source
        self._last_seen = now
        return Verdict.LATCHED
