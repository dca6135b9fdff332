"""The Via header field (RFC 3261 sections 18.2, 20.42; RFC 3581 rport; RFC 5118 4.5)."""

import re
from dataclasses import dataclass

from telportal.sip.errors import SipParseError
from telportal.sip.grammar import TOKEN_CHARS, excerpt, parse_uint
from telportal.sip.params import NO_PARAMS, Params, parse_params
from telportal.sip.uri import (
    HOSTNAME,
    LONG_WAY,
    MAX_PORT,
    PARSE_CACHE_SIZE,
    common_host_port,
    is_ipv4,
    is_ipv6,
    split_hostport,
    split_params,
)
from telportal.text_cache import short_text_cache

# RFC 3261 8.1.1.7: a branch starting with this was built by an RFC 3261 element.
BRANCH_MAGIC_COOKIE = "z9hG4bK"

# via-parm = sent-protocol LWS sent-by *( SEMI via-params ); SLASH and COLON allow SWS.
_SENT_PROTOCOL_RE = re.compile(
    rf"([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)[ \t]*/[ \t]*([{TOKEN_CHARS}]+)"
)
_SENT_BY_RE = re.compile(r"[ \t]+(\[[^\]]*\]|[^ \t;:\[\]]+)(?:[ \t]*:[ \t]*([^ \t;]*))?")
# The shape nearly every Via has, checked in one regex call: no optional whitespace, no
# IPv6 host, no quoted parameter value. Anything else takes the general path.
_COMMON_VIA_RE = re.compile(
    f"SIP/2\\.0/([{TOKEN_CHARS}]+) ({HOSTNAME})(?::([0-9]{{1,5}}))?"
    f"((?:;[{TOKEN_CHARS}]+(?:=[{TOKEN_CHARS}:\\[\\]]+)?)*)"
)


