"""Property tests of the SIP message layer: whatever bytes arrive, the parsers either
give a message or raise `SipParseError`, never anything else, and a message that
parses serializes to bytes that parse back to the same bytes (a fixed point).

The inputs are valid messages (tests/unit/sip/samples.py and a few written here)
mutated at the byte level (flips, insertions, deletions, truncations) and at the
header level (duplicated lines, values drawn from grammar-shaped strategies, unicode
display names, arbitrary Content-Length values). Derandomized: CI sees the same
examples on every run; `test_fuzz.py` keeps covering seeded random mutations.
"""

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telportal.sip import (
    Accept,
    Drop,
    MessageFramer,
    Reject,
    Request,
    Response,
    SipParseError,
    parse_message,
    screen_datagram,
)
from tests.unit.sip.samples import REALISTIC

PROPERTY_SETTINGS = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

REGISTER_WITH_CONTACTS = (
    b"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'To: "Bj\xc3\xb6rn \\"the phone\\"" <sip:1001@127.0.0.1>\r\n'
    b'From: "Bj\xc3\xb6rn" <sip:1001@127.0.0.1>;tag=456248\r\n'
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:1001@192.0.2.4:5062;transport=udp>;expires=600;q=0.5,"
    b" <sip:1001@[2001:db8::4]>"
    b';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"\r\n'
    b"Expires: 7200\r\n"
    b"Route: <sip:proxy.example.com;lr>, <sip:[2001:db8::1]:5070;lr;transport=tcp>\r\n"
    b"Record-Route: <sip:rr.example.com;lr>\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

STAR_REGISTER = (
    b"REGISTER sips:example.com SIP/2.0\r\n"
    b"v: SIP/2.0/TLS client.example.com:5061;branch=z9hG4bKunreg;received=192.0.2.9\r\n"
    b"t: <sips:alice@example.com>\r\n"
    b"f: <sips:alice@example.com>;tag=1\r\n"
    b"i: unreg-1\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"m: *\r\n"
    b"Expires: 0\r\n"
    b"Max-Forwards: 0\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

SEEDS: list[bytes] = [*REALISTIC.values(), REGISTER_WITH_CONTACTS, STAR_REGISTER]

# Octets on the grammar's boundaries, where parsers tend to go wrong.
SPECIAL = [
    b";", b",", b":", b"=", b"@", b"<", b">", b'"', b"\\", b"[", b"]", b"?", b"&", b"%",
    b"%0", b"/", b" ", b"\t", b"\r\n", b"\r\n ", b"\n", b"\r", b"\x00", b"\xff", b"\xc3",
    b"9" * 30, b"-", b"*", b"sip:", b"SIP/2.0", b"\r\n\r\n", b"\xf0\x9f\x98\x80", b"::",
]  # fmt: skip

HEADER_NAMES = [
    "Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Contact", "m", "Expires",
    "Max-Forwards", "Content-Length", "l", "Route", "Record-Route", "Content-Type", "c",
    "Require", "Authorization", "X-Custom",
]  # fmt: skip

ACCESSORS: dict[str, Callable[[Request | Response], object]] = {
    "top_via": lambda m: m.top_via,
    "vias": lambda m: m.vias,
    "cseq": lambda m: m.cseq,
    "call_id": lambda m: m.call_id,
    "from_": lambda m: m.from_,
    "to": lambda m: m.to,
    "contacts": lambda m: m.contacts,
    "expires": lambda m: m.expires,
    "max_forwards": lambda m: m.max_forwards,
    "content_length": lambda m: m.content_length,
    "content_type": lambda m: m.content_type,
    "routes": lambda m: m.routes,
    "record_routes": lambda m: m.record_routes,
}


# --- strategies ------------------------------------------------------------------------

# Characters of the SIP grammar, plus a few outside it.
SIP_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abzAZ09.-_!%*+`'~;,:=@<>\"\\[]?&/ \t()$#")),
        st.characters(codec="utf-8"),
    ),
    max_size=40,
)
TOKEN = st.text(alphabet="abcxyzABC0189-.!%*_+`'~", min_size=1, max_size=12)
HOST = st.one_of(
    st.sampled_from(
        ["example.com", "192.0.2.1", "[2001:db8::1]", "[::ffff:192.0.2.1]", "a_b.example", "h"]
    ),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.text(alphabet="abc019.-_:[]%", min_size=0, max_size=20),
)
PORT = st.one_of(
    st.none(),
    st.integers(0, 70000).map(str),
    st.sampled_from(["", "00005060", "99999999999999999999999", "5060x", "\u0665"]),
)
PARAM_VALUE = st.one_of(
    st.none(),
    TOKEN,
    HOST,
    st.text(max_size=12).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    SIP_TEXT,
)
PARAMS = st.lists(st.tuples(TOKEN, PARAM_VALUE), max_size=4).map(
    lambda items: "".join(f";{n}" if v is None else f";{n}={v}" for n, v in items)
)


@st.composite
def uris(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["sip", "sips", "SIP", "tel", "urn", "soap.beep", ""]))
    user = draw(st.one_of(st.none(), TOKEN, SIP_TEXT))
    userinfo = "" if user is None else f"{user}@"
    port = draw(PORT)
    hostport = draw(HOST) + ("" if port is None else f":{port}")
    headers = draw(st.sampled_from(["", "?Route=%3Csip:a%3E", "?a=b&c=", "?", "?x"]))
    return f"{scheme}:{userinfo}{hostport}{draw(PARAMS)}{headers}"


@st.composite
def display_names(draw: st.DrawFn) -> str:
    name = draw(st.text(max_size=24))  # any unicode, no surrogates
    form = draw(st.sampled_from(["quoted", "escaped", "token", "raw"]))
    if form == "quoted":
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '" '
    if form == "escaped":
        return '"' + name + '"'  # unescaped quotes and backslashes left in on purpose
    if form == "token":
        return draw(st.lists(TOKEN, min_size=1, max_size=3).map(" ".join)) + " "
    return name


@st.composite
def addresses(draw: st.DrawFn) -> str:
    display = draw(st.one_of(st.just(""), display_names()))
    uri = draw(uris())
    bracketed = draw(st.booleans()) or bool(display)
    core = f"{display}<{uri}>" if bracketed else uri
    return core + draw(PARAMS)


@st.composite
def vias(draw: st.DrawFn) -> str:
    protocol = draw(st.sampled_from(["SIP/2.0", "SIP / 2.0", "SIP/3.0", "X", ""]))
    transport = draw(st.sampled_from(["UDP", "TCP", "TLS", "WS", "SCTP", "udp", "", "U DP"]))
    port = draw(PORT)
    sent_by = draw(HOST) + ("" if port is None else f":{port}")
    return f"{protocol}/{transport} {sent_by}{draw(PARAMS)}"


NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", " ", "0", "00000000000000000000000000001", "4294967296", "1e3"]),
    st.text(alphabet="0123456789 -+x\t\u0661", max_size=25),
)


