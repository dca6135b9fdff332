"""name-addr and addr-spec: From, To, Contact, Route, Record-Route (RFC 3261 20.10, 25.1).

    name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
    display-name = *(token LWS) / quoted-string

Without angle brackets, everything after the first semicolon is a header parameter,
not a URI parameter (RFC 3261 20.10), which is why `sip:a@b;user=phone` in a To header
carries `user=phone` in `Address.params`.
"""

import re
from dataclasses import dataclass
from typing import Final, Literal

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import QUOTED_STRING_RE, TOKEN_CHARS, excerpt, quote, unquote
from telportal.sip.params import NO_PARAMS, Params, parse_params
from telportal.sip.uri import Uri, parse_uri_detail

STAR: Final = "*"
"""`Contact: *` of a REGISTER that removes every binding (RFC 3261 10.2.2)."""

_DISPLAY_TOKENS_RE = re.compile(f"[{TOKEN_CHARS}]+(?:[ \t]+[{TOKEN_CHARS}]+)*")
_ADDR_SPEC_END_RE = re.compile(r"[; \t]")


@dataclass(slots=True)
class Address:
    """A URI with an optional display name (unquoted) and header parameters."""

    uri: Uri
    display_name: str | None = None
    params: Params = NO_PARAMS

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> "Address":
        return Address(self.uri, self.display_name, self.params.with_param("tag", tag))

    def __str__(self) -> str:
        # Always name-addr form: brackets are never wrong, and the output is stable.
        if self.display_name is None:
            return f"<{self.uri}>{self.params}"
        return f"{quote(self.display_name)} <{self.uri}>{self.params}"


def parse_address(value: str, *, context: str = "name-addr") -> Address:
    """Parse a name-addr or addr-spec with its header parameters.

    context prefixes the error message, e.g. "To header".
    """
    try:
        return _parse_address(value)
    except SipParseError as exc:
        raise SipParseError(f"{context}: {exc}") from None


def parse_contact(value: str) -> Address | Literal["*"]:
    """One Contact element, or STAR."""
    if value.strip(" \t") == STAR:
        return STAR
    return parse_address(value, context="Contact header")


def _parse_address(value: str) -> Address:
    text = value.strip(" \t")
    if not text:
        raise SipParseError("empty value")
    if text[0] == '"':
        quoted = QUOTED_STRING_RE.match(text)
        if quoted is None:
            raise SipParseError("unterminated quoted string")
        rest = text[quoted.end() :].lstrip(" \t")
        if not rest.startswith("<"):
            raise SipParseError("display name not followed by '<'")
        return _bracketed(rest, unquote(quoted.group()))
    less_than = text.find("<")
    if less_than >= 0:
        display = text[:less_than].rstrip(" \t")
        if not display or _DISPLAY_TOKENS_RE.fullmatch(display) is not None:
            return _bracketed(text[less_than:], display or None)
        # An addr-spec whose quoted header parameter holds a '<' (RFC 5626
        # +sip.instance="<urn:...>") is not a name-addr: parameters come first.
        if ";" not in display:
            raise SipParseError(f"bad display name {excerpt(display)}")
    end = _ADDR_SPEC_END_RE.search(text)
    uri_text = text if end is None else text[: end.start()]
    uri = _uri(uri_text)
    return Address(uri, None, parse_params(text, len(uri_text)))


def _bracketed(text: str, display: str | None) -> Address:
    greater_than = text.find(">")
    if greater_than < 0:
        raise SipParseError("missing '>'")
    uri = _uri(text[1:greater_than])
    return Address(uri, display, parse_params(text, greater_than + 1))


def _uri(text: str) -> Uri:
    try:
        return parse_uri_detail(text)
    except SipParseError as exc:
        raise SipParseError(f"bad URI {excerpt(text)}: {exc}") from None