@dataclass(slots=True, kw_only=True)
class Via:
    """One via-parm; host keeps the brackets of an IPv6 reference."""

    transport: str
    host: str
    port: int | None = None
    params: Params = NO_PARAMS
    protocol: str = "SIP/2.0"

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        *,
        transport: str,
        host: str,
        port: int | None = None,
        params: Params = NO_PARAMS,
        protocol: str = "SIP/2.0",
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.params = params
        self.protocol = protocol

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value a server filled in; None when absent or still empty."""
        value = self.params.get("rport")
        return None if value is None else parse_uint(value, "Via header: rport", MAX_PORT)

    @property
    def wants_rport(self) -> bool:
        """The client asked for the response at its source port (RFC 3581)."""
        return "rport" in self.params

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{self.params}"


def parse_via(value: str) -> Via:
    """Parse one via-parm (one element of a Via header field value)."""
    via = _via_with_branch(value)
    if via is not None:
        return via
    try:
        return _cached_via(value)
    except SipParseError as exc:
        raise SipParseError(f"Via header: {exc}") from None


@short_text_cache(PARSE_CACHE_SIZE)
def _cached_via(value: str) -> Via:
    # A response copies its request's Via lines: the same text is parsed once.
    return _parse_via(value)


# A Via's branch is new in every transaction, so a cache keyed by the whole text misses
# on every request (and on the response to every request we send). Everything else in
# a peer's Via repeats: the text is parsed once with its branch value replaced by this
# placeholder, and each Via of that shape is made from the parsed one with its branch.
_BRANCH_PLACEHOLDER = "-"
# What either parse path takes as an unquoted parameter value (params.py, _COMMON_VIA_RE):
# a branch of these characters parses the same way as the placeholder in its place.
_BRANCH_VALUE_RE = re.compile(f"[{TOKEN_CHARS}:\\[\\]]+")


def _via_with_branch(value: str) -> Via | None:
    """`value` parsed through the cache of its shape without the branch value, or None
    when it has no plain `;branch=` or its shape does not parse (the caller parses the
    text itself then, so that an error names the text as written)."""
    if '"' in value:  # a quoted value may hold ";branch=": not worth telling apart
        return None
    at = value.find(";branch=")
    if at < 0:
        return None
    start = at + 8
    end = value.find(";", start)
    if end < 0:
        end = len(value)
    branch = value[start:end]
    if _BRANCH_VALUE_RE.fullmatch(branch) is None:
        return None
    try:
        shape, index = _via_shape(f"{value[:start]}{_BRANCH_PLACEHOLDER}{value[end:]}")
    except SipParseError:
        return None
    if index < 0:
        return None
    items = shape.params.items
    return Via(
        transport=shape.transport,
        host=shape.host,
        port=shape.port,
        params=Params((*items[:index], ("branch", branch), *items[index + 1 :])),
        protocol=shape.protocol,
    )


@short_text_cache(PARSE_CACHE_SIZE)
def _via_shape(text: str) -> tuple[Via, int]:
    """The Via of `text` and the index of its one branch parameter (the placeholder),
    or -1 when it has another branch too (any case): then the shape is no use."""
    via = _parse_via(text)
    found = -1
    for index, (name, value) in enumerate(via.params.items):
        if name.lower() == "branch":
            if found >= 0 or name != "branch" or value != _BRANCH_PLACEHOLDER:
                return via, -1
            found = index
    return via, found


def own_via(transport: str, sent_by: str, branch: str, *, rport: bool = True) -> Via:
    """The Via of a request we send, `SIP/2.0/<transport> <sent_by>;branch=...;rport`.

    Made, not parsed: a new branch makes every such text unique, so the parse cache
    never helps, and parsing it costs a fifth of building the request. Only `sent_by`,
    which repeats, is parsed (and checked), once per value; the branch must be a token.
    """
    host, port = _sent_by_parts(sent_by)
    items: tuple[tuple[str, str | None], ...] = (
        (("branch", branch), ("rport", None)) if rport else (("branch", branch),)
    )
    return Via(transport=transport, host=host, port=port, params=Params(items))


@short_text_cache(PARSE_CACHE_SIZE)
def _sent_by_parts(sent_by: str) -> tuple[str, int | None]:
    try:
        via = _parse_via(f"SIP/2.0/UDP {sent_by}")
    except SipParseError as exc:
        raise SipParseError(f"Via header: sent-by {excerpt(sent_by)}: {exc}") from None
    if via.params:
        raise SipParseError(f"Via header: bad sent-by {excerpt(sent_by)}")
    return via.host, via.port


def _parse_via(value: str) -> Via:
    text = value.strip(" \t")
    common = _COMMON_VIA_RE.fullmatch(text)
    if common is not None:
        transport, host, port_text, param_text = common.groups()
        port = common_host_port(host, port_text)
        if port != LONG_WAY:
            params = NO_PARAMS
            if param_text:
                params = split_params(param_text[1:])
                lowered = param_text.lower()
                if "received" in lowered or "rport" in lowered or "ttl" in lowered:
                    _check_params(params)
            return Via(transport=transport, host=host, port=port, params=params)
    return _parse_via_general(text)


def _parse_via_general(text: str) -> Via:
    if not text:
        raise SipParseError("empty value")
    protocol = _SENT_PROTOCOL_RE.match(text)
    if protocol is None:
        raise SipParseError(f"bad sent-protocol in {excerpt(text)}")
    sent_by = _SENT_BY_RE.match(text, protocol.end())
    if sent_by is None:
        raise SipParseError("missing sent-by")
    hostport = sent_by.group(1)
    if sent_by.group(2) is not None:
        hostport += ":" + sent_by.group(2)
    host, port = split_hostport(hostport)
    params = parse_params(text, sent_by.end())
    _check_params(params)
    return Via(
        protocol=f"{protocol.group(1)}/{protocol.group(2)}",
        transport=protocol.group(3),
        host=host,
        port=port,
        params=params,
    )


def _check_params(params: Params) -> None:
    for name, value in params:
        lower = name.lower()
        if lower == "received":
            _check_received(value or "")
        elif lower == "rport" and value is not None:
            parse_uint(value, "rport", MAX_PORT)
        elif lower == "ttl":
            parse_uint(value or "", "ttl", 255)


def _check_received(value: str) -> None:
    # RFC 5118 4.5: an IPv6 received value may come with or without brackets.
    if value.startswith("[") and value.endswith("]"):
        valid = is_ipv6(value[1:-1])
    else:
        valid = is_ipv4(value) or is_ipv6(value)
    if not valid:
        raise SipParseError(f"bad received address {excerpt(value)}")
