"""Session descriptions (RFC 4566), parsed to frozen records and serialized back.

Parsing rules:
- lines end in CRLF, and a lone LF is accepted too (RFC 4566 section 5 asks parsers to
  be tolerant); blank lines are skipped;
- the session part runs from v= to the first m=, each m= starts a media part;
- attribute order is kept, so `a=` lines come back in the order they went in; the
  attributes the offer/answer logic reads (rtpmap, fmtp, ptime, rtcp) are checked here so
  that reading them later never fails;
- i= u= e= p= r= z= k= lines are kept at session level; at media level i= and b= are
  kept and k= (obsolete, RFC 8866) is dropped;
- a type letter outside RFC 4566 makes the whole description invalid, as section 5
  requires.

The records are frozen, so what is parsed from a given text can be shared: an a= line,
an rtpmap and an address's IP version are parsed once and kept in bounded caches keyed
by their text. Every call's offer repeats the same few lines (`a=rtpmap:0 PCMU/8000`,
`a=fmtp:101 0-15`, `a=sendrecv`), and answering one reads its rtpmaps four times.
"""

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import final

from telportal.text_cache import short_text_cache

SDP_VERSION = 0
NETWORK_TYPE_IN = "IN"
ADDRESS_TYPE_IP4 = "IP4"
ADDRESS_TYPE_IP6 = "IP6"
# RFC 3264 section 8.4: the RFC 2543 way of putting a call on hold.
HOLD_ADDRESS = "0.0.0.0"  # noqa: S104 - an SDP value, not a socket bind

_SESSION_DESCRIPTIVE = "iuep"
_SESSION_TIMING_EXTRA = "rzk"
_SESSION_TYPES = frozenset("vosiuepcbtrzkam")
_MEDIA_TYPES = frozenset("icbka")
_MAX_PORT = 0xFFFF
_MAX_PAYLOAD_TYPE = 127
# Entries per parse cache: far more distinct lines than a platform's phones and
# carriers send, few enough that lines unique to one call (a=ssrc) only cycle through.
PARSE_CACHE_SIZE = 2048


class SdpError(ValueError):
    """A session description that cannot be parsed or negotiated; the message says why."""


class Direction(enum.StrEnum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> "Direction":
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reversed(self) -> "Direction":
        """The direction seen from the other end."""
        return Direction.of(self.receives, self.sends)


_DIRECTIONS = frozenset(d.value for d in Direction)


@dataclass(frozen=True, slots=True)
class Origin:
    """The o= line. `session_version` must grow with every change (RFC 3264 section 8)."""

    username: str
    session_id: str
    session_version: int
    address: str
    address_type: str = ADDRESS_TYPE_IP4
    network_type: str = NETWORK_TYPE_IN

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        username: str,
        session_id: str,
        session_version: int,
        address: str,
        address_type: str = ADDRESS_TYPE_IP4,
        network_type: str = NETWORK_TYPE_IN,
    ) -> None:
        object.__setattr__(self, "username", username)
        object.__setattr__(self, "session_id", session_id)
        object.__setattr__(self, "session_version", session_version)
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "address_type", address_type)
        object.__setattr__(self, "network_type", network_type)

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.network_type} {self.address_type} {self.address}"
        )


