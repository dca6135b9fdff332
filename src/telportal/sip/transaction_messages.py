"""Messages the transaction layer builds, and the identifiers it needs.

`make_ack` is the ACK a client INVITE transaction sends for a non-2xx final response
(RFC 3261 17.1.1.3); `make_cancel` the CANCEL for a pending INVITE (9.1). Both copy the
header values of the INVITE as they were written, so that the peer matches them.
"""

from telportal.random_pool import POOL
from telportal.sip.headers import Headers
from telportal.sip.message import Request, Response
from telportal.sip.methods import ACK, CANCEL
from telportal.sip.via import BRANCH_MAGIC_COOKIE

# RFC 3261 8.1.1.6 recommends 70.
MAX_FORWARDS = "70"


def new_branch() -> str:
    """A Via branch unique in space and time: magic cookie plus 96 random bits (8.1.1.7)."""
    return BRANCH_MAGIC_COOKIE + POOL.take(24)


def new_tag() -> str:
    """A From or To tag: 64 random bits (19.3 asks for at least 32)."""
    return POOL.take(16)


def new_call_id() -> str:
    """A Call-ID for a dialog we start: 128 random bits (8.1.1.4: globally unique)."""
    return POOL.take(32)


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
