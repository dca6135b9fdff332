"""SIP, SIPS and TEL URIs (RFC 3261 sections 19.1 and 25.1, RFC 3966, RFC 5118).

A parsed URI keeps every component as written, %-escapes included, so that it
serializes back to the same text. Escapes are only resolved when comparing
(`uri_equal`, RFC 3261 19.1.4) or on request (`grammar.unescape`).
Other schemes are kept whole as `AbsoluteUri`: a server must be able to read a request
for `soap.beep:` in order to answer 416 to it (RFC 4475 3.3.2).

URIs are plain slotted records, not frozen ones: the parser builds several per message
and a frozen dataclass costs five times as much to construct. Treat them as values:
parsed ones are shared (cached by text), and a SipUri keeps its text once written.
Their `==` compares structure; RFC equivalence is `uri_equal`.
"""

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Final

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import excerpt
from telportal.sip.params import NO_PARAMS, Params
from telportal.text_cache import short_text_cache

# Entries of each parse cache (URIs here, addresses, Via elements): a few thousand
# dialogs' worth of recurring values, a few megabytes at most.
PARSE_CACHE_SIZE = 4096

SIP_SCHEME = "sip"
SIPS_SCHEME = "sips"
TEL_SCHEME = "tel"
MAX_PORT = 65535

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_ESCAPED = "%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
# user = 1*( unreserved / escaped / user-unreserved ); user-unreserved = & = + $ , ; ? /
_USER = f"(?:[{_UNRESERVED}&=+$,;?/]|{_ESCAPED})+"
_USER_RE = re.compile(_USER)
_PASSWORD = f"(?:[{_UNRESERVED}&=+$,]|{_ESCAPED})*"
_PASSWORD_RE = re.compile(_PASSWORD)
# paramchar = param-unreserved / unreserved / escaped; param-unreserved = [ ] / : & + $
_PARAMCHARS = rf"(?:[\[\]/:&+${_UNRESERVED}]|{_ESCAPED})+"
_PARAMCHARS_RE = re.compile(_PARAMCHARS)
# hname / hvalue chars: hnv-unreserved / unreserved / escaped; hnv-unreserved = [ ] / ? : + $
_HEADERCHARS_RE = re.compile(rf"(?:[\[\]/?:+${_UNRESERVED}]|{_ESCAPED})*")
# Underscores are not in the RFC's hostname rule but appear in deployed host names.
HOSTNAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?"
_HOSTNAME_RE = re.compile(HOSTNAME)
_IPV4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}")
_DOTTED_DIGITS_RE = re.compile(r"[0-9.]+")
_FORBIDDEN_RE = re.compile(r'[\x00-\x20\x7f<>"]')
# The common shape of a SIP URI after "sip:", checked in one regex call: host name or
# IPv4 host, no URI headers. Anything else takes the component-by-component path.
_COMMON_SIP_RE = re.compile(
    f"(?:({_USER})(?::({_PASSWORD}))?@)?({HOSTNAME})(?::([0-9]{{1,5}}))?"
    f"((?:;{_PARAMCHARS}(?:={_PARAMCHARS})?)*)"
)
# RFC 3986 characters, for the opaque part of other schemes.
_OPAQUE_RE = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_GLOBAL_NUMBER_RE = re.compile(r"\+[0-9\-.()]*[0-9][0-9\-.()]*")
_LOCAL_NUMBER_RE = re.compile(r"[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*")
_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")
_ESCAPE_RE = re.compile("%([0-9A-Fa-f]{2})")
_RESERVED = frozenset(";/?:@&=+$,")

# 19.1.4: these parameters must be present in both URIs or in neither.
_PRESENCE_SIGNIFICANT = frozenset({"user", "ttl", "method", "maddr", "transport"})


@dataclass(slots=True, kw_only=True)
class SipUri:
    """sip: or sips: URI; host keeps the brackets of an IPv6 reference."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = NO_PARAMS
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = SIP_SCHEME
    # The text, once written: a URI goes into every message of its dialog.
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Not left to the default: a compiled (mypyc) dataclass does not apply it.
        object.__setattr__(self, "_text", None)

    @property
    def is_secure(self) -> bool:
        return self.scheme.lower() == SIPS_SCHEME

    @property
    def transport(self) -> str | None:
        return self.params.get("transport")

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._text = self._write()
        return text

    def _write(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts += (":", self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts += (":", str(self.port))
        parts.append(str(self.params))
        if self.headers:
            parts += ("?", "&".join(f"{name}={value}" for name, value in self.headers))
        return "".join(parts)


@dataclass(slots=True)
class TelUri:
    """tel: URI (RFC 3966); number keeps its visual separators."""

    number: str
    params: Params = NO_PARAMS
    scheme: str = TEL_SCHEME

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    def __str__(self) -> str:
        return f"{self.scheme}:{self.number}{self.params}"


@dataclass(slots=True)
class AbsoluteUri:
    """A URI of a scheme this layer does not interpret, kept as scheme and opaque text."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse a SIP, SIPS or TEL URI, or keep another scheme as an AbsoluteUri."""
    try:
        return parse_uri_detail(text)
    except SipParseError as exc:
        raise SipParseError(f"URI {excerpt(text)}: {exc}") from None


