"""SIP session timers (RFC 4028), sans-IO: negotiation and the per-dialog timer.

A session timer keeps dead calls from lingering: one side (the refresher) sends a
re-INVITE or UPDATE every half interval, and the other side ends the call with BYE
when no refresh arrives in time. "uac" and "uas" in the refresher parameter name the
roles in the transaction that carried the Session-Expires, not in the dialog: a
refresh sent by the original callee turns the callee into the "uac".

Negotiation (RFC 4028 sections 7 and 9):

    UAC                         request carries Supported: timer, Session-Expires and
                                Min-SE (`request_headers`); a 422 is retried with the
                                Min-SE it names (`retry_headers_after_422`); the 2xx
                                decides (`negotiate_uac`): no Session-Expires, no timer.
    UAS, Session-Expires below  422 with our Min-SE, when the UAC supports timers;
    our Min-SE                  otherwise the interval is accepted as it is (a UAC that
                                does not know the extension cannot act on a 422).
    UAS, Session-Expires ok     interval: the request's, shortened to our preference
                                but never below the request's Min-SE; refresher: the
                                request's, else ours to choose if the UAC supports
                                timers, else "uas".
    UAS, no Session-Expires     a timer of our own interval when the UAC supports
                                timers (we may ask for one in the 2xx), else none.
    UAS, 2xx                    Session-Expires with the refresher always; Require:
                                timer whenever the UAC supports timers.

The timer (`SessionTimer`), with expiry = last refresh + interval - min(32, interval/3)
(section 10) and times in seconds of a monotonic clock passed in by the caller:

    state       event                                   action        next
    ----------  --------------------------------------  ------------  ----------
    waiting     now >= expiry                           Expire        expired
    waiting     we refresh, now >= last + interval/2    SendRefresh   refreshing
    refreshing  now >= expiry (no refresh succeeded)    Expire        expired
    waiting,    refreshed(now): a re-INVITE or UPDATE   -             waiting
    refreshing  succeeded, whoever sent it
    any         stop(): the dialog ended                -             stopped

Expire means the session is dead: send BYE on the dialog and tear the call down.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Final, final

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import excerpt, parse_uint
from telportal.sip.message import Request, Response
from telportal.sip.params import NO_PARAMS, Params, parse_params
from telportal.sip.scalars import MAX_DELTA_SECONDS
from telportal.sip.status import reason_phrase
from telportal.sip.validate import Rejection

SESSION_EXPIRES: Final = "Session-Expires"
MIN_SE: Final = "Min-SE"
TIMER: Final = "timer"
"""The option tag of RFC 4028, in Supported and Require."""

MIN_SE_FLOOR: Final = 90
"""No session interval may be shorter (RFC 4028 section 4)."""
DEFAULT_SESSION_EXPIRES: Final = 1800
"""The recommended interval: 30 minutes (RFC 4028 section 4)."""
# Section 10: the non-refresher sends BYE this long before the session would expire.
MAX_EXPIRY_MARGIN: Final = 32.0


class Refresher(Enum):
    UAC = "uac"
    UAS = "uas"


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """`Session-Expires: delta-seconds [;refresher=uac|uas] *(;generic-param)`."""

    interval: int
    refresher: Refresher | None = None
    params: Params = NO_PARAMS
    """Parameters other than refresher, as written."""

    def __str__(self) -> str:
        refresher = "" if self.refresher is None else f";refresher={self.refresher.value}"
        return f"{self.interval}{refresher}{self.params}"


def parse_session_expires(value: str) -> SessionExpires:
    """Parse a Session-Expires (or compact `x`) value."""
    interval, params = _delta_and_params(value, SESSION_EXPIRES)
    refresher: Refresher | None = None
    if "refresher" in params:
        text = params.get("refresher") or ""
        try:
            refresher = Refresher(text.lower())
        except ValueError:
            raise SipParseError(
                f"{SESSION_EXPIRES} header: bad refresher {excerpt(text)}"
            ) from None
        params = params.without("refresher")
    return SessionExpires(interval, refresher, params)


def parse_min_se(value: str) -> int:
    """Parse a Min-SE value: its delta-seconds (parameters are ignored)."""
    return _delta_and_params(value, MIN_SE)[0]


def _delta_and_params(value: str, header: str) -> tuple[int, Params]:
    text = value.strip(" \t")
    digits = text.partition(";")[0].rstrip(" \t")
    delta = parse_uint(digits, f"{header} header", MAX_DELTA_SECONDS)
    try:
        return delta, parse_params(text, len(digits))
    except SipParseError as exc:
        raise SipParseError(f"{header} header: {exc}") from None


def session_expires_of(message: Request | Response) -> SessionExpires | None:
    """The message's Session-Expires; None when absent. Raises SipParseError."""
    value = message.single(SESSION_EXPIRES)
    return None if value is None else parse_session_expires(value)


