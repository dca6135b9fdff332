"""What the interpreter asks the call layer to do.

Actions with a `ref` wait for an answer carrying the same `ref` (see `events`):

    action            answered by
    ----------------  -------------------------------------------------------------
    Play, Say         MediaFinished
    Collect           DigitsEntered or InputTimedOut
    HttpRequest       HttpResponded or HttpFailed
    Record            RecordingFinished

CreateCase and RequestCallback are fire-and-forget. Queue, Transfer and Hangup end the
IVR part of the call; the run is finished after them. Actions that reach another service
(Queue, Transfer, RequestCallback, CreateCase) carry the tenant first.

Prompt items are plain data, independent of the media engine: the call layer maps them
to its playlists (a file under the tenant's prompt folder, speech in a language, a named
tone, or silence).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from telportal.ivr.spec import TransferKind


@dataclass(frozen=True, slots=True)
class SpeechPrompt:
    text: str
    language: str  # "en" or "zh"


@dataclass(frozen=True, slots=True)
class FilePrompt:
    path: str  # relative to the tenant's prompt folder


@dataclass(frozen=True, slots=True)
class TonePrompt:
    tone: str  # beep, ringback, busy, dial
    duration: float | None  # seconds; None: one cadence cycle


@dataclass(frozen=True, slots=True)
class SilencePrompt:
    duration: float


PromptPart = SpeechPrompt | FilePrompt | TonePrompt | SilencePrompt


@dataclass(frozen=True, slots=True)
class Play:
    ref: int
    prompt: tuple[PromptPart, ...]
    barge_in: bool


@dataclass(frozen=True, slots=True)
class Say:
    """Spoken words for a number, digits, an amount or a date (see `spoken`)."""

    ref: int
    text: str
    words: tuple[str, ...]
    language: str
    barge_in: bool


@dataclass(frozen=True, slots=True)
class Collect:
    """Play `prompt` (a key stops it), then collect keys.

    Collection ends after `max_digits` keys, on the `terminator` (not included in the
    digits), after `digit_timeout` without a key once one was pressed, or after `timeout`
    with no key at all (answer InputTimedOut). Keys pressed during the prompt count.
    """

    ref: int
    prompt: tuple[PromptPart, ...]
    max_digits: int
    terminator: str | None
    timeout: float
    digit_timeout: float


@dataclass(frozen=True, slots=True)
class HttpRequest:
    ref: int
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None  # JSON text
    timeout: float  # the call layer answers HttpFailed("timeout") after this


@dataclass(frozen=True, slots=True)
class Record:
    """Play `prompt`, a beep if asked, then record until the terminator, silence or limit."""

    ref: int
    prompt: tuple[PromptPart, ...]
    beep: bool
    max_duration: float
    terminator: str | None


@dataclass(frozen=True, slots=True)
class CreateCase:
    tenant: str
    call_id: str
    subject: str
    fields: Mapping[str, str]
    department: str | None
    urgency: str
    source: Literal["ivr", "voicemail"]
    recording: str | None = None


@dataclass(frozen=True, slots=True)
class RequestCallback:
    tenant: str
    call_id: str
    queue: str
    number: str


@dataclass(frozen=True, slots=True)
class Queue:
    tenant: str
    call_id: str
    queue: str
    priority: int
    skills: tuple[str, ...]
    max_wait: float | None


@dataclass(frozen=True, slots=True)
class Transfer:
    tenant: str
    call_id: str
    kind: TransferKind
    target: str


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str  # the hangup step's reason, or menu_failed, step_limit, transfer_failed


Action = (
    Play
    | Say
    | Collect
    | HttpRequest
    | Record
    | CreateCase
    | RequestCallback
    | Queue
    | Transfer
    | Hangup
)
