"""Counters for monitoring, one set per transport kind.

Plain integers bumped in place: the receive path is hot and a counter must cost no more
than an attribute increment. `SipTransportLayer.stats()` snapshots them with the number
of connections open.
"""

from dataclasses import asdict, dataclass


@dataclass(slots=True)
class TransportCounters:
    messages_in: int = 0  # delivered to the layer above
    messages_out: int = 0  # written to a socket
    rejected: int = 0  # answered with an error response instead of delivered
    dropped: int = 0  # discarded unanswered: unreadable, no Via, inbox full, oversized
    keepalives: int = 0  # CRLF keep-alives received (pings answered on streams)
    repeats: int = 0  # UDP INVITE retransmissions handed on unparsed (in messages_in too)
    connections_accepted: int = 0
    connections_opened: int = 0  # dialled by us
    connections_refused: int = 0  # over a connection limit
    connections_timed_out: int = 0  # read or idle timeout
    framing_errors: int = 0  # stream connections closed because framing was lost
    send_errors: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)