def min_se_of(message: Request | Response) -> int | None:
    """The message's Min-SE; None when absent. Raises SipParseError."""
    value = message.single(MIN_SE)
    return None if value is None else parse_min_se(value)


def has_option_tag(message: Request | Response, header: str, tag: str = TIMER) -> bool:
    """The Supported or Require header of message lists tag (case-insensitively)."""
    wanted = tag.lower()
    return any(value.lower() == wanted for value in message.headers.get_all(header))


@dataclass(frozen=True, slots=True)
class SessionTimerPolicy:
    """Our side of the negotiation."""

    interval: int = DEFAULT_SESSION_EXPIRES
    """The interval we ask for, and shorten longer requested intervals to."""
    min_se: int = MIN_SE_FLOOR
    """The shortest interval we accept; requests below it are answered 422."""
    refresh_locally: bool = True
    """When the UAC leaves the choice to us (UAS), we refresh: our refreshes double as a
    probe of the peer, and a peer that never answers them is found dead."""

    def __post_init__(self) -> None:
        if self.min_se < MIN_SE_FLOOR:
            raise ValueError(f"min_se {self.min_se} is below the floor of {MIN_SE_FLOOR} s")
        if self.interval < self.min_se:
            raise ValueError(f"interval {self.interval} is below min_se {self.min_se}")


@dataclass(frozen=True, slots=True)
class SessionTimerAgreement:
    """The outcome of a negotiation for one INVITE or UPDATE transaction."""

    interval: int
    refresher: Refresher
    local_refresher: bool
    """We are the refresher (translated from the transaction's uac/uas)."""
    min_se: int = MIN_SE_FLOOR
    headers: tuple[tuple[str, str], ...] = ()
    """Header lines for our 2xx (UAS side); empty on the UAC side."""


def request_headers(
    interval: int = DEFAULT_SESSION_EXPIRES,
    min_se: int = MIN_SE_FLOOR,
    *,
    refresher: Refresher | None = None,
) -> tuple[tuple[str, str], ...]:
    """Supported, Session-Expires and Min-SE lines for an INVITE or UPDATE we send.

    The refresher is best left out of an initial request (RFC 4028 7.1) so the UAS can
    choose; a refresher refreshing says Refresher.UAC. A separate `Supported: timer`
    line joins any other Supported line (RFC 3261 7.3.1).
    """
    interval = max(interval, min_se)
    session_expires = SessionExpires(interval, refresher)
    return (
        ("Supported", TIMER),
        (SESSION_EXPIRES, str(session_expires)),
        (MIN_SE, str(min_se)),
    )


def retry_headers_after_422(
    response: Response, policy: SessionTimerPolicy = SessionTimerPolicy()
) -> tuple[tuple[str, str], ...]:
    """The session-timer lines for retrying a request refused with 422 (RFC 4028 7.4):
    at least the Min-SE the 422 names. Raises SipParseError if it names none."""
    if response.status != 422:
        raise ValueError(f"a {response.status} is not a 422")
    min_se = min_se_of(response)
    if min_se is None:
        raise SipParseError(f"{MIN_SE} header: missing in a 422")
    floor = max(min_se, policy.min_se)
    return request_headers(max(policy.interval, floor), floor)


def negotiate_uas(
    request: Request, policy: SessionTimerPolicy = SessionTimerPolicy()
) -> SessionTimerAgreement | Rejection | None:
    """The session timer for our 2xx to an INVITE or UPDATE (RFC 4028 section 9).

    A Rejection (422 with Min-SE, or 400 for an unreadable header) is the response to
    send instead of the 2xx; None means this session has no timer.
    """
    try:
        requested = session_expires_of(request)
        request_min_se = min_se_of(request)
    except SipParseError as exc:
        return Rejection(400, reason_phrase(400), str(exc))
    supported = has_option_tag(request, "Supported")
    floor = max(request_min_se or MIN_SE_FLOOR, MIN_SE_FLOOR)
    if requested is None:
        if not supported:
            return None
        interval = max(policy.interval, floor)
        refresher = _our_choice(policy)
    elif requested.interval < policy.min_se and supported:
        return Rejection(
            422,
            reason_phrase(422),
            f"Session-Expires {requested.interval} is below our Min-SE {policy.min_se}",
            ((MIN_SE, str(policy.min_se)),),
        )
    else:
        # We may shorten the interval, never lengthen it or go below the UAC's Min-SE.
        interval = min(requested.interval, max(policy.interval, floor))
        # Without Supported: timer the UAC would not know it has to refresh.
        refresher = (requested.refresher or _our_choice(policy)) if supported else Refresher.UAS
    lines = [(SESSION_EXPIRES, str(SessionExpires(interval, refresher)))]
    if supported:
        lines.append(("Require", TIMER))
    return SessionTimerAgreement(
        interval,
        refresher,
        local_refresher=refresher is Refresher.UAS,
        min_se=max(floor, policy.min_se),
        headers=tuple(lines),
    )


def _our_choice(policy: SessionTimerPolicy) -> Refresher:
    return Refresher.UAS if policy.refresh_locally else Refresher.UAC


