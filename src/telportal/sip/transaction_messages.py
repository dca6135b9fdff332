"""Messages the transaction layer builds, and the identifiers it needs.

`make_ack` is the ACK a client INVITE transaction sends for a non-2xx final response
(RFC 3261 17.1.1.3); `make_cancel` the CANCEL for a pending INVITE (9.1). Both copy the
header values of the INVITE as they were written, so that the peer matches them.
"""

import os
import threading

from telportal.sip.headers import Headers
from telportal.sip.message import Request, Response
from telportal.sip.methods import ACK, CANCEL
from telportal.sip.via import BRANCH_MAGIC_COOKIE

# RFC 3261 8.1.1.6 recommends 70.
MAX_FORWARDS = "70"


class RandomHex:
    """Hex digits from the operating system's CSPRNG, read 4 KiB at a time.

    A B2BUA call needs about six fresh identifiers (tags, branches, a Call-ID).
    `secrets.token_hex` makes a `getrandom` system call for each, which cost 2-4% of a
    call's CPU (py-spy, bench/sip_calls.py); slicing a pooled block gives the same
    unpredictable digits, each handed out once. A forked child starts with an empty
    pool, so that it never repeats its parent's identifiers.
    """

    def __init__(self, block: int = 4096) -> None:
        self._block = block
        self._digits = ""
        self._at = 0
        self._lock = threading.Lock()  # the loop's thread, and perhaps a worker's
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._digits, self._at = "", 0

    def take(self, digits: int) -> str:
        """`digits` hex digits (4 random bits each), never handed out before."""
        with self._lock:
            at = self._at
            end = at + digits
            if end > len(self._digits):
                self._digits = os.urandom(max(self._block, (digits + 1) // 2)).hex()
                at, end = 0, digits
            self._at = end
            return self._digits[at:end]


_RANDOM = RandomHex()


def new_branch() -> str:
    """A Via branch unique in space and time: magic cookie plus 96 random bits (8.1.1.7)."""
    return BRANCH_MAGIC_COOKIE + _RANDOM.take(24)


def new_tag() -> str:
    """A From or To tag: 64 random bits (19.3 asks for at least 32)."""
    return _RANDOM.take(16)


def new_call_id() -> str:
    """A Call-ID for a dialog we start: 128 random bits (8.1.1.4: globally unique)."""
    return _RANDOM.take(32)


def make_cancel(invite: Request) -> Request:
    """The CANCEL for invite (RFC 3261 9.1).

    Same Request-URI, Call-ID, To, From and CSeq number as the INVITE, CSeq method
    CANCEL, one Via equal to the INVITE's top Via (so the same branch), the INVITE's
    Route header fields, no body.
    """
    return Request(CANCEL, invite.uri, _copied_headers(invite, invite.headers.get("To"), CANCEL))


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response to invite (RFC 3261 17.1.1.3).

    Like a CANCEL, except that To is the response's To, which carries the tag the
    server chose.
    """
    return Request(ACK, invite.uri, _copied_headers(invite, response.headers.get("To"), ACK))


def _copied_headers(invite: Request, to: str | None, method: str) -> Headers:
    vias = invite.headers.get_all("Via")
    if not vias:
        raise ValueError("the INVITE has no Via header")
    headers = Headers()
    headers.add("Via", vias[0])
    headers.add("Max-Forwards", MAX_FORWARDS)
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    for name, value in (("To", to), ("From", invite.headers.get("From"))):
        if value is None:
            raise ValueError(f"no {name} header to copy into the {method}")
        headers.add(name, value)
    call_id = invite.headers.get("Call-ID")
    if call_id is None:
        raise ValueError(f"no Call-ID header to copy into the {method}")
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{invite.cseq.number} {method}")
    return headers
