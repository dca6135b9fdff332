"""Lexical rules shared by the SIP parsers (RFC 3261 section 25.1).

Header values reach these helpers already unfolded: every LWS continuation has been
joined with a single SP, so only SP and HTAB count as whitespace here.
"""

import re
from urllib.parse import unquote as _percent_decode

from telportal.sip.errors import SipParseError

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"  # noqa: S105  (the SIP "token" rule, not a secret)
TOKEN_RE = re.compile(f"[{TOKEN_CHARS}]+")

# quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE. Raw control characters are
# tolerated inside (RFC 4475 3.1.1.2 carries NUL and BEL as quoted-pairs; being strict
# about unescaped ones would only turn a readable message into a rejected one).
QUOTED_STRING_RE = re.compile(r'"(?:[^"\\\r\n]|\\[^\r\n])*"')

_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)

WHITESPACE = " \t"
_EXCERPT_LIMIT = 64


def excerpt(text: str) -> str:
    """Quote a piece of input for an error message: bounded, escaped, never multi-line."""
    if len(text) > _EXCERPT_LIMIT:
        text = text[: _EXCERPT_LIMIT - 3] + "..."
    return repr(text)


def is_token(text: str) -> bool:
    return TOKEN_RE.fullmatch(text) is not None


def quote(text: str) -> str:
    """Render text as a quoted-string, escaping backslash and double quote."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unquote(text: str) -> str:
    """The content of a quoted-string with its quoted-pairs resolved; other text unchanged."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        return _QUOTED_PAIR_RE.sub(r"\1", inner) if "\\" in inner else inner
    return text


def unescape(text: str) -> str:
    """Decode %-escapes (UTF-8; undecodable octets kept as surrogate escapes)."""
    return _percent_decode(text, encoding="utf-8", errors="surrogateescape")


def split_list(value: str) -> list[str]:
    """Split a header field value on the commas that separate list elements.

    Commas inside quoted strings and inside angle brackets belong to the element.
    Empty elements are kept so that the element parser can reject them: RFC 3261
    has no null list elements.
    """
    if "," not in value:
        return [value.strip(WHITESPACE)]
    if '"' not in value and "<" not in value:
        return [part.strip(WHITESPACE) for part in value.split(",")]
    parts: list[str] = []
    start = 0
    quoted = angled = escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif angled:
            angled = char != ">"
        elif char == '"':
            quoted = True
        elif char == "<":
            angled = True
        elif char == ",":
            parts.append(value[start:index].strip(WHITESPACE))
            start = index + 1
    parts.append(value[start:].strip(WHITESPACE))
    return parts


def parse_uint(text: str, what: str, maximum: int) -> int:
    """A run of ASCII digits no larger than maximum (leading zeros allowed)."""
    digits = text.strip(WHITESPACE)
    if not digits or not digits.isascii() or not digits.isdigit():
        raise SipParseError(f"{what}: bad value {excerpt(digits)}")
    # Bound the length first: int() on thousands of digits is slow and, past 4300, refused.
    if len(digits) > 20 and len(digits.lstrip("0")) > 20:
        raise SipParseError(f"{what}: value {excerpt(digits)} exceeds {maximum}")
    number = int(digits)
    if number > maximum:
        raise SipParseError(f"{what}: value {excerpt(digits)} exceeds {maximum}")
    return number
