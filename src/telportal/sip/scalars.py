"""Single-valued header fields whose value is one word or one number (RFC 3261 20)."""

import re

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import excerpt, parse_uint

MAX_MAX_FORWARDS = 255
MAX_DELTA_SECONDS = 2**32 - 1
MAX_CONTENT_LENGTH = 2**32 - 1

# callid = word [ "@" word ] allows almost any visible character; deployed stacks go
# further (base64 '=' padding), so only what would break the field is refused.
_CALL_ID_RE = re.compile(r"[^\x00-\x20\x7f]+")


def parse_call_id(value: str) -> str:
    text = value.strip(" \t")
    if not text:
        raise SipParseError("Call-ID header: empty value")
    if _CALL_ID_RE.fullmatch(text) is None:
        raise SipParseError(f"Call-ID header: bad value {excerpt(text)}")
    return text


def parse_max_forwards(value: str) -> int:
    return parse_uint(value, "Max-Forwards header", MAX_MAX_FORWARDS)


def parse_content_length(value: str) -> int:
    return parse_uint(value, "Content-Length header", MAX_CONTENT_LENGTH)


def parse_expires(value: str) -> int:
    """Expires header, or the expires parameter of a Contact: delta-seconds."""
    return parse_uint(value, "Expires header", MAX_DELTA_SECONDS)
