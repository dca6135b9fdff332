"""What the media engine tells the call layer; every event names its endpoint and call."""

from dataclasses import dataclass

from telportal.media.digits import DtmfMethod
from telportal.media.latch import Address
from telportal.media.player import PlayEndReason
from telportal.media.recorder import RecordingSummary
from telportal.media.session import MediaStats


@dataclass(frozen=True, slots=True)
class DigitReceived:
    """One key press, reported once whichever methods carried it."""

    endpoint_id: str
    call_id: str
    digit: str
    method: DtmfMethod


@dataclass(frozen=True, slots=True)
class PlayFinished:
    endpoint_id: str
    call_id: str
    play_id: str
    reason: PlayEndReason


@dataclass(frozen=True, slots=True)
class DigitsSent:
    endpoint_id: str
    call_id: str
    digits: str


@dataclass(frozen=True, slots=True)
class SourceLatched:
    """Symmetric RTP: we now send to `address`, where the peer's media comes from."""

    endpoint_id: str
    call_id: str
    address: Address


@dataclass(frozen=True, slots=True)
class EndpointTimedOut:
    """No RTP for `silent_seconds` while the peer should be sending; reported once until
    RTP flows again. The call layer decides whether to hang up."""

    endpoint_id: str
    call_id: str
    silent_seconds: float


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    endpoint_id: str
    call_id: str
    summary: RecordingSummary


@dataclass(frozen=True, slots=True)
class EndpointClosed:
    """The endpoint is gone and its ports are free; `stats` are its final figures."""

    endpoint_id: str
    call_id: str
    stats: MediaStats

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, endpoint_id: str, call_id: str, stats: MediaStats) -> None:
        object.__setattr__(self, "endpoint_id", endpoint_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "stats", stats)


MediaEvent = (
    DigitReceived
    | PlayFinished
    | DigitsSent
    | SourceLatched
    | EndpointTimedOut
    | RecordingStopped
    | EndpointClosed
)
