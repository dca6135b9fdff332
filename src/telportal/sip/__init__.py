"""The SIP message layer: pure code that turns bytes into messages and back.

No sockets, no clocks, no tasks: transports feed datagrams to `parse_message` or stream
bytes to a `MessageFramer`, and write what `Request.to_bytes()` / `Response.to_bytes()`
return. Every parser raises `SipParseError`, whose message names the faulty element.
"""

from telportal.sip.address import STAR, Address, parse_address, parse_contact
from telportal.sip.cseq import CSeq, parse_cseq
from telportal.sip.errors import SipParseError
from telportal.sip.grammar import quote, split_list, unescape, unquote
from telportal.sip.headers import COMPACT_FORMS, Headers, full_name, header_key
from telportal.sip.message import (
    DEFAULT_MAX_MESSAGE_SIZE,
    SIP_VERSION,
    Message,
    MessageFramer,
    Request,
    Response,
    make_response,
    parse_message,
    response_headers,
)
from telportal.sip.params import Params, parse_params
from telportal.sip.scalars import (
    parse_call_id,
    parse_content_length,
    parse_expires,
    parse_max_forwards,
)
from telportal.sip.status import reason_phrase
from telportal.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_sip_uri, parse_uri, uri_equal
from telportal.sip.validate import (
    Accept,
    Drop,
    HeaderProblem,
    Reject,
    Rejection,
    ServerPolicy,
    Verdict,
    check_mandatory,
    check_request,
    screen_datagram,
    screen_message,
)
from telportal.sip.via import BRANCH_MAGIC_COOKIE, Via, parse_via

__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "COMPACT_FORMS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "SIP_VERSION",
    "STAR",
    "AbsoluteUri",
    "Accept",
    "Address",
    "CSeq",
    "Drop",
    "HeaderProblem",
    "Headers",
    "Message",
    "MessageFramer",
    "Params",
    "Reject",
    "Rejection",
    "Request",
    "Response",
    "ServerPolicy",
    "SipParseError",
    "SipUri",
    "TelUri",
    "Uri",
    "Verdict",
    "Via",
    "check_mandatory",
    "check_request",
    "full_name",
    "header_key",
    "make_response",
    "parse_address",
    "parse_call_id",
    "parse_contact",
    "parse_content_length",
    "parse_cseq",
    "parse_expires",
    "parse_max_forwards",
    "parse_message",
    "parse_params",
    "parse_sip_uri",
    "parse_uri",
    "parse_via",
    "quote",
    "reason_phrase",
    "response_headers",
    "screen_datagram",
    "screen_message",
    "split_list",
    "unescape",
    "unquote",
    "uri_equal",
]
