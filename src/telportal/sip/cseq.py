"""The CSeq header field (RFC 3261 sections 8.1.1.5 and 20.16)."""

import re
from dataclasses import dataclass

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import TOKEN_CHARS, excerpt
from telportal.sip.methods import KNOWN_METHODS
from telportal.text_cache import short_text_cache

# A sequence number is a 32-bit unsigned integer. New requests stay below 2**31
# (8.1.1.5) so that the peer can count up, but anything in 32 bits is legal to receive.
MAX_SEQUENCE_NUMBER = 2**32 - 1

# CSeq = 1*DIGIT LWS Method
_CSEQ_RE = re.compile(f"([0-9]+)[ \t]+([{TOKEN_CHARS}]+)")


@dataclass(slots=True)
class CSeq:
    number: int
    method: str

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, number: int, method: str) -> None:
        self.number = number
        self.method = method

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


# "1 INVITE", "2 BYE": the same few values all day long. Parsed CSeqs are shared, so
# treat them as values. Errors are not cached.
@short_text_cache(1024)
def parse_cseq(value: str) -> CSeq:
    text = value.strip(" \t")
    number, space, method = text.partition(" ")
    if (
        space
        and method in KNOWN_METHODS
        and number.isascii()
        and number.isdigit()
        and len(number) <= 10
    ):
        # The usual shape, read without the regex: the same checks, one at a time.
        sequence = int(number)
        if sequence <= MAX_SEQUENCE_NUMBER:
            return CSeq(sequence, method)
    match = _CSEQ_RE.fullmatch(text)
    if match is None:
        raise SipParseError(f"CSeq header: bad value {excerpt(text)}")
    digits = match.group(1)
    if len(digits.lstrip("0")) > 10 or int(digits) > MAX_SEQUENCE_NUMBER:
        raise SipParseError(
            f"CSeq header: sequence number {excerpt(digits)} exceeds {MAX_SEQUENCE_NUMBER}"
        )
    return CSeq(int(digits), match.group(2))