@st.composite
def header_values(draw: st.DrawFn, name: str) -> str:
    key = name.lower()
    if key in ("via", "v"):
        return ", ".join(draw(st.lists(vias(), min_size=1, max_size=3)))
    if key in ("from", "f", "to", "t", "route", "record-route"):
        return ", ".join(draw(st.lists(addresses(), min_size=1, max_size=2)))
    if key in ("contact", "m"):
        return draw(st.one_of(st.just("*"), st.lists(addresses(), max_size=3).map(", ".join)))
    if key == "cseq":
        return f"{draw(NUMBERS)} {draw(st.one_of(TOKEN, SIP_TEXT))}"
    if key in ("expires", "max-forwards", "content-length", "l"):
        return draw(NUMBERS)
    return draw(SIP_TEXT)


def _lines(data: bytearray) -> tuple[list[bytes], bytes]:
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    return head.split(b"\r\n"), sep + body


def _join(lines: list[bytes], rest: bytes) -> bytearray:
    return bytearray(b"\r\n".join(lines) + rest)


def flip(draw: st.DrawFn, data: bytearray) -> bytearray:
    if data:
        at = draw(st.integers(0, len(data) - 1))
        data[at] ^= draw(st.integers(1, 255))
    return data


def insert(draw: st.DrawFn, data: bytearray) -> bytearray:
    at = draw(st.integers(0, len(data)))
    data[at:at] = draw(st.one_of(st.sampled_from(SPECIAL), st.binary(min_size=1, max_size=8)))
    return data


