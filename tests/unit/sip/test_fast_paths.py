"""The parser's shortcuts give exactly what the long way gives (see docs/benchmarks.md).

For speed the message layer keeps what it parsed (`Headers.memo`, and caches of parsed
URIs, addresses, Via elements and CSeqs), reads common shapes without the general
grammar, and carries parsed values from a request to the response and from a dialog
to the requests it builds. Each shortcut is held here to the slow path it replaces:
same value, or the same `SipParseError`.
"""

import contextlib
import re
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telportal.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    make_response,
    parse_message,
)
from telportal.sip.address import _parse_address, parse_address
from telportal.sip.cseq import MAX_SEQUENCE_NUMBER, CSeq, parse_cseq
from telportal.sip.dialog import Dialog
from telportal.sip.grammar import TOKEN_CHARS, excerpt
from telportal.sip.headers import header_key
from telportal.sip.via import _check_params, _parse_via, own_via, parse_via
from tests.unit.sip.samples import REALISTIC
from tests.unit.sip.test_parser_properties import (
    ACCESSORS,
    ANY_MUTATION,
    HEADER_NAMES,
    NUMBERS,
    PROPERTY_SETTINGS,
    SEEDS,
    SIP_TEXT,
    TOKEN,
    addresses,
    header_values,
    vias,
)


def outcome(read: Callable[[], object]) -> object:
    """What read gives, or the message of the SipParseError it raises."""
    try:
        return read()
    except SipParseError as exc:
        return ("SipParseError", str(exc))


def uncached(message: Request | Response) -> Request | Response:
    """The same lines and body in fresh Headers: nothing parsed kept, nothing shared."""
    fresh = Headers(list(message.headers))
    if isinstance(message, Request):
        return Request(message.method, message.uri, fresh, message.body, message.version)
    return Response(message.status, message.reason, fresh, message.body, message.version)


def accessor_outcomes(message: Request | Response) -> dict[str, object]:
    return {name: outcome(lambda read=read: read(message)) for name, read in ACCESSORS.items()}


def assert_reads_like_fresh(message: Request | Response) -> None:
    # Read twice: the second read comes from the memo.
    first = accessor_outcomes(message)
    assert accessor_outcomes(message) == first
    assert first == accessor_outcomes(uncached(message))


# --- addresses: `<uri>;tag=x` read as the cached `<uri>` plus the tag -------------------

TAGS = st.one_of(TOKEN, SIP_TEXT, st.sampled_from(["", " ", "a b", '"q"', "x;y", "1 "]))


@PROPERTY_SETTINGS
@given(addresses(), TAGS, st.sampled_from([";tag=", " ;tag=", ";tag=", ";TAG="]))
def test_a_tagged_address_parses_as_the_long_way_does(base: str, tag: str, sep: str) -> None:
    value = base + sep + tag
    assert outcome(lambda: parse_address(value, context="To header")) == outcome(
        lambda: _long_way_address(value)
    )


def _long_way_address(value: str) -> object:
    try:
        return _parse_address(value)
    except SipParseError as exc:
        raise SipParseError(f"To header: {exc}") from None


def test_a_tag_inside_a_quoted_parameter_is_not_cut_off() -> None:
    value = '<sip:a@example.com>;x="a;tag=b"'
    assert parse_address(value) == _parse_address(value)
    assert parse_address(value).tag is None


# --- CSeq: "1 INVITE" without the regex -----------------------------------------------

_CSEQ_RE = re.compile(f"([0-9]+)[ \t]+([{TOKEN_CHARS}]+)")


def _long_way_cseq(value: str) -> CSeq:
    """parse_cseq as it was: one regex for every value."""
    text = value.strip(" \t")
    match = _CSEQ_RE.fullmatch(text)
    if match is None:
        raise SipParseError(f"CSeq header: bad value {excerpt(text)}")
    digits = match.group(1)
    if len(digits.lstrip("0")) > 10 or int(digits) > MAX_SEQUENCE_NUMBER:
        raise SipParseError(
            f"CSeq header: sequence number {excerpt(digits)} exceeds {MAX_SEQUENCE_NUMBER}"
        )
    return CSeq(int(digits), match.group(2))


METHODS = st.one_of(
    st.sampled_from(["INVITE", "BYE", "ACK", "invite", "FOO", "", "IN VITE", "ACK\t"]), TOKEN
)


