"""What a server must answer to a request it cannot accept (RFC 3261 8.2, 16.3; RFC 4475).

The checks run in the order RFC 3261 8.2 implies, syntax first, so that a malformed
request is always a 400 even when its method is also unknown (RFC 4475 3.1.2.13):

    400  a mandatory header is missing, repeated, unreadable, or CSeq names another method
    501  the method is unknown; 405 (with Allow) when known but not served
    416  the Request-URI scheme is not served (8.2.2.1)
    420  Require names an option tag not supported (8.2.2.3), with Unsupported
    415  the body type or encoding is not understood (8.2.3), with Accept/Accept-Encoding
    406  an INVITE's Accept excludes every type the answer could take

`screen_datagram` applies them to raw bytes and also covers what `parse_message`
refuses: a request whose Via survives is answered (400; 505 for another SIP version;
513 when too large) by copying header lines verbatim; responses and ACKs never are.
"""

import re
from dataclasses import dataclass

from telportal.sip.errors import SipParseError
from telportal.sip.headers import Headers, parse_header_section
from telportal.sip.message import (
    DEFAULT_MAX_MESSAGE_SIZE,
    SIP_VERSION,
    Request,
    Response,
    make_response,
    parse_message,
    response_headers,
)
from telportal.sip.methods import ACK, CANCEL, INVITE, KNOWN_METHODS
from telportal.sip.status import reason_phrase

_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_LINE_BREAK_RE = re.compile(r"\r?\n")
_UNPRINTABLE_RE = re.compile(r"[\x00-\x1f\x7f]")
_REASON_LIMIT = 200


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """The first mandatory header at fault and the exact problem."""

    header: str
    detail: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """The final response a server should send instead of processing the request."""

    status: int
    reason: str
    detail: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    """What this server serves; the defaults fit the Telportal B2BUA and registrar."""

    methods: frozenset[str] = KNOWN_METHODS
    uri_schemes: frozenset[str] = frozenset({"sip", "sips", "tel"})
    option_tags: frozenset[str] = frozenset()
    body_types: frozenset[str] = frozenset(
        {"application/sdp", "multipart/mixed", "multipart/alternative", "text/plain"}
    )
    answer_types: frozenset[str] = frozenset({"application/sdp"})
    # RFC 2543 peers send no Max-Forwards; RFC 3261 16.3 lets the check pass then and
    # RFC 4475 3.4.1 expects such a request to be handled.
    require_max_forwards: bool = False
    # Larger datagrams are answered 513 (RFC 3261 21.5.14) without being processed.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE


DEFAULT_POLICY = ServerPolicy()


@dataclass(frozen=True, slots=True)
class Accept:
    message: Request | Response

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, message: Request | Response) -> None:
        object.__setattr__(self, "message", message)


@dataclass(frozen=True, slots=True)
class Reject:
    rejection: Rejection
    response: Response


@dataclass(frozen=True, slots=True)
class Drop:
    detail: str


Verdict = Accept | Reject | Drop


def check_mandatory(
    message: Request | Response, *, require_max_forwards: bool = False
) -> HeaderProblem | None:
    """The first header a request (or response) cannot be processed with, if any.

    Checked in this order: To, From, CSeq (its method must be the request's), Call-ID,
    Max-Forwards, Via, Content-Length, Content-Type, and, not mandatory but read by
    every dialog and proxy step that follows, Contact, Route and Record-Route. Missing
    Max-Forwards is accepted unless require_max_forwards (see ServerPolicy).

    Straight-line code rather than a table of checks: it runs for every message
    received, and what it parses stays in the message for the layers above.
    """
    header = "To"
    try:
        _ = message.to
        header = "From"
        _ = message.from_
        header = "CSeq"
        cseq = message.cseq
        if isinstance(message, Request) and cseq.method != message.method:
            raise SipParseError(
                f"CSeq header: method {cseq.method} does not match request method {message.method}"
            )
        header = "Call-ID"
        _ = message.call_id
        header = "Max-Forwards"
        if isinstance(message, Request) and message.max_forwards is None and require_max_forwards:
            raise SipParseError("Max-Forwards header: missing")
        header = "Via"
        if not message._vias():  # the accessors' own tuples: no copies to throw away
            raise SipParseError("Via header: missing")
        header = "Content-Length"
        _ = message.content_length
        header = "Content-Type"
        _ = message.content_type
        header = "Contact"
        _ = message._contacts()
        header = "Route"
        _ = message._addresses("route", "Route header")
        header = "Record-Route"
        _ = message._addresses("record-route", "Record-Route header")
    except SipParseError as exc:
        return HeaderProblem(header, str(exc))
    return None


def check_request(  # noqa: PLR0911 - one exit per check, in the order of 8.2
    request: Request, policy: ServerPolicy = DEFAULT_POLICY
) -> Rejection | None:
    """The response a UAS must send instead of processing request; None to process it.

    Each check runs only when the request has what it looks at, which most have not.
    """
    problem = check_mandatory(request, require_max_forwards=policy.require_max_forwards)
    if problem is not None:
        return Rejection(400, _reason(problem.detail), problem.detail)
    if request.method not in policy.methods:
        return _check_method(request, policy)
    if request.uri.scheme not in policy.uri_schemes:
        rejection = _check_scheme(request, policy)
        if rejection is not None:
            return rejection
    headers = request.headers
    if headers.first("require") is not None:
        rejection = _check_require(request, policy)
        if rejection is not None:
            return rejection
    if request.body:
        rejection = _check_body(request, policy)
        if rejection is not None:
            return rejection
    if headers.first("accept") is not None:
        return _check_accept(request, policy)
    return None


def _rejection(status: int, detail: str, *headers: tuple[str, str]) -> Rejection:
    return Rejection(status, reason_phrase(status), detail, headers)