@final
@dataclass(frozen=True, slots=True)
class Connection:
    """A c= line; `address` may carry a multicast /ttl suffix, kept as written."""

    address: str
    address_type: str = ADDRESS_TYPE_IP4
    network_type: str = NETWORK_TYPE_IN

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        address: str,
        address_type: str = ADDRESS_TYPE_IP4,
        network_type: str = NETWORK_TYPE_IN,
    ) -> None:
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "address_type", address_type)
        object.__setattr__(self, "network_type", network_type)

    @classmethod
    def for_address(cls, address: str) -> "Connection":
        """The c= line for an IP literal, choosing IP4 or IP6 from its form."""
        version = ip_version(address)
        if version is None:
            raise ValueError(f"{address!r} is not an IP address")
        return Connection(address, ADDRESS_TYPE_IP6 if version == 6 else ADDRESS_TYPE_IP4)

    @property
    def is_hold(self) -> bool:
        return self.address_type == ADDRESS_TYPE_IP4 and self.address == HOLD_ADDRESS

    def __str__(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"


@dataclass(frozen=True, slots=True)
class Attribute:
    """An a= line: a property attribute has no value, a value attribute has one."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class RtpMap:
    """a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        text = f"{self.payload_type} {self.encoding}/{self.clock_rate}"
        return text if self.channels is None else f"{text}/{self.channels}"

    @staticmethod
    def parse(value: str) -> "RtpMap":
        return _parse_rtpmap(value)


@short_text_cache(PARSE_CACHE_SIZE)
def _parse_rtpmap(value: str) -> RtpMap:
    try:
        payload_type, spec = value.split(" ", 1)
        parts = spec.strip().split("/")
        if len(parts) not in (2, 3):
            raise ValueError
        rtpmap = RtpMap(
            int(payload_type),
            parts[0],
            int(parts[1]),
            int(parts[2]) if len(parts) == 3 else None,
        )
    except ValueError:
        raise SdpError(f"a=rtpmap:{value} is not '<payload type> <name>/<rate>'") from None
    if not 0 <= rtpmap.payload_type <= _MAX_PAYLOAD_TYPE:
        raise SdpError(f"a=rtpmap:{value} has payload type out of range 0-127")
    return rtpmap


@short_text_cache(PARSE_CACHE_SIZE)
def ip_version(host: str) -> int | None:
    """4 or 6 for an IP literal, None for anything else (a domain name)."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RtcpAddress:
    """a=rtcp (RFC 3605): where the peer wants RTCP, when not on the RTP port + 1."""

    port: int
    connection: Connection | None = None

    def __str__(self) -> str:
        return str(self.port) if self.connection is None else f"{self.port} {self.connection}"


def _is_number(text: str) -> bool:
    # str.isdigit alone accepts characters such as "²" that int() refuses.
    return text.isascii() and text.isdigit()


def _parse_port(text: str, context: str) -> int:
    if not _is_number(text) or int(text) > _MAX_PORT:
        raise SdpError(f"{context}: invalid port {text!r}")
    return int(text)


def _parse_rtcp(value: str) -> RtcpAddress:
    fields = value.split()
    if len(fields) not in (1, 4):
        raise SdpError(f"a=rtcp:{value} is not '<port> [IN IP4|IP6 <address>]'")
    port = _parse_port(fields[0], "a=rtcp")
    if len(fields) == 1:
        return RtcpAddress(port)
    return RtcpAddress(port, _parse_connection(" ".join(fields[1:]), "a=rtcp"))


def _parse_connection(value: str, context: str = "c= line") -> Connection:
    fields = value.split()
    if len(fields) != 3:
        raise SdpError(f"{context}: expected 3 fields, got {len(fields)}")
    network_type, address_type, address = fields
    if network_type != NETWORK_TYPE_IN:
        raise SdpError(f"{context}: unsupported network type {network_type!r}")
    if address_type not in (ADDRESS_TYPE_IP4, ADDRESS_TYPE_IP6):
        raise SdpError(f"{context}: unsupported address type {address_type!r}")
    host = address.split("/", 1)[0]
    version = ip_version(host)  # None: a domain name, which RFC 4566 allows
    if version is not None and f"IP{version}" != address_type:
        raise SdpError(f"{context}: address {host} is not an {address_type} address")
    return Connection(address, address_type, network_type)


def _check_attribute(attribute: Attribute) -> None:
    """Reject malformed attributes that negotiation reads, so reading them cannot fail."""
    name, value = attribute.name, attribute.value
    if name == "rtpmap":
        RtpMap.parse(value or "")
    elif name == "ptime":
        if value is None or not _is_number(value) or int(value) == 0:
            raise SdpError(f"a=ptime:{value} is not a positive number of milliseconds")
    elif name == "rtcp":
        _parse_rtcp(value or "")
    elif name == "fmtp":
        if value is None or " " not in value or not _is_number(value.split(" ", 1)[0]):
            raise SdpError(f"a=fmtp:{value} is not '<payload type> <parameters>'")
    elif name in _DIRECTIONS and value is not None:
        raise SdpError(f"a={name} takes no value, got {value!r}")


class _AttributeReader:
    """Typed reads over an attribute list; shared by session and media parts."""

    __slots__ = ()

    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> str | None:
        """The value of the first attribute of that name ('' for a property attribute)."""
        for attribute in self.attributes:
            if attribute.name == name:
                return "" if attribute.value is None else attribute.value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [a.value or "" for a in self.attributes if a.name == name]

    @property
    def direction(self) -> Direction | None:
        """The direction attribute written here, or None when there is none."""
        for attribute in self.attributes:
            if attribute.name in _DIRECTIONS:
                return Direction(attribute.name)
        return None


@dataclass(frozen=True, slots=True)
class MediaDescription(_AttributeReader):
    """An m= line and the lines under it. `formats` are as written (payload types for RTP)."""

    media: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    port_count: int | None = None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: tuple[str, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        media: str,
        port: int,
        protocol: str,
        formats: tuple[str, ...],
        port_count: int | None = None,
        information: str | None = None,
        connection: Connection | None = None,
        bandwidths: tuple[str, ...] = (),
        attributes: tuple[Attribute, ...] = (),
    ) -> None:
        object.__setattr__(self, "media", media)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "protocol", protocol)
        object.__setattr__(self, "formats", formats)
        object.__setattr__(self, "port_count", port_count)
        object.__setattr__(self, "information", information)
        object.__setattr__(self, "connection", connection)
        object.__setattr__(self, "bandwidths", bandwidths)
        object.__setattr__(self, "attributes", attributes)

    @property
    def payload_types(self) -> list[int]:
        return [int(f) for f in self.formats if _is_number(f)]

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        maps = (RtpMap.parse(value) for value in self.attribute_values("rtpmap"))
        return {rtpmap.payload_type: rtpmap for rtpmap in maps}

    @property
    def fmtps(self) -> dict[int, str]:
        pairs = (value.split(" ", 1) for value in self.attribute_values("fmtp"))
        return {int(payload_type): parameters.strip() for payload_type, parameters in pairs}

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return None if value is None else int(value)

    @property
    def rtcp(self) -> RtcpAddress | None:
        value = self.attribute("rtcp")
        return None if value is None else _parse_rtcp(value)

    def lines(self) -> list[str]:
        port = self.port if self.port_count is None else f"{self.port}/{self.port_count}"
        lines = [f"m={self.media} {port} {self.protocol} {' '.join(self.formats)}"]
        if self.information is not None:
            lines.append(f"i={self.information}")
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={bandwidth}" for bandwidth in self.bandwidths)
        lines.extend(f"a={attribute}" for attribute in self.attributes)
        return lines


@dataclass(frozen=True, slots=True)
class SessionDescription(_AttributeReader):
    """A whole SDP body."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timing: tuple[tuple[int, int], ...] = ((0, 0),)
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    bandwidths: tuple[str, ...] = ()
    # i= u= e= p= r= z= k= lines, as (type letter, value) in the order they came.
    extra_lines: tuple[tuple[str, str], ...] = field(default=())

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        origin: Origin,
        session_name: str = "-",
        connection: Connection | None = None,
        timing: tuple[tuple[int, int], ...] = ((0, 0),),
        attributes: tuple[Attribute, ...] = (),
        media: tuple[MediaDescription, ...] = (),
        bandwidths: tuple[str, ...] = (),
        extra_lines: tuple[tuple[str, str], ...] = (),
    ) -> None:
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "session_name", session_name)
        object.__setattr__(self, "connection", connection)
        object.__setattr__(self, "timing", timing)
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "media", media)
        object.__setattr__(self, "bandwidths", bandwidths)
        object.__setattr__(self, "extra_lines", extra_lines)

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """A media part's own c= line, else the session's."""
        return media.connection or self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        """A media part's direction, else the session's, else sendrecv (RFC 3264 5.1)."""
        return media.direction or self.direction or Direction.SENDRECV

    def serialize(self) -> str:
        lines = [f"v={SDP_VERSION}", f"o={self.origin}", f"s={self.session_name}"]
        lines.extend(f"{t}={v}" for t, v in self.extra_lines if t in _SESSION_DESCRIPTIVE)
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.extend(f"b={bandwidth}" for bandwidth in self.bandwidths)
        lines.extend(f"t={start} {stop}" for start, stop in self.timing)
        lines.extend(f"{t}={v}" for t, v in self.extra_lines if t in _SESSION_TIMING_EXTRA)
        lines.extend(f"a={attribute}" for attribute in self.attributes)
        for media in self.media:
            lines.extend(media.lines())
        return "\r\n".join(lines) + "\r\n"

    @staticmethod
    def parse(text: str | bytes) -> "SessionDescription":
        if isinstance(text, bytes):
            try:
                text = text.decode()
            except UnicodeDecodeError as exc:
                raise SdpError(f"SDP is not valid UTF-8 at byte {exc.start}") from None
        return _Parser(text).parse()