def parse_sip_uri(text: str) -> SipUri:
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise SipParseError(f"URI {excerpt(text)}: not a sip or sips URI")
    return uri


@short_text_cache(PARSE_CACHE_SIZE)
def parse_uri_detail(text: str) -> Uri:
    """Like parse_uri, with the bare problem as message so callers can add context.

    Cached by text (errors are not): parsed URIs are shared, so treat them as values.
    """
    return _parse_uri_detail(text)


def _parse_uri_detail(text: str) -> Uri:
    colon = text.find(":")
    if 3 <= colon <= 4 and text[:colon].lower() in (SIP_SCHEME, SIPS_SCHEME):
        uri = _parse_common_sip(text[:colon], text[colon + 1 :])
        if uri is not None:
            return uri
    bad = _FORBIDDEN_RE.search(text)
    if bad is not None:
        if bad.group() in " \t":
            raise SipParseError("whitespace inside the URI")
        raise SipParseError(f"forbidden character {bad.group()!r}")
    colon = text.find(":")
    if colon < 0:
        raise SipParseError("missing scheme")
    scheme = text[:colon]
    if _SCHEME_RE.fullmatch(scheme) is None:
        raise SipParseError(f"bad scheme {excerpt(scheme)}")
    rest = text[colon + 1 :]
    lower = scheme.lower()
    if lower in (SIP_SCHEME, SIPS_SCHEME):
        return _parse_sip(scheme, rest)
    if lower == TEL_SCHEME:
        return _parse_tel(scheme, rest)
    if _OPAQUE_RE.fullmatch(rest) is None:
        raise SipParseError(f"bad {scheme} URI body {excerpt(rest)}")
    return AbsoluteUri(scheme, rest)


def _parse_common_sip(scheme: str, rest: str) -> SipUri | None:
    match = _COMMON_SIP_RE.fullmatch(rest)
    if match is None:
        return None
    user, password, host, port_text, param_text = match.groups()
    port = common_host_port(host, port_text)
    if port == LONG_WAY:
        return None
    params = split_params(param_text[1:]) if param_text else NO_PARAMS
    return SipUri(scheme=scheme, user=user, password=password, host=host, port=port, params=params)


LONG_WAY: Final = -1


def common_host_port(host: str, port_text: str | None) -> int | None:
    """The port of a host name or IPv4 host matched by HOSTNAME; LONG_WAY (-1) when the
    full parser must decide (not False: bool is an int, and compiled code keeps it as 0)."""
    if host[-1] in "0123456789." and _bad_dotted_host(host):
        return LONG_WAY
    if port_text is None:
        return None
    port = int(port_text)
    return LONG_WAY if port > MAX_PORT else port


@short_text_cache(PARSE_CACHE_SIZE)
def _bad_dotted_host(host: str) -> bool:
    # Digits and dots that are not an IPv4 address; the same few hosts, again and again.
    return _DOTTED_DIGITS_RE.fullmatch(host) is not None and not is_ipv4(host)


def split_params(text: str) -> Params:
    """`;name=value;flag...` (text after the first ';') that a regex has already checked."""
    items: list[tuple[str, str | None]] = []
    for param in text.split(";"):
        name, has_value, value = param.partition("=")
        items.append((name, value if has_value else None))
    return Params(tuple(items))


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user = password = None
    at = rest.find("@")
    if at >= 0:
        user, has_password, secret = rest[:at].partition(":")
        if _USER_RE.fullmatch(user) is None:
            raise SipParseError(f"bad user part {excerpt(user)}")
        if has_password:
            if _PASSWORD_RE.fullmatch(secret) is None:
                raise SipParseError(f"bad password {excerpt(secret)}")
            password = secret
        rest = rest[at + 1 :]
    rest, has_headers, header_text = rest.partition("?")
    hostport, has_params, param_text = rest.partition(";")
    host, port = split_hostport(hostport)
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=_parse_uri_params(param_text) if has_params else NO_PARAMS,
        headers=_parse_uri_headers(header_text) if has_headers else (),
    )