@PROPERTY_SETTINGS
@given(NUMBERS, st.sampled_from([" ", "  ", "\t", "", " \t"]), METHODS)
def test_cseq_parses_as_the_regex_does(number: str, space: str, method: str) -> None:
    value = f"{number}{space}{method}"
    assert outcome(lambda: parse_cseq(value)) == outcome(lambda: _long_way_cseq(value))


# --- Via: parameters checked only when one that needs checking is there ---------------


@PROPERTY_SETTINGS
@given(vias())
def test_a_via_read_the_short_way_has_valid_parameters(value: str) -> None:
    try:
        via = _parse_via(value)
    except SipParseError:
        return
    _check_params(via.params)  # never raises: the short way skipped nothing it needed


# --- Via: the shape without its branch parsed once, the branch put in -----------------

BRANCHES = st.one_of(
    st.just("z9hG4bK-4387-1-0"),
    TOKEN,
    st.sampled_from(["", " ", "z9hG4bK776 ", "a;b", "[2001:db8::1]", "x:y", '"q"', "-", "a=b"]),
    SIP_TEXT,
)


@st.composite
def vias_with_branches(draw: st.DrawFn) -> str:
    """A Via element with one or more branch parameters somewhere among its others."""
    value = draw(vias())
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(["branch", "branch", "Branch", " branch"]))
        param = f";{name}={draw(BRANCHES)}"
        cut = draw(st.sampled_from([len(value), value.find(";"), value.rfind(";")]))
        cut = len(value) if cut < 0 else cut
        value = value[:cut] + param + value[cut:]
    return value + draw(st.sampled_from(["", "", " ", ";rport"]))


def _long_way_via(value: str) -> object:
    try:
        return _parse_via(value)
    except SipParseError as exc:
        return ("SipParseError", f"Via header: {exc}")


@PROPERTY_SETTINGS
@given(vias_with_branches())
def test_a_via_parsed_by_its_shape_is_the_one_its_text_parses_to(value: str) -> None:
    # Twice: the first fills the shape's cache, the second reads it.
    assert outcome(lambda: parse_via(value)) == _long_way_via(value)
    assert outcome(lambda: parse_via(value)) == _long_way_via(value)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK1;rport", "z9hG4bK2"),
        ("SIP/2.0/TCP [2001:db8::4]:5070;received=192.0.2.9;branch=z9hG4bKa", "z9hG4bKb"),
        ("SIP/2.0/UDP pbx.example.com;branch=z9hG4bK1", "z9hG4bK:[x]"),
    ],
)
def test_vias_of_one_shape_keep_their_own_branches(first: str, second: str) -> None:
    branch = _parse_via(first).branch
    assert branch is not None
    other = first.replace(branch, second)
    assert parse_via(first).branch == branch
    assert parse_via(other).branch == second
    assert parse_via(other) == _parse_via(other)
    assert parse_via(first) == _parse_via(first)


# --- what a message keeps of what it parsed --------------------------------------------


@PROPERTY_SETTINGS
@given(st.one_of(st.sampled_from(SEEDS), ANY_MUTATION))
def test_a_parsed_message_reads_like_a_fresh_copy(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        assert_reads_like_fresh(parse_message(data))


@PROPERTY_SETTINGS
@given(
    st.one_of(st.sampled_from(SEEDS), ANY_MUTATION),
    st.lists(
        st.tuples(
            st.sampled_from(["add", "set", "remove"]),
            st.sampled_from(HEADER_NAMES),
            st.data(),
        ),
        max_size=4,
    ),
)
def test_changed_headers_are_read_again(
    data: bytes, changes: list[tuple[str, str, st.DataObject]]
) -> None:
    try:
        message = parse_message(data)
    except SipParseError:
        return
    accessor_outcomes(message)  # fill the memo, then change the lines under it
    for action, name, draw in changes:
        value = draw.draw(header_values(name))
        with contextlib.suppress(ValueError):  # a value a header line cannot carry
            if action == "add":
                message.headers.add(name, value)
            elif action == "set":
                message.headers.set(name, value)
            else:
                message.headers.remove(name)
        assert_reads_like_fresh(message)


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add", "set", "remove"]),
            st.sampled_from(HEADER_NAMES),
            st.sampled_from(["a", "b, c", '"x, y"', ""]),
        ),
        max_size=8,
    )
)
def test_the_index_agrees_with_the_lines(changes: list[tuple[str, str, str]]) -> None:
    headers = Headers()
    model: list[tuple[str, str]] = []
    for action, name, value in changes:
        key = header_key(name)
        if action == "add":
            headers.add(name, value)
            model.append((name, value))
        elif action == "set":
            headers.set(name, value)
            at = [i for i, (n, _) in enumerate(model) if header_key(n) == key]
            if at:
                model[at[0]] = (model[at[0]][0], value)
                model = [line for i, line in enumerate(model) if i not in at[1:]]
            else:
                model.append((name, value))
        else:
            assert headers.remove(name) == sum(1 for n, _ in model if header_key(n) == key)
            model = [line for line in model if header_key(line[0]) != key]
        assert list(headers) == model
        for probe in HEADER_NAMES:
            lines = [v for n, v in model if header_key(n) == header_key(probe)]
            fresh = Headers(model)
            assert headers.get(probe) == (lines[0] if lines else None)
            assert headers.get_all(probe) == fresh.get_all(probe)
            assert (probe in headers) == bool(lines)


