"""SIP messages for the transport tests, built with the addresses each test needs."""

import itertools

_branches = itertools.count(1)


def request(
    *,
    via: str = "SIP/2.0/UDP 192.0.2.10:5060",
    method: str = "OPTIONS",
    call_id: str = "a84b4c76e66710@192.0.2.10",
    cseq: str | None = None,
    extra: tuple[str, ...] = (),
    body: bytes = b"",
    content_length: int | None = -1,
) -> bytes:
    """A request; content_length None leaves the header out, -1 makes it the body's."""
    lines = [
        f"{method} sip:service@example.com SIP/2.0",
        f"Via: {via};branch=z9hG4bK{next(_branches):06d}",
        "Max-Forwards: 70",
        "From: <sip:alice@example.com>;tag=1928301774",
        "To: <sip:service@example.com>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq if cseq is not None else '1 ' + method}",
        *extra,
    ]
    if content_length is not None:
        lines.append(f"Content-Length: {len(body) if content_length < 0 else content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