@short_text_cache(PARSE_CACHE_SIZE)
def _attribute(value: str) -> Attribute:
    """The a= line's attribute, checked (an error is raised again for each parse)."""
    name, colon, rest = value.partition(":")
    if not name:
        raise SdpError(f"a={value} has no attribute name")
    attribute = Attribute(name, rest if colon else None)
    _check_attribute(attribute)
    return attribute


@dataclass(slots=True)
class _MediaDraft:
    media: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    port_count: int | None
    information: str | None = None
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        media: str,
        port: int,
        protocol: str,
        formats: tuple[str, ...],
        port_count: int | None,
        information: str | None = None,
        connection: Connection | None = None,
        bandwidths: list[str] | None = None,
        attributes: list[Attribute] | None = None,
    ) -> None:
        self.media = media
        self.port = port
        self.protocol = protocol
        self.formats = formats
        self.port_count = port_count
        self.information = information
        self.connection = connection
        self.bandwidths = [] if bandwidths is None else bandwidths
        self.attributes = [] if attributes is None else attributes

    def build(self) -> MediaDescription:
        return MediaDescription(
            self.media,
            self.port,
            self.protocol,
            self.formats,
            self.port_count,
            self.information,
            self.connection,
            tuple(self.bandwidths),
            tuple(self.attributes),
        )