def _check_method(request: Request, policy: ServerPolicy) -> Rejection | None:
    if request.method in policy.methods:
        return None
    detail = f"method {request.method} not supported"
    if request.method in KNOWN_METHODS:
        return _rejection(405, detail, ("Allow", ", ".join(sorted(policy.methods))))
    return _rejection(501, detail)


def _check_scheme(request: Request, policy: ServerPolicy) -> Rejection | None:
    scheme = request.uri.scheme.lower()
    if scheme in policy.uri_schemes:
        return None
    return _rejection(416, f"Request-URI scheme {scheme} not supported")


def _check_require(request: Request, policy: ServerPolicy) -> Rejection | None:
    # 8.2.2.3: Require is not applied to ACK and CANCEL, which cannot be refused this way.
    if request.method in (ACK, CANCEL):
        return None
    unknown = [
        tag
        for tag in request.headers.get_all("Require")
        if tag and tag.lower() not in policy.option_tags
    ]
    if not unknown:
        return None
    listed = ", ".join(unknown)
    return _rejection(420, f"unsupported extensions: {listed}", ("Unsupported", listed))


def _check_body(request: Request, policy: ServerPolicy) -> Rejection | None:
    if not request.body:
        return None
    encodings = [
        coding.lower()
        for coding in request.headers.get_all("Content-Encoding")
        if coding and coding.lower() != "identity"
    ]
    if encodings:
        return _rejection(
            415, f"content encoding {encodings[0]} not supported", ("Accept-Encoding", "identity")
        )
    content_type = request.content_type or "application/sdp"  # 20.15: the default
    if content_type in policy.body_types:
        return None
    accepted = ", ".join(sorted(policy.body_types))
    return _rejection(415, f"content type {content_type} not supported", ("Accept", accepted))


def _check_accept(request: Request, policy: ServerPolicy) -> Rejection | None:
    if request.method != INVITE or "Accept" not in request.headers:
        return None
    ranges = [_media_range(value) for value in request.headers.get_all("Accept")]
    if any(_matches(media_range, kind) for media_range in ranges for kind in policy.answer_types):
        return None
    return _rejection(406, "Accept header excludes every answer type")


def _media_range(value: str) -> str:
    media, _, params = value.partition(";")
    for param in params.split(";"):
        name, _, qvalue = param.partition("=")
        if name.strip(" \t").lower() == "q" and qvalue.strip(" \t").rstrip("0.") == "":
            return ""  # q=0 means "not acceptable"
    return media.strip(" \t").lower()


def _matches(media_range: str, media_type: str) -> bool:
    if not media_range:
        return False
    if media_range == "*/*":
        return True
    kind, _, subtype = media_range.partition("/")
    return media_range == media_type or (subtype == "*" and media_type.startswith(kind + "/"))


def _reason(detail: str) -> str:
    """A reason phrase from detail: one line, printable, bounded."""
    text = _UNPRINTABLE_RE.sub("?", detail)
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 3] + "..."


def screen_message(
    message: Request | Response, *, to_tag: str, policy: ServerPolicy = DEFAULT_POLICY
) -> Verdict:
    """Accept a parsed message, or say how to refuse it; to_tag tags a rejection's To."""
    if isinstance(message, Response):
        problem = check_mandatory(message)
        return Accept(message) if problem is None else Drop(problem.detail)
    rejection = check_request(message, policy)
    if rejection is None:
        return Accept(message)
    if message.method == ACK:
        return Drop(rejection.detail)
    response = make_response(
        message, rejection.status, rejection.reason, to_tag=to_tag, headers=rejection.headers
    )
    return Reject(rejection, response)


def screen_datagram(data: bytes, *, to_tag: str, policy: ServerPolicy = DEFAULT_POLICY) -> Verdict:
    """What a server should do with one received datagram. Never raises."""
    limit = policy.max_message_size
    if len(data) > limit:
        detail = f"message of {len(data)} bytes exceeds the limit of {limit} bytes"
        return _salvage(data, detail, to_tag, status=513)
    try:
        message = parse_message(data)
    except SipParseError as exc:
        return _salvage(data, str(exc), to_tag)
    return screen_message(message, to_tag=to_tag, policy=policy)


def _salvage(data: bytes, detail: str, to_tag: str, status: int = 400) -> Verdict:
    """Answer an unreadable or unwanted request from its raw header lines, if it has a Via."""
    text = data.lstrip(b"\r\n")
    end = re.search(rb"\r?\n\r?\n", text)
    head = text[: end.start()] if end else text
    lines = _LINE_BREAK_RE.split(head.decode("utf-8", "surrogateescape"))
    elements = lines[0].split()
    if not elements or lines[0][:4].upper() == "SIP/" or elements[0] == ACK:
        return Drop(detail)
    section = "\r\n".join(line.rstrip("\r") for line in lines[1:])
    if "\r" in section.replace("\r\n", ""):
        return Drop(detail)  # a bare CR would be copied into the response
    try:
        headers = parse_header_section(section)
    except SipParseError:
        return Drop(detail)
    if "Via" not in headers:
        return Drop(detail)
    version = elements[-1]
    if _VERSION_RE.fullmatch(version) and version.upper() != SIP_VERSION:
        rejection = Rejection(505, reason_phrase(505), detail)
    elif status == 400:
        rejection = Rejection(400, _reason(detail), detail)
    else:
        rejection = Rejection(status, reason_phrase(status), detail)
    return Reject(rejection, _raw_response(headers, rejection, to_tag))


def _raw_response(headers: Headers, rejection: Rejection, to_tag: str) -> Response:
    return Response(
        rejection.status,
        rejection.reason,
        response_headers(headers, rejection.status, to_tag=to_tag),
    )
