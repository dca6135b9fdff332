"""REGISTER processing (RFC 3261 10.3, steps 6-8), after authentication.

The caller has already resolved the tenant, authenticated the request and checked
that the authenticated user may register this address-of-record. What is left is
pure: read the contacts and their lifetimes, refuse what the rules refuse, change
the bindings all at once or not at all, and answer with the current bindings.
"""

from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Generic

from telportal.clock import Clock
from telportal.sip.address import STAR, Address
from telportal.sip.errors import SipParseError
from telportal.sip.location import Binding, LocationEvent, LocationService, PeerT
from telportal.sip.message import Request


@dataclass(frozen=True)
class RegistrarPolicy:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    max_bindings: int = 10


@dataclass(frozen=True)
class RegisterResult(Generic[PeerT]):
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    events: list[LocationEvent[PeerT]] = field(default_factory=list)


def _lifetime(contact: Address, header_expires: int | None, policy: RegistrarPolicy) -> int:
    raw = contact.params.get("expires")
    if raw is not None:
        if not raw.isdigit():
            raise SipParseError(f"Contact expires parameter: not a number: {raw!r}")
        return int(raw)
    return header_expires if header_expires is not None else policy.default_expires


def _q(contact: Address) -> float:
    raw = contact.params.get("q")
    if raw is None:
        return 1.0
    try:
        q = float(raw)
    except ValueError:
        raise SipParseError(f"Contact q parameter: not a number: {raw!r}") from None
    if not 0.0 <= q <= 1.0:
        raise SipParseError(f"Contact q parameter: must be between 0 and 1, got {raw}")
    return q


class _Refusal(Exception):
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or []


def process_register(
    request: Request,
    aor: str,
    location: LocationService[PeerT],
    clock: Clock,
    *,
    peer: PeerT | None = None,
    policy: RegistrarPolicy | None = None,
) -> RegisterResult[PeerT]:
    """Apply a REGISTER to the bindings of `aor`; refusals change nothing."""
    policy = policy or RegistrarPolicy()
    try:
        contacts = request.contacts
        header_expires = request.expires
        call_id = request.call_id
        cseq = request.cseq.number
        if contacts == STAR:
            events = _remove_all(request, aor, location, header_expires, call_id, cseq)
        else:
            planned = _plan(contacts, header_expires, policy)
            _check(aor, location, planned, call_id, cseq, policy)
            events = _apply(request, aor, location, clock, planned, call_id, cseq, peer)
    except SipParseError as exc:
        return RegisterResult(400, str(exc)[:200])
    except _Refusal as refusal:
        return RegisterResult(refusal.status, refusal.reason, refusal.headers)
    return RegisterResult(200, "OK", _answer(location, aor, clock), events)


_Plan = list[tuple[str, int, float, Address]]


def _remove_all(
    request: Request,
    aor: str,
    location: LocationService[PeerT],
    header_expires: int | None,
    call_id: str,
    cseq: int,
) -> list[LocationEvent[PeerT]]:
    # 10.3 step 6: "*" only alone and only to remove everything.
    if len(request.headers.get_all("Contact")) != 1 or header_expires != 0:
        raise _Refusal(400, "Contact: * needs Expires: 0 and no other contact")
    for b in location.lookup(aor):
        if b.call_id == call_id and cseq <= b.cseq:
            raise _Refusal(500, "Out of order CSeq for this Call-ID")
    return location.remove_all(aor)


def _plan(contacts: list[Address], header_expires: int | None, policy: RegistrarPolicy) -> _Plan:
    planned: _Plan = []
    for contact in contacts:
        lifetime = _lifetime(contact, header_expires, policy)
        if 0 < lifetime < policy.min_expires:
            raise _Refusal(423, "Interval Too Brief", [("Min-Expires", str(policy.min_expires))])
        planned.append((str(contact.uri), min(lifetime, policy.max_expires), _q(contact), contact))
    return planned


def _check(
    aor: str,
    location: LocationService[PeerT],
    planned: _Plan,
    call_id: str,
    cseq: int,
    policy: RegistrarPolicy,
) -> None:
    # 10.3 step 7: a refresh from the same Call-ID must carry a higher CSeq.
    for uri, _, _, _ in planned:
        existing = location.get(aor, uri)
        if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
            raise _Refusal(500, "Out of order CSeq for this Call-ID")
    kept = {b.contact for b in location.lookup(aor)}
    kept |= {uri for uri, life, _, _ in planned if life > 0}
    kept -= {uri for uri, life, _, _ in planned if life == 0}
    if len(kept) > policy.max_bindings:
        raise _Refusal(403, f"At most {policy.max_bindings} contacts per user")


def _apply(
    request: Request,
    aor: str,
    location: LocationService[PeerT],
    clock: Clock,
    planned: _Plan,
    call_id: str,
    cseq: int,
    peer: PeerT | None,
) -> list[LocationEvent[PeerT]]:
    events: list[LocationEvent[PeerT]] = []
    user_agent = request.single("User-Agent")
    now, wall = clock.monotonic(), clock.now()
    for uri, lifetime, q, contact in planned:
        if lifetime == 0:
            removed = location.remove(aor, uri)
            if removed is not None:
                events.append(removed)
            continue
        instance = contact.params.get("+sip.instance")
        binding = Binding(
            aor=aor,
            contact=uri,
            expires_at=now + lifetime,
            call_id=call_id,
            cseq=cseq,
            q=q,
            peer=peer,
            user_agent=user_agent,
            instance_id=instance.strip('"<>') if instance else None,
            registered_at=wall,
        )
        events.append(location.put(binding))
    return events


def _answer(location: LocationService[PeerT], aor: str, clock: Clock) -> list[tuple[str, str]]:
    now = clock.monotonic()
    headers = [
        ("Contact", f"<{b.contact}>;expires={b.expires_in(now)}") for b in location.lookup(aor)
    ]
    headers.append(("Date", http_date(clock.now())))
    return headers


def http_date(when: datetime) -> str:
    """RFC 1123 date in GMT, as the Date header wants (RFC 3261 20.17)."""
    return format_datetime(when, usegmt=True)