class _Parser:
    def __init__(self, text: str) -> None:
        lines: list[tuple[int, str]] = []
        for number, line in enumerate(text.split("\n"), start=1):
            if line and not line.isspace():  # as `line.strip()`, without the copy
                lines.append((number, line.rstrip("\r")))
        self._lines = lines
        self._origin: Origin | None = None
        self._session_name: str | None = None
        self._connection: Connection | None = None
        self._timing: list[tuple[int, int]] = []
        self._attributes: list[Attribute] = []
        self._bandwidths: list[str] = []
        self._extra: list[tuple[str, str]] = []
        self._media: list[_MediaDraft] = []

    def parse(self) -> SessionDescription:
        if not self._lines:
            raise SdpError("SDP is empty")
        for number, line in self._lines:
            if len(line) < 2 or line[1] != "=" or not line[0].islower():
                raise SdpError(f"line {number}: expected '<type>=<value>', got {line!r}")
            kind, value = line[0], line[2:]
            if number == self._lines[0][0]:
                if kind != "v":
                    raise SdpError("SDP must start with a v= line")
                if value.strip() != str(SDP_VERSION):
                    raise SdpError(f"unsupported SDP version {value!r}, expected 0")
                continue
            try:
                if self._media:
                    self._media_line(kind, value)
                else:
                    self._session_line(kind, value)
            except SdpError as exc:
                raise SdpError(f"line {number}: {exc}") from None
        if self._origin is None:
            raise SdpError("SDP has no o= line")
        if self._session_name is None:
            raise SdpError("SDP has no s= line")
        if not self._timing:
            raise SdpError("SDP has no t= line")
        return SessionDescription(
            origin=self._origin,
            session_name=self._session_name,
            connection=self._connection,
            timing=tuple(self._timing),
            attributes=tuple(self._attributes),
            media=tuple(draft.build() for draft in self._media),
            bandwidths=tuple(self._bandwidths),
            extra_lines=tuple(self._extra),
        )

    def _session_line(self, kind: str, value: str) -> None:
        if kind not in _SESSION_TYPES:
            raise SdpError(f"unknown line type {kind!r}")
        if kind == "v":
            raise SdpError("a second v= line")
        if kind == "o":
            self._origin = _parse_origin(value)
        elif kind == "s":
            self._session_name = value
        elif kind == "c":
            self._connection = _parse_connection(value)
        elif kind == "b":
            self._bandwidths.append(value)
        elif kind == "t":
            self._timing.append(_parse_timing(value))
        elif kind == "a":
            self._attributes.append(_attribute(value))
        elif kind == "m":
            self._media.append(_parse_media(value))
        else:
            self._extra.append((kind, value))

    def _media_line(self, kind: str, value: str) -> None:
        if kind == "m":
            self._media.append(_parse_media(value))
            return
        if kind not in _MEDIA_TYPES:
            if kind in _SESSION_TYPES:
                raise SdpError(f"{kind}= line is not allowed after the first m= line")
            raise SdpError(f"unknown line type {kind!r}")
        draft = self._media[-1]
        if kind == "i":
            draft.information = value
        elif kind == "c":
            draft.connection = _parse_connection(value)
        elif kind == "b":
            draft.bandwidths.append(value)
        elif kind == "a":
            draft.attributes.append(_attribute(value))


def _parse_origin(value: str) -> Origin:
    fields = value.split()
    if len(fields) != 6:
        raise SdpError(f"o= line: expected 6 fields, got {len(fields)}")
    username, session_id, version, network_type, address_type, address = fields
    if not _is_number(version):
        raise SdpError(f"o= line: session version {version!r} is not a number")
    if network_type != NETWORK_TYPE_IN:
        raise SdpError(f"o= line: unsupported network type {network_type!r}")
    return Origin(username, session_id, int(version), address, address_type, network_type)


def _parse_timing(value: str) -> tuple[int, int]:
    fields = value.split()
    if len(fields) != 2 or not all(_is_number(f) for f in fields):
        raise SdpError(f"t= line: expected '<start> <stop>', got {value!r}")
    return int(fields[0]), int(fields[1])


def _parse_media(value: str) -> _MediaDraft:
    fields = value.split()
    if len(fields) < 4:
        raise SdpError(f"m= line: expected '<media> <port> <proto> <format> ...', got {value!r}")
    media, port_text, protocol, *formats = fields
    port_text, slash, count_text = port_text.partition("/")
    port = _parse_port(port_text, "m= line")
    port_count = None
    if slash:
        if not _is_number(count_text) or int(count_text) == 0:
            raise SdpError(f"m= line: invalid port count {count_text!r}")
        port_count = int(count_text)
    return _MediaDraft(media, port, protocol, tuple(formats), port_count)