# --- values carried from a request to its response, and from a dialog -----------------


@PROPERTY_SETTINGS
@given(
    st.one_of(st.sampled_from(SEEDS), ANY_MUTATION),
    st.sampled_from([100, 180, 200, 404, 487]),
    st.one_of(st.none(), TOKEN, st.sampled_from(["a b", "x;y", ""])),
)
def test_a_response_reads_like_its_own_bytes(data: bytes, status: int, tag: str | None) -> None:
    try:
        request = parse_message(data)
    except SipParseError:
        return
    if not isinstance(request, Request):
        return
    accessor_outcomes(request)  # what the request parsed is carried over
    try:
        response = make_response(request, status, to_tag=tag)
    except ValueError:  # a tag a header line cannot carry
        return
    assert_reads_like_fresh(response)


def test_requests_a_dialog_builds_read_like_their_own_bytes() -> None:
    invite = parse_message(REALISTIC["invite"])
    assert isinstance(invite, Request)
    dialog = Dialog.from_uas(invite, "b2b1a2", "<sip:bob@192.0.2.4>")
    ok = dialog.respond(invite, 200)
    assert_reads_like_fresh(ok)
    via = "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK776asdhds;rport"
    for request in (
        dialog.request("INFO", headers=[("X-Note", "1")], via=via),
        dialog.request("INFO", headers=[("CSeq", "9 INFO"), ("Via", via)], via=via),
        dialog.request("INFO", via=own_via("TCP", "[2001:db8::4]:5070", "z9hG4bKown")),
        dialog.request("INFO", via=own_via("UDP", "pbx.example.com", "z9hG4bK1", rport=False)),
        dialog.bye(via=via),
    ):
        assert_reads_like_fresh(request)
        assert_reads_like_fresh(parse_message(bytes(request)))
        built, sent = accessor_outcomes(request), accessor_outcomes(parse_message(bytes(request)))
        # Content-Length is written when the message is, not stored in what was built.
        assert built.pop("content_length") is None
        assert sent.pop("content_length") == 0
        assert built == sent


@pytest.mark.parametrize(
    ("transport", "sent_by", "rport"),
    [
        ("UDP", "192.0.2.4:5060", True),
        ("TLS", "[2001:db8::4]:5061", True),
        ("WS", "edge.example.com", False),
    ],
)
def test_a_via_made_for_our_own_request_is_the_one_its_text_parses_to(
    transport: str, sent_by: str, rport: bool
) -> None:
    made = own_via(transport, sent_by, "z9hG4bKa1b2", rport=rport)
    text = f"SIP/2.0/{transport} {sent_by};branch=z9hG4bKa1b2" + (";rport" if rport else "")
    assert str(made) == text
    assert made == _parse_via(text)
    assert made.branch == "z9hG4bKa1b2" and made.wants_rport is rport


@pytest.mark.parametrize("sent_by", ["192.0.2.4:99999", "host;maddr=x", "a b", ""])
def test_a_bad_sent_by_is_refused_when_our_own_via_is_made(sent_by: str) -> None:
    with pytest.raises(SipParseError, match="Via header"):
        own_via("UDP", sent_by, "z9hG4bK1")