def negotiate_uac(
    response: Response, *, min_se: int = MIN_SE_FLOOR
) -> SessionTimerAgreement | None:
    """The session timer a 2xx to our INVITE or UPDATE sets (RFC 4028 7.2); None when
    it has no Session-Expires. A 2xx that omits the refresher, against the rules,
    leaves the refreshing to us: a timer that nobody refreshes would end the call.
    Raises SipParseError for an unreadable Session-Expires."""
    if not 200 <= response.status <= 299:
        raise ValueError(f"a {response.status} does not conclude the negotiation")
    session_expires = session_expires_of(response)
    if session_expires is None:
        return None
    refresher = session_expires.refresher or Refresher.UAC
    return SessionTimerAgreement(
        session_expires.interval,
        refresher,
        local_refresher=refresher is Refresher.UAC,
        min_se=min_se,
    )


@dataclass(frozen=True, slots=True)
class SendRefresh:
    """Time to refresh: send a re-INVITE or UPDATE (UPDATE when the peer allows it,
    RFC 4028 section 10) carrying `headers`; call `refreshed` when it gets a 2xx."""

    interval: int
    min_se: int

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return request_headers(self.interval, self.min_se, refresher=Refresher.UAC)


@dataclass(frozen=True, slots=True)
class Expire:
    """No refresh in time: the session is dead. Send BYE on the dialog and end the call."""

    last_refresh: float


TimerAction = SendRefresh | Expire


class TimerState(Enum):
    WAITING = "waiting"
    REFRESHING = "refreshing"
    EXPIRED = "expired"
    STOPPED = "stopped"


@final
class SessionTimer:
    """The session timer of one dialog. Times are the caller's monotonic clock."""

    def __init__(
        self, interval: int, *, local_refresher: bool, now: float, min_se: int = MIN_SE_FLOOR
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval {interval} is not positive")
        self.interval = interval
        self.local_refresher = local_refresher
        self.min_se = min_se
        self.last_refresh = now
        self._state = TimerState.WAITING

    @classmethod
    def start(cls, agreement: SessionTimerAgreement, now: float) -> "SessionTimer":
        return SessionTimer(
            agreement.interval,
            local_refresher=agreement.local_refresher,
            now=now,
            min_se=agreement.min_se,
        )

    @property
    def state(self) -> TimerState:
        return self._state

    @property
    def refresh_at(self) -> float:
        """When the refresher sends its refresh: half the interval after the last one."""
        return self.last_refresh + self.interval / 2

    @property
    def expires_at(self) -> float:
        """When the session counts as dead: a little before the interval runs out."""
        return self.last_refresh + self.interval - min(MAX_EXPIRY_MARGIN, self.interval / 3)

    def next_deadline(self) -> float | None:
        """When `on_timer` has something to do next; None once expired or stopped."""
        if self._state is TimerState.WAITING and self.local_refresher:
            return self.refresh_at
        if self._state in (TimerState.WAITING, TimerState.REFRESHING):
            return self.expires_at
        return None

    def on_timer(self, now: float) -> list[TimerAction]:
        """The actions due at now (none if called early)."""
        if self._state not in (TimerState.WAITING, TimerState.REFRESHING):
            return []
        if now >= self.expires_at:
            self._state = TimerState.EXPIRED
            return [Expire(self.last_refresh)]
        if self._state is TimerState.WAITING and self.local_refresher and now >= self.refresh_at:
            self._state = TimerState.REFRESHING
            return [SendRefresh(self.interval, self.min_se)]
        return []

    def refreshed(self, now: float, agreement: SessionTimerAgreement | None = None) -> None:
        """A re-INVITE or UPDATE of this dialog succeeded (sent or received, by either
        side), with the renegotiated agreement when its 2xx set one. A 2xx without
        Session-Expires turns the timer off: call `stop` instead."""
        if self._state not in (TimerState.WAITING, TimerState.REFRESHING):
            return
        if agreement is not None:
            self.interval = agreement.interval
            self.local_refresher = agreement.local_refresher
            self.min_se = agreement.min_se
        self.last_refresh = now
        self._state = TimerState.WAITING

    def stop(self) -> None:
        """The dialog ended or the timer was negotiated away."""
        self._state = TimerState.STOPPED


__all__ = [
    "DEFAULT_SESSION_EXPIRES",
    "MIN_SE",
    "MIN_SE_FLOOR",
    "SESSION_EXPIRES",
    "TIMER",
    "Expire",
    "Refresher",
    "SendRefresh",
    "SessionExpires",
    "SessionTimer",
    "SessionTimerAgreement",
    "SessionTimerPolicy",
    "TimerAction",
    "TimerState",
    "has_option_tag",
    "min_se_of",
    "negotiate_uac",
    "negotiate_uas",
    "parse_min_se",
    "parse_session_expires",
    "request_headers",
    "retry_headers_after_422",
    "session_expires_of",
]
