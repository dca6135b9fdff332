"""What the call layer tells the interpreter. Answers carry the `ref` of their action;
an answer whose `ref` is not the one awaited (a late timer, a duplicate) is ignored."""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class MediaFinished:
    ref: int


@dataclass(frozen=True, slots=True)
class DigitsEntered:
    ref: int
    digits: str  # without the terminator
    terminated: bool = False  # the terminator ended the input


@dataclass(frozen=True, slots=True)
class InputTimedOut:
    """No key at all before the Collect's timeout."""

    ref: int


@dataclass(frozen=True, slots=True)
class HttpResponded:
    ref: int
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class HttpFailed:
    ref: int
    reason: Literal["timeout", "error"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """Also sent when the caller hangs up while recording, before CallEnded."""

    ref: int
    recording: str  # an id or path the case can refer to
    duration: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The caller hung up (or the call was torn down); the run finishes without actions."""

    reason: str = "caller_hangup"


Event = (
    MediaFinished
    | DigitsEntered
    | InputTimedOut
    | HttpResponded
    | HttpFailed
    | RecordingFinished
    | CallEnded
)

EVENT_TYPES: tuple[type, ...] = (
    MediaFinished,
    DigitsEntered,
    InputTimedOut,
    HttpResponded,
    HttpFailed,
    RecordingFinished,
    CallEnded,
)
