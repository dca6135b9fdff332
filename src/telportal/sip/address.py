"""name-addr and addr-spec: From, To, Contact, Route, Record-Route (RFC 3261 20.10, 25.1).

    name-addr = [ display-name ] LAQUOT addr-spec RAQUOT
    display-name = *(token LWS) / quoted-string

Without angle brackets, everything after the first semicolon is a header parameter,
not a URI parameter (RFC 3261 20.10), which is why `sip:a@b;user=phone` in a To header
carries `user=phone` in `Address.params`.
"""

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import QUOTED_STRING_RE, TOKEN_CHARS, TOKEN_RE, excerpt, quote, unquote
from telportal.sip.params import NO_PARAMS, Params, parse_params
from telportal.sip.uri import PARSE_CACHE_SIZE, Uri, parse_uri_detail
from telportal.text_cache import MAX_CACHED_TEXT, short_text_cache

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
    # The text, once written (treat addresses as values, as URIs are).
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self, uri: Uri, display_name: str | None = None, params: Params = NO_PARAMS
    ) -> None:
        self.uri = uri
        self.display_name = display_name
        self.params = params
        self._text = None

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> "Address":
        return Address(self.uri, self.display_name, self.params.with_param("tag", tag))

    def __str__(self) -> str:
        text = self._text
        if text is None:
            # Always name-addr form: brackets are never wrong, and the output is stable.
            if self.display_name is None:
                text = f"<{self.uri}>{self.params}"
            else:
                text = f"{quote(self.display_name)} <{self.uri}>{self.params}"
            self._text = text
        return text


def parse_address(value: str, *, context: str = "name-addr") -> Address:
    """Parse a name-addr or addr-spec with its header parameters.

    context prefixes the error message, e.g. "To header".
    """
    try:
        return _tagged_address(value)
    except SipParseError as exc:
        raise SipParseError(f"{context}: {exc}") from None


def _tagged_address(value: str) -> Address:
    """_cached_address(value), reusing the parse of the value without its tag.

    A dialog's From and To differ from one call to the next by their tag alone, so
    `<sip:a@b>;tag=x` is read as the cached parse of `<sip:a@b>` plus the parameter.
    That is the same Address the full parse gives: the tag is one token at the very
    end, which no quoted string or angle bracket of the rest can contain (if the rest
    does not parse on its own, the full parse decides, and reports the error). The
    result is kept too: the same tagged value comes back for every message of a dialog.
    """
    address = _TAGGED.get(value)
    if address is not None:
        return address
    cut = value.rfind(";tag=")
    if cut > 0:
        tag = value[cut + 5 :].rstrip(" \t")
        if TOKEN_RE.fullmatch(tag) is not None:
            try:
                base = _cached_address(value[:cut])
            except SipParseError:
                return _cached_address(value)
            address = Address(
                base.uri, base.display_name, Params((*base.params.items, ("tag", tag)))
            )
            if len(value) <= MAX_CACHED_TEXT:
                if len(_TAGGED) >= PARSE_CACHE_SIZE:
                    del _TAGGED[next(iter(_TAGGED))]  # the oldest: dialogs end
                _TAGGED[value] = address
            return address
    return _cached_address(value)


_TAGGED: dict[str, Address] = {}


def parse_contact(value: str) -> Address | Literal["*"]:
    """One Contact element, or STAR."""
    if value.strip(" \t") == STAR:
        return STAR
    return parse_address(value, context="Contact header")


# The same values come back message after message (a dialog's From and To, a phone's
# Contact, the responses that copy their request's lines): parsed once, shared. Errors
# are not cached, so a bad value raises every time.
@short_text_cache(PARSE_CACHE_SIZE)
def _cached_address(value: str) -> Address:
    return _parse_address(value)


def _parse_address(value: str) -> Address:
    text = value.strip(" \t")
    if not text:
        raise SipParseError("empty value")
    if text[0] == "<":
        # The usual shape, `<uri>;params`, without the detours below.
        greater_than = text.find(">")
        if greater_than > 0:
            uri = _uri(text[1:greater_than])
            return Address(uri, None, parse_params(text, greater_than + 1))
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