def delete(draw: st.DrawFn, data: bytearray) -> bytearray:
    if data:
        at = draw(st.integers(0, len(data) - 1))
        del data[at : at + draw(st.integers(1, 16))]
    return data


def truncate(draw: st.DrawFn, data: bytearray) -> bytearray:
    return data[: draw(st.integers(0, len(data)))]


def duplicate_header(draw: st.DrawFn, data: bytearray) -> bytearray:
    lines, rest = _lines(data)
    if len(lines) < 2:
        return data
    line = lines[draw(st.integers(1, len(lines) - 1))]
    lines.insert(draw(st.integers(1, len(lines))), line)
    return _join(lines, rest)


def replace_header(draw: st.DrawFn, data: bytearray) -> bytearray:
    """A header of the message, or a new one, gets a value from the grammar strategies."""
    lines, rest = _lines(data)
    name = draw(st.sampled_from(HEADER_NAMES))
    value = draw(header_values(name))
    line = f"{name}: {value}".encode("utf-8", "surrogateescape")
    matching = [
        i
        for i, existing in enumerate(lines)
        if i and existing.split(b":", 1)[0].strip().lower() == name.lower().encode()
    ]
    if matching and draw(st.booleans()):
        lines[draw(st.sampled_from(matching))] = line
    else:
        lines.insert(draw(st.integers(1, len(lines))), line)
    return _join(lines, rest)


def content_length(draw: st.DrawFn, data: bytearray) -> bytearray:
    lines, rest = _lines(data)
    name = draw(st.sampled_from([b"Content-Length", b"l", b"content-length"]))
    lines = [
        line
        for line in lines
        if line.split(b":", 1)[0].strip().lower() not in (b"content-length", b"l")
    ]
    for _ in range(draw(st.integers(1, 2))):
        lines.insert(draw(st.integers(1, len(lines))), name + b": " + draw(NUMBERS).encode())
    return _join(lines, rest)


Mutation = Callable[[st.DrawFn, bytearray], bytearray]
BYTE_MUTATIONS: list[Mutation] = [flip, insert, delete, truncate]
HEADER_MUTATIONS: list[Mutation] = [duplicate_header, replace_header, content_length]


@st.composite
def mutated(draw: st.DrawFn, mutations: list[Mutation]) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        data = draw(st.sampled_from(mutations))(draw, data)
    return bytes(data)


ANY_MUTATION = mutated(BYTE_MUTATIONS + HEADER_MUTATIONS)


# --- checks ----------------------------------------------------------------------------


def read_everything(message: Request | Response) -> None:
    """Every typed accessor either gives a value or raises SipParseError."""
    for read in ACCESSORS.values():
        with contextlib.suppress(SipParseError):
            read(message)


def check_fixed_point(message: Request | Response) -> None:
    once = bytes(message)
    again = parse_message(once)  # what we write, we must read
    assert type(again) is type(message)
    assert bytes(again) == once
    assert again.body == message.body


def parse_and_check(data: bytes) -> Request | Response | None:
    try:
        message = parse_message(data)
    except SipParseError:
        return None
    read_everything(message)
    check_fixed_point(message)
    return message


# --- properties ------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.sampled_from(SEEDS))
def test_the_seeds_are_valid_and_fixed_points(data: bytes) -> None:
    message = parse_message(data)
    for read in ACCESSORS.values():
        read(message)  # a valid message: every accessor reads without raising
    check_fixed_point(message)
    assert bytes(message) == data


@PROPERTY_SETTINGS
@given(mutated(BYTE_MUTATIONS))
def test_byte_mutations_only_raise_sip_parse_error(data: bytes) -> None:
    parse_and_check(data)


@PROPERTY_SETTINGS
@given(mutated(HEADER_MUTATIONS))
def test_header_mutations_only_raise_sip_parse_error(data: bytes) -> None:
    parse_and_check(data)


