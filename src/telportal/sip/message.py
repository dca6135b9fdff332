"""SIP requests and responses: parsing, serialization, framing (RFC 3261 sections 7, 18.3).

Parsing is lazy past the start line: `parse_message` checks the start line, splits the
header section into lines and cuts the body by Content-Length; typed header fields are
parsed when their accessor is read (`message.cseq`, `message.vias`, ...) and raise
`SipParseError` then. `validate.check_mandatory` reads the ones every request needs, so
that a server can answer 400 naming the header at fault instead of dropping the message.

Serialization writes `Name: value` per stored line, in order, with the names as they
were written, and computes Content-Length from the body: a message we build serializes
to the same bytes every time, and a conventionally formatted message we parse
serializes back to its own bytes.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from telportal.sip.address import STAR, Address, parse_address, parse_contact
from telportal.sip.cseq import CSeq, parse_cseq
from telportal.sip.errors import SipParseError
from telportal.sip.grammar import TOKEN_RE, excerpt
from telportal.sip.headers import (
    LIST_HEADERS,
    Headers,
    checked_line,
    full_name,
    header_key,
    parse_header_section,
)
from telportal.sip.methods import KNOWN_METHODS
from telportal.sip.scalars import (
    parse_call_id,
    parse_content_length,
    parse_expires,
    parse_max_forwards,
)
from telportal.sip.status import reason_phrase
from telportal.sip.uri import Uri, parse_uri_detail
from telportal.sip.via import Via, parse_via

SIP_VERSION: Final = "SIP/2.0"
# The largest UDP payload; a stream peer sending more is more likely broken than busy.
DEFAULT_MAX_MESSAGE_SIZE: Final = 65535

_LINE_BREAK_RE = re.compile(r"\r?\n")


class _HeaderAccessors:
    """Typed views of the header fields both requests and responses carry.

    Each accessor parses its field once and keeps the result in `headers.memo` (by
    canonical key) until the field's lines change; a field that fails to parse is not
    kept, so it raises again on every read. Lists are copied on every read.
    """

    __slots__ = ()
    headers: Headers

    def single(self, name: str) -> str | None:
        """The value of a header field that may appear once; None when absent."""
        return self._single(header_key(name))

    def _single(self, key: str) -> str | None:
        headers = self.headers
        index = headers._index  # Headers.first and .several, inlined: this is hot
        value = (headers._build_index() if index is None else index).get(key)
        if value is None:
            return None
        multi = headers._multi
        if key not in LIST_HEADERS and (multi is None or key not in multi):
            return value
        values = headers.values_of(key)
        if len(values) > 1:
            raise SipParseError(f"{full_name(key)} header: appears {len(values)} times")
        return values[0]

    def _required(self, key: str) -> str:
        value = self._single(key)
        if value is None:
            raise SipParseError(f"{full_name(key)} header: missing")
        return value

    @property
    def call_id(self) -> str:
        memo = self.headers.memo
        value: str | None = memo.get("call-id")
        if value is None:
            value = memo["call-id"] = parse_call_id(self._required("call-id"))
        return value

    @property
    def cseq(self) -> CSeq:
        memo = self.headers.memo
        value: CSeq | None = memo.get("cseq")
        if value is None:
            value = memo["cseq"] = parse_cseq(self._required("cseq"))
        return value

    @property
    def from_(self) -> Address:
        memo = self.headers.memo
        value: Address | None = memo.get("from")
        if value is None:
            value = memo["from"] = parse_address(self._required("from"), context="From header")
        return value

    @property
    def to(self) -> Address:
        memo = self.headers.memo
        value: Address | None = memo.get("to")
        if value is None:
            value = memo["to"] = parse_address(self._required("to"), context="To header")
        return value

    @property
    def vias(self) -> list[Via]:
        """Every Via element, topmost first; empty when there is none."""
        return list(self._vias())

    def _vias(self) -> tuple[Via, ...]:
        memo = self.headers.memo
        value: tuple[Via, ...] | None = memo.get("via")
        if value is None:
            value = memo["via"] = tuple([parse_via(item) for item in self.headers.values_of("via")])
        return value

    @property
    def top_via(self) -> Via:
        headers = self.headers
        vias: tuple[Via, ...] | None = headers.memo.get("via")
        if vias is not None:
            if vias:
                return vias[0]
            raise SipParseError("Via header: missing")
        values = headers.values_of("via")
        if not values:
            raise SipParseError("Via header: missing")
        via = parse_via(values[0])
        if len(values) == 1:
            headers.memo["via"] = (via,)
        # Otherwise only the top one must be readable here; the others are checked (and
        # the whole list kept) when all of them are read.
        return via

    @property
    def contacts(self) -> list[Address] | Literal["*"]:
        """Every Contact element, or STAR for `Contact: *`."""
        value = self._contacts()
        return STAR if value == STAR else list(value)

    def _contacts(self) -> tuple[Address, ...] | Literal["*"]:
        memo = self.headers.memo
        value: tuple[Address, ...] | Literal["*"] | None = memo.get("contact")
        if value is None:
            value = () if self.headers.first("contact") is None else self._parse_contacts()
            memo["contact"] = value
        return value

    def _parse_contacts(self) -> tuple[Address, ...] | Literal["*"]:
        parsed = [parse_contact(value) for value in self.headers.values_of("contact")]
        addresses = [item for item in parsed if isinstance(item, Address)]
        if len(addresses) == len(parsed):
            return tuple(addresses)
        if len(parsed) > 1:
            raise SipParseError("Contact header: '*' must be the only value")
        return STAR

    @property
    def routes(self) -> list[Address]:
        return list(self._addresses("route", "Route header"))

    @property
    def record_routes(self) -> list[Address]:
        return list(self._addresses("record-route", "Record-Route header"))

    def _addresses(self, key: str, context: str) -> tuple[Address, ...]:
        memo = self.headers.memo
        value: tuple[Address, ...] | None = memo.get(key)
        if value is None:
            if self.headers.first(key) is None:
                value = ()
            else:
                value = tuple(
                    [parse_address(item, context=context) for item in self.headers.values_of(key)]
                )
            memo[key] = value
        return value

    @property
    def max_forwards(self) -> int | None:
        return self._number("max-forwards", parse_max_forwards)

    @property
    def content_length(self) -> int | None:
        return self._number("content-length", parse_content_length)

    @property
    def expires(self) -> int | None:
        return self._number("expires", parse_expires)

    def _number(self, key: str, parse: Callable[[str], int]) -> int | None:
        memo = self.headers.memo
        # Any: compiled code checks a declared type on assignment, and _ABSENT is neither.
        value: Any = memo.get(key, _ABSENT)
        if value is _ABSENT:
            text = self._single(key)
            value = memo[key] = None if text is None else parse(text)
        return cast("int | None", value)

    @property
    def content_type(self) -> str | None:
        """The media type, lower case and without parameters ("application/sdp")."""
        memo = self.headers.memo
        value: Any = memo.get("content-type", _ABSENT)
        if value is _ABSENT:
            text = self._single("content-type")
            value = memo["content-type"] = (
                None if text is None else text.partition(";")[0].strip(" \t").lower()
            )
        return cast("str | None", value)


_ABSENT: Any = object()


@dataclass(slots=True)
class Request(_HeaderAccessors):
    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        method: str,
        uri: Uri,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.method = method
        self.uri = uri
        self.headers = Headers() if headers is None else headers
        self.body = body
        self.version = version

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def to_bytes(self) -> bytes:
        return _serialize(self.start_line, self.headers, self.body)

    def __bytes__(self) -> bytes:
        return self.to_bytes()


@dataclass(slots=True)
class Response(_HeaderAccessors):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = SIP_VERSION

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        status: int,
        reason: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = SIP_VERSION,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = Headers() if headers is None else headers
        self.body = body
        self.version = version

    @property
    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    def to_bytes(self) -> bytes:
        return _serialize(self.start_line, self.headers, self.body)

    def __bytes__(self) -> bytes:
        return self.to_bytes()


Message = Request | Response


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    text = f"{start_line}\r\n{headers.wire(len(body))}\r\n"
    return text.encode("utf-8", "surrogateescape") + body


def parse_message(data: bytes) -> Request | Response:
    """Parse one complete message as carried by one datagram (RFC 3261 18.3).

    Leading CRLFs are skipped. Without Content-Length the body is the rest of the
    datagram; octets past Content-Length are ignored (RFC 4475 3.1.1.11).
    """
    start = _skip_crlf(data, 0)
    if start >= len(data):
        raise SipParseError("empty message")
    head_end, body_start = _find_head_end(data, start)
    if head_end < 0:
        raise SipParseError("header section not terminated by an empty line")
    message = _parse_head(data[start:head_end])
    message.body = _datagram_body(message.headers, data, body_start)
    return message


def _skip_crlf(data: bytes | bytearray, start: int) -> int:
    while data.startswith(b"\r\n", start):
        start += 2
    return start


def _find_head_end(data: bytes, start: int) -> tuple[int, int]:
    end = data.find(b"\r\n\r\n", start)
    # Bare LF line ends are tolerated (hand-written test messages use them).
    bare = data.find(b"\n\n", start, end if end >= 0 else len(data))
    if bare >= 0:
        return bare, bare + 2
    if end >= 0:
        return end, end + 4
    return -1, -1


def _parse_head(head: bytes) -> Request | Response:
    # surrogateescape keeps any octet, UTF-8 or not, and gives it back on serialization.
    text = head.decode("utf-8", "surrogateescape")
    crlf = text.count("\r\n")
    if text.count("\n") != crlf or text.count("\r") != crlf:
        lines = _LINE_BREAK_RE.split(text)
        lines[-1] = lines[-1].rstrip("\r")
        if any("\r" in line for line in lines):
            raise SipParseError("bare CR in header section")
        text = "\r\n".join(lines)
    start_line, _, section = text.partition("\r\n")
    # The start line is checked first, so that its errors are the ones reported.
    if start_line[:4].upper() == "SIP/":
        status, reason, version = _parse_status_line(start_line)
        return Response(status, reason, parse_header_section(section), b"", version)
    method, uri, version = _parse_request_line(start_line)
    return Request(method, uri, parse_header_section(section), b"", version)


def _parse_request_line(line: str) -> tuple[str, Uri, str]:
    # RFC 4475 3.1.2.6: trailing SP is tolerated; other stray whitespace is not.
    text = line.rstrip(" ")
    if not text:
        raise SipParseError("request line: empty")
    parts = text.split(" ")
    if "" in parts or "\t" in text:
        raise SipParseError(f"request line: elements not separated by single SP: {excerpt(text)}")
    if len(parts) != 3:
        raise SipParseError(
            f"request line: expected Method SP Request-URI SP SIP-Version,"
            f" found {len(parts)} elements in {excerpt(text)}"
        )
    method, uri_text, version = parts
    if method not in KNOWN_METHODS and TOKEN_RE.fullmatch(method) is None:
        raise SipParseError(f"request line: bad method {excerpt(method)}")
    if version != SIP_VERSION and version.upper() != SIP_VERSION:
        raise SipParseError(f"request line: bad SIP version {excerpt(version)}")
    try:
        uri = parse_uri_detail(uri_text)
    except SipParseError as exc:
        raise SipParseError(f"request line: bad Request-URI {excerpt(uri_text)}: {exc}") from None
    return method, uri, version


def _parse_status_line(line: str) -> tuple[int, str, str]:
    version, _, rest = line.partition(" ")
    if version != SIP_VERSION and version.upper() != SIP_VERSION:
        raise SipParseError(f"status line: bad SIP version {excerpt(version)}")
    code, _, reason = rest.partition(" ")
    if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
        raise SipParseError(f"status line: bad status code {excerpt(code)}")
    return int(code), reason, version


def _datagram_body(headers: Headers, data: bytes, body_start: int) -> bytes:
    value = headers.first("content-length")
    if value is None:
        return data[body_start:]
    several = headers.several("content-length")
    if several and any(other != value for other in headers.values_of("content-length")):
        # Conflicting lengths leave the body undefined. Keep the rest of the datagram and
        # let validation answer 400 (RFC 4475 3.3.8): the message itself was readable.
        return data[body_start:]
    length = parse_content_length(value)
    if not several:
        headers.memo["content-length"] = length  # what `content_length` would parse
    available = len(data) - body_start
    if length > available:
        raise SipParseError(f"Content-Length {length} exceeds body of {available} bytes")
    return data[body_start : body_start + length]


class MessageFramer:
    """Cuts a stream (TCP, TLS) into messages by Content-Length (RFC 3261 18.3).

    CRLFs between messages (RFC 5626 keep-alives) are skipped. A stream has no way to
    resynchronise after a framing error, so after `SipParseError` the connection should
    be closed: the framer keeps the offending bytes and raises again if fed more.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        # How far the buffer has been searched for the end of the header section, so a
        # head arriving one byte at a time is not rescanned from the start each time.
        self._scanned = 0
        self._pending: tuple[Request | Response, int, int] | None = None

    def feed(self, data: bytes) -> list[Request | Response]:
        """Add received bytes; returns the messages they complete, in order.

        An error is raised once no complete message precedes it in the buffer, so no
        good message is lost to a bad one behind it.
        """
        self._buffer += data
        messages: list[Request | Response] = []
        while True:
            try:
                message = self._next()
            except SipParseError:
                if messages:
                    return messages
                raise
            if message is None:
                return messages
            messages.append(message)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a returned message."""
        return len(self._buffer)

    def _next(self) -> Request | Response | None:
        buffer = self._buffer
        if self._pending is None:
            skip = _skip_crlf(buffer, 0)
            if skip:
                del buffer[:skip]
                self._scanned = 0
            end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                if len(buffer) > self.max_size:
                    raise SipParseError(
                        f"header section exceeds the limit of {self.max_size} bytes"
                    )
                self._scanned = len(buffer)
                return None
            message = _parse_head(bytes(buffer[:end]))
            total = end + 4 + _stream_content_length(message.headers)
            if total > self.max_size:
                raise SipParseError(
                    f"message of {total} bytes exceeds the limit of {self.max_size} bytes"
                )
            self._pending = (message, end + 4, total)
        message, body_start, total = self._pending
        if len(buffer) < total:
            return None
        message.body = bytes(buffer[body_start:total])
        del buffer[:total]
        self._pending = None
        self._scanned = 0
        return message


def _stream_content_length(headers: Headers) -> int:
    values = headers.get_all("Content-Length")
    if not values:
        raise SipParseError("Content-Length header: missing (required on stream transports)")
    if any(value != values[0] for value in values):
        raise SipParseError(f"Content-Length header: {len(values)} different values")
    return parse_content_length(values[0])


def response_headers(
    request_headers: Headers, status: int, *, to_tag: str | None = None
) -> Headers:
    """The header fields a response copies from its request (RFC 3261 8.2.6.2).

    Via lines, From, To, Call-ID and CSeq are copied as they were written, so this works
    on a request too broken to parse further (a 400 must still reach its sender). A To
    tag is added unless the To header already has one, is unreadable, or status is 100.

    What the request's accessors parsed from the copied lines is the same for the
    response: it is carried over, so that the response's own accessors need not parse.
    """
    fields = [
        (key, "Via", value) for key, _, value in request_headers.keyed_lines() if key == "via"
    ]
    first = request_headers.first
    memo = request_headers.memo
    carried: dict[str, Any] = {}
    if fields and "via" in memo:
        carried["via"] = memo["via"]
    for key, name in _COPIED:
        value = first(key)
        if value is None:
            continue
        if key == "to" and to_tag is not None and status != 100:
            tagged = _with_tag(value, to_tag)
            if tagged is not value:
                to = memo.get("to")
                fields.append(checked_line(name, tagged))
                if to is not None and "tag" not in to.params and TOKEN_RE.fullmatch(to_tag):
                    carried["to"] = to.with_tag(to_tag)  # what parsing `tagged` gives
                continue
        fields.append((key, name, value))
        if key in memo:
            carried[key] = memo[key]
    timestamp = first("timestamp")
    if status == 100 and timestamp is not None:
        fields.append(("timestamp", "Timestamp", timestamp))  # 8.2.6.1
    headers = Headers.trusted(fields)
    headers.memo = carried
    return headers


_COPIED: Final = (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq"))


def _with_tag(to_value: str, tag: str) -> str:
    """to_value with ;tag=tag added; to_value itself if it has a tag or is unreadable."""
    try:
        if parse_address(to_value).tag is not None:
            return to_value
    except SipParseError:
        return to_value
    return f"{to_value};tag={tag}"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """A response to request per RFC 3261 8.2.6, with extra header lines appended."""
    response_fields = response_headers(request.headers, status, to_tag=to_tag)
    for name, value in headers:
        response_fields.add(name, value)
    return Response(
        status, reason if reason is not None else reason_phrase(status), response_fields, body
    )