def split_hostport(hostport: str) -> tuple[str, int | None]:
    """Split `host [":" port]`, checking both; an IPv6 host keeps its brackets."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            raise SipParseError(f"unterminated IPv6 reference {excerpt(hostport)}")
        host, after = hostport[: close + 1], hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise SipParseError(f"unexpected {excerpt(after)} after host")
        port_text = after[1:] if after else None
    else:
        if hostport.count(":") > 1:
            raise SipParseError(f"IPv6 address {excerpt(hostport)} must be in brackets")
        host, has_port, port_text_or_empty = hostport.partition(":")
        port_text = port_text_or_empty if has_port else None
    check_host(host)
    if port_text is None:
        return host, None
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise SipParseError(f"bad port {excerpt(port_text)}")
    port = int(port_text)
    if port > MAX_PORT:
        raise SipParseError(f"bad port {excerpt(port_text)}")
    return host, port


def check_host(host: str) -> None:
    """Raise unless host is a host name, an IPv4 address or a bracketed IPv6 address."""
    if not host:
        raise SipParseError("missing host")
    if host.startswith("["):
        if not host.endswith("]") or not is_ipv6(host[1:-1]):
            raise SipParseError(f"bad IPv6 reference {excerpt(host)}")
        return
    if _DOTTED_DIGITS_RE.fullmatch(host) is not None:
        if not is_ipv4(host):
            raise SipParseError(f"bad IPv4 address {excerpt(host)}")
        return
    if _HOSTNAME_RE.fullmatch(host) is None:
        raise SipParseError(f"bad host {excerpt(host)}")


def is_ipv4(text: str) -> bool:
    return _IPV4_RE.fullmatch(text) is not None


def is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _parse_uri_params(text: str) -> Params:
    items: list[tuple[str, str | None]] = []
    for param in text.split(";"):
        name, has_value, value = param.partition("=")
        if _PARAMCHARS_RE.fullmatch(name) is None:
            if not param:
                raise SipParseError("empty URI parameter")
            raise SipParseError(f"bad URI parameter {excerpt(param)}")
        if has_value and value and _PARAMCHARS_RE.fullmatch(value) is None:
            raise SipParseError(f"bad URI parameter {excerpt(param)}")
        items.append((name, value if has_value else None))
    return Params(tuple(items))


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for header in text.split("&"):
        name, has_value, value = header.partition("=")
        if (
            not name
            or not has_value
            or _HEADERCHARS_RE.fullmatch(name) is None
            or _HEADERCHARS_RE.fullmatch(value) is None
        ):
            raise SipParseError(f"bad URI header {excerpt(header)}")
        headers.append((name, value))
    return tuple(headers)


def _parse_tel(scheme: str, rest: str) -> TelUri:
    number, has_params, param_text = rest.partition(";")
    if _GLOBAL_NUMBER_RE.fullmatch(number) is None and _LOCAL_NUMBER_RE.fullmatch(number) is None:
        raise SipParseError(f"bad telephone number {excerpt(number)}")
    params = _parse_uri_params(param_text) if has_params else NO_PARAMS
    return TelUri(number, params, scheme)


def uri_equal(a: Uri, b: Uri) -> bool:
    """URI equivalence of RFC 3261 19.1.4 (SIP), RFC 3966 4 (TEL), RFC 3986 6.2.1 (others)."""
    if isinstance(a, SipUri) and isinstance(b, SipUri):
        return _sip_equal(a, b)
    if isinstance(a, TelUri) and isinstance(b, TelUri):
        return _tel_equal(a, b)
    if isinstance(a, AbsoluteUri) and isinstance(b, AbsoluteUri):
        return a.scheme.lower() == b.scheme.lower() and a.opaque == b.opaque
    return False


def _sip_equal(a: SipUri, b: SipUri) -> bool:
    return (
        a.scheme.lower() == b.scheme.lower()
        # userinfo is the one case-sensitive component
        and _normalize_optional(a.user) == _normalize_optional(b.user)
        and _normalize_optional(a.password) == _normalize_optional(b.password)
        and _host_key(a.host) == _host_key(b.host)
        and a.port == b.port
        and _params_equal(a.params, b.params)
        and _headers_key(a.headers) == _headers_key(b.headers)
    )


def _params_equal(a: Params, b: Params) -> bool:
    left = _params_key(a)
    right = _params_key(b)
    for name in left.keys() & right.keys():
        if left[name] != right[name]:
            return False
    only_one = left.keys() ^ right.keys()
    return not (only_one & _PRESENCE_SIGNIFICANT)


def _params_key(params: Params) -> dict[str, str | None]:
    key: dict[str, str | None] = {}
    for name, value in params:
        normal_name = _normalize(name).lower()
        if normal_name not in key:
            key[normal_name] = None if value is None else _normalize(value).lower()
    return key


def _headers_key(headers: tuple[tuple[str, str], ...]) -> frozenset[tuple[str, str]]:
    return frozenset((_normalize(name).lower(), _normalize(value)) for name, value in headers)


def _host_key(host: str) -> str:
    if host.startswith("[") and is_ipv6(host[1:-1]):
        return "[" + ipaddress.IPv6Address(host[1:-1]).compressed + "]"
    return host.lower()


def _normalize(text: str) -> str:
    """Resolve escapes of unreserved characters; reserved ones stay escaped (19.1.4)."""
    if "%" not in text:
        return text
    return _ESCAPE_RE.sub(_resolve_escape, text)


def _normalize_optional(text: str | None) -> str | None:
    return None if text is None else _normalize(text)


def _resolve_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return "%" + match.group(1).upper() if char in _RESERVED else char


def _tel_equal(a: TelUri, b: TelUri) -> bool:
    if a.is_global != b.is_global:
        return False
    if (
        a.number.translate(_VISUAL_SEPARATORS).lower()
        != b.number.translate(_VISUAL_SEPARATORS).lower()
    ):
        return False
    return _params_key(a.params) == _params_key(b.params)