@PROPERTY_SETTINGS
@given(st.sampled_from(SEEDS), st.sampled_from(["From", "To", "Contact"]), display_names())
def test_unicode_display_names(seed: bytes, name: str, display: str) -> None:
    lines, rest = _lines(bytearray(seed))
    value = f"{display}<sip:alice@example.com>;tag=x".encode("utf-8", "surrogateescape")
    lines.insert(1, name.encode() + b": " + value)
    lines = [
        line
        for i, line in enumerate(lines)
        if i == 1 or line.split(b":", 1)[0].strip().lower() != name.lower().encode()
    ]
    message = parse_and_check(bytes(_join(lines, rest)))
    if message is None:
        return
    try:
        address = message.to if name == "To" else message.from_ if name == "From" else None
    except SipParseError:
        return
    if address is not None and display.startswith('"') and display.endswith('" '):
        # a well-formed quoted display name comes back unquoted, unicode intact
        inner = display[1:-2]
        assert address.display_name == inner.replace('\\"', '"').replace("\\\\", "\\")


@PROPERTY_SETTINGS
@given(st.sampled_from(SEEDS), st.lists(NUMBERS, min_size=1, max_size=3))
def test_any_content_length(seed: bytes, values: list[str]) -> None:
    lines, rest = _lines(bytearray(seed))
    lines = [
        line
        for line in lines
        if line.split(b":", 1)[0].strip().lower() not in (b"content-length", b"l")
    ]
    lines[1:1] = [b"Content-Length: " + value.encode() for value in values]
    data = bytes(_join(lines, rest))
    message = parse_and_check(data)
    if message is not None and len(set(values)) == 1:
        body = rest[4:]
        assert message.body == body[: int(values[0].strip(" \t"))]


@PROPERTY_SETTINGS
@given(ANY_MUTATION)
def test_screen_datagram_never_raises(data: bytes) -> None:
    verdict = screen_datagram(data, to_tag="x")
    assert isinstance(verdict, Accept | Reject | Drop)
    if isinstance(verdict, Reject):
        reply = bytes(verdict.response)
        assert reply.startswith(f"SIP/2.0 {verdict.rejection.status} ".encode())
        assert 400 <= verdict.rejection.status < 600
        # the reason phrase is one line: nothing the sender wrote can add a header
        assert b"\r" not in verdict.rejection.reason.encode("utf-8", "surrogateescape")
        assert b"\n" not in verdict.rejection.reason.encode("utf-8", "surrogateescape")
    elif isinstance(verdict, Accept):
        read_everything(verdict.message)
        check_fixed_point(verdict.message)


@PROPERTY_SETTINGS
@given(st.lists(ANY_MUTATION, min_size=1, max_size=3), st.integers(1, 600))
def test_framer_only_raises_sip_parse_error(parts: list[bytes], chunk: int) -> None:
    stream = b"".join(parts)
    framer = MessageFramer(max_size=8192)
    try:
        for offset in range(0, len(stream), chunk):
            for message in framer.feed(stream[offset : offset + chunk]):
                read_everything(message)
                check_fixed_point(message)
    except SipParseError:
        pass


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=4), st.integers(1, 300))
def test_framer_cuts_valid_streams_at_any_chunk_size(messages: list[bytes], chunk: int) -> None:
    stream = b"".join(messages)
    framer = MessageFramer()
    received: list[Request | Response] = []
    for offset in range(0, len(stream), chunk):
        received += framer.feed(stream[offset : offset + chunk])
    assert [bytes(message) for message in received] == messages
    assert framer.buffered == 0


@pytest.mark.parametrize("name", ["Contact", "To"])
def test_addr_spec_with_a_quoted_parameter_holding_angle_brackets(name: str) -> None:
    # contact-param = (name-addr / addr-spec) *(SEMI contact-params), and gen-value may be
    # a quoted-string: '<' inside it does not start a name-addr (RFC 3261 25.1).
    value = 'sip:1001@192.0.2.4;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"'
    lines, rest = _lines(bytearray(REGISTER_WITH_CONTACTS))
    lines = [line for line in lines if not line.startswith(name.encode() + b":")]
    lines.insert(1, f"{name}: {value}".encode())
    message = parse_message(bytes(_join(lines, rest)))
    address = message.to if name == "To" else message.contacts[0]
    assert address != "*"
    assert str(address.uri) == "sip:1001@192.0.2.4"
