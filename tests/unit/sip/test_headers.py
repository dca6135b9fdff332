import re
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from telportal.sip import (
    STAR,
    Address,
    CSeq,
    Headers,
    Params,
    SipParseError,
    SipUri,
    Via,
    full_name,
    header_key,
    parse_address,
    parse_call_id,
    parse_contact,
    parse_content_length,
    parse_cseq,
    parse_expires,
    parse_max_forwards,
    parse_params,
    parse_sip_uri,
    parse_via,
    quote,
    split_list,
    unquote,
)
from telportal.sip.headers import parse_header_section
from telportal.sip.via import _parse_via_general


def raises_exactly(message: str) -> AbstractContextManager[pytest.ExceptionInfo[SipParseError]]:
    """pytest.raises matching the whole message, not a search within it."""
    return pytest.raises(SipParseError, match=f"^{re.escape(message)}$")


# --- Headers -------------------------------------------------------------------------


def test_lookup_ignores_case_and_expands_compact_forms() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a"), ("VIA", "SIP/2.0/UDP b"), ("i", "x@y")])
    assert headers.get_all("Via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert headers.get("call-id") == "x@y"
    assert headers.get("I") == "x@y"
    assert "CALL-ID" in headers
    assert "Contact" not in headers
    assert headers.get("Contact") is None
    assert headers.get_all("Contact") == []


def test_order_and_original_names_are_kept() -> None:
    lines = [
        ("To", "<sip:a@b>"),
        ("v", "SIP/2.0/UDP h"),
        ("X-Custom", "1"),
        ("Via", "SIP/2.0/UDP i"),
    ]
    headers = Headers(lines)
    assert list(headers) == lines
    assert len(headers) == 4
    assert headers.lines("via") == [("v", "SIP/2.0/UDP h"), ("Via", "SIP/2.0/UDP i")]
    assert headers == Headers(lines)
    assert headers != Headers(lines[::-1])
    assert repr(headers).startswith("Headers([('To'")


def test_list_fields_split_on_commas_across_lines() -> None:
    headers = Headers(
        [
            ("Route", "<sip:a.example.com;lr>, <sip:b.example.com;lr>"),
            ("Route", '"Proxy, Inc." <sip:c.example.com;lr>'),
            ("Subject", "Hello, world"),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
        ]
    )
    assert headers.get_all("Route") == [
        "<sip:a.example.com;lr>",
        "<sip:b.example.com;lr>",
        '"Proxy, Inc." <sip:c.example.com;lr>',
    ]
    # not list fields: the comma is text
    assert headers.get_all("Subject") == ["Hello, world"]
    assert headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]


def test_set_remove_copy() -> None:
    headers = Headers([("Via", "1"), ("To", "t"), ("v", "2")])
    copy = headers.copy()
    headers.set("via", "3")
    assert list(headers) == [("Via", "3"), ("To", "t")]
    headers.set("Max-Forwards", "70")
    assert list(headers)[-1] == ("Max-Forwards", "70")
    assert headers.remove("TO") == 1
    assert headers.remove("To") == 0
    assert list(copy) == [("Via", "1"), ("To", "t"), ("v", "2")]


def test_programming_errors_are_value_errors() -> None:
    headers = Headers()
    with pytest.raises(ValueError, match="contains CR or LF"):
        headers.add("Subject", "a\r\nInjected: yes")
    with pytest.raises(ValueError, match="is not a token"):
        headers.add("Bad Name", "x")


@pytest.mark.parametrize(
    ("name", "key", "full"),
    [
        ("i", "call-id", "Call-ID"),
        ("CALL-ID", "call-id", "Call-ID"),
        ("cseq", "cseq", "CSeq"),
        ("m", "contact", "Contact"),
        ("e", "content-encoding", "Content-Encoding"),
        ("l", "content-length", "Content-Length"),
        ("c", "content-type", "Content-Type"),
        ("f", "from", "From"),
        ("s", "subject", "Subject"),
        ("k", "supported", "Supported"),
        ("t", "to", "To"),
        ("V", "via", "Via"),
        ("o", "event", "Event"),
        ("u", "allow-events", "Allow-Events"),
        ("a", "accept-contact", "Accept-Contact"),
        ("r", "refer-to", "Refer-To"),
        ("www-authenticate", "www-authenticate", "WWW-Authenticate"),
        ("x-UNKNOWN-thing", "x-unknown-thing", "X-Unknown-Thing"),
    ],
)
def test_names(name: str, key: str, full: str) -> None:
    assert header_key(name) == key
    assert full_name(name) == full


def test_header_section_unfolds_and_strips() -> None:
    headers = parse_header_section(
        "Subject: first\r\n  second\r\n\tthird\r\n"
        "Content-Length   : 150\r\n"
        "s :\r\n"
        "cseq: 0009\r\n  INVITE"
    )
    assert list(headers) == [
        ("Subject", "first second third"),
        ("Content-Length", "150"),
        ("s", ""),
        ("cseq", "0009 INVITE"),
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (" Subject: x", "header section starts with a continuation line"),
        ("Subject x", "header line without a colon: 'Subject x'"),
        ("Sub ject: x", "bad header name 'Sub ject'"),
        (": x", "bad header name ''"),
        ("To: a\r\nF\u00f6rm: x", "bad header name 'F\u00f6rm'"),
    ],
)
def test_header_section_errors(section: str, message: str) -> None:
    with raises_exactly(message):
        parse_header_section(section)


# --- lexical helpers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ("single", ["single"]),
        ('"Bell, Alexander" <sip:a@b>, <sip:c@d>', ['"Bell, Alexander" <sip:a@b>', "<sip:c@d>"]),
        (r'"say \"hi, there\"" <sip:a@b>, x', [r'"say \"hi, there\"" <sip:a@b>', "x"]),
        (r'"back\\" <sip:a@b>, x', [r'"back\\" <sip:a@b>', "x"]),
        ("<sip:a@b;x=1,2>, <sip:c@d>", ["<sip:a@b;x=1,2>", "<sip:c@d>"]),
        ("a,,b,", ["a", "", "b", ""]),
    ],
)
def test_split_list(value: str, parts: list[str]) -> None:
    assert split_list(value) == parts


def test_quote_and_unquote() -> None:
    assert quote('J Rosenberg \\"') == r'"J Rosenberg \\\""'
    assert unquote(r'"J Rosenberg \\\""') == 'J Rosenberg \\"'
    assert unquote("token") == "token"


# --- params --------------------------------------------------------------------------


def test_generic_params() -> None:
    params = parse_params(' ;  tag = 98asjd8 ; lr ;q=0.33;name="a;b \\" c";received=[2001:db8::1]')
    assert params.items == (
        ("tag", "98asjd8"),
        ("lr", None),
        ("q", "0.33"),
        ("name", '"a;b \\" c"'),
        ("received", "[2001:db8::1]"),
    )
    assert params.get("TAG") == "98asjd8"
    assert "LR" in params
    assert 5 not in params
    assert str(params) == ';tag=98asjd8;lr;q=0.33;name="a;b \\" c";received=[2001:db8::1]'
    assert parse_params("") == Params()


def test_params_are_immutable_values() -> None:
    params = Params((("a", "1"), ("b", None)))
    assert params.with_param("A", "2").items == (("a", "2"), ("b", None))
    assert params.with_param("c").items == (("a", "1"), ("b", None), ("c", None))
    assert params.without("B").items == (("a", "1"),)
    assert params.items == (("a", "1"), ("b", None))
    assert list(params) == [("a", "1"), ("b", None)]
    assert hash(params) == hash(Params((("a", "1"), ("b", None))))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (";;", "empty parameter"),
        (";a=1;", "empty parameter"),
        (';a="open', "unterminated quoted string"),
        (";a=b c", "unexpected text 'c' where ';' was expected"),
        ("x", "unexpected text 'x' where ';' was expected"),
        (";=v", "bad parameter ';=v'"),
        (";a=b=c", "bad parameter ';a=b=c'"),
        (";a=<v>", "bad parameter ';a=<v>'"),
    ],
)
def test_params_errors(text: str, message: str) -> None:
    with raises_exactly(message):
        parse_params(text)


# --- Via -----------------------------------------------------------------------------


def test_via() -> None:
    via = parse_via("SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds;rport")
    assert via == Via(
        transport="UDP",
        host="pc33.atlanta.example.com",
        port=5066,
        params=Params((("branch", "z9hG4bK776asdhds"), ("rport", None))),
    )
    assert via.branch == "z9hG4bK776asdhds"
    assert via.wants_rport
    assert via.rport is None
    assert via.received is None
    assert via.sent_by == "pc33.atlanta.example.com:5066"
    assert str(via) == "SIP/2.0/UDP pc33.atlanta.example.com:5066;branch=z9hG4bK776asdhds;rport"


def test_via_filled_in_by_a_server() -> None:
    via = parse_via(
        "SIP/2.0/TCP [2001:db8::9:1]:6050;branch=z9hG4bK1;received=192.0.2.200;rport=1234"
    )
    assert (via.transport, via.host, via.port) == ("TCP", "[2001:db8::9:1]", 6050)
    assert via.received == "192.0.2.200"
    assert via.rport == 1234
    # RFC 5118 4.5: IPv6 received values with and without brackets
    assert parse_via("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255]").received == (
        "[2001:db8::9:255]"
    )
    assert parse_via("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255").received == (
        "2001:db8::9:255"
    )


def test_via_with_whitespace_everywhere_it_is_allowed() -> None:
    # RFC 4475 3.1.1.1 after unfolding
    via = parse_via("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
    assert (via.protocol, via.transport, via.host, via.branch) == (
        "SIP/2.0",
        "TCP",
        "spindle.example.com",
        "z9hG4bK9ikj8",
    )
    assert parse_via("SIP/2.0/UDP host : 5060 ;maddr=224.2.0.1;ttl=16").port == 5060
    assert parse_via("SIP/2.0/UNKNOWN t4.example.com").transport == "UNKNOWN"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Via header: empty value"),
        ("SIP/2.0/UDP", "Via header: missing sent-by"),
        ("SIP/2.0/UDP ;branch=x", "Via header: missing sent-by"),
        (";", "Via header: bad sent-protocol in ';'"),
        ("SIP/2.0 host", "Via header: bad sent-protocol in 'SIP/2.0 host'"),
        ("SIP/2.0/UDP 192.0.2.15;;", "Via header: empty parameter"),
        ("SIP/2.0/UDP host:99999", "Via header: bad port '99999'"),
        ("SIP/2.0/UDP host:", "Via header: bad port ''"),
        ("SIP/2.0/UDP [2001:db8:::1]", "Via header: bad IPv6 reference '[2001:db8:::1]'"),
        ("SIP/2.0/UDP ho$t", "Via header: bad host 'ho$t'"),
        ("SIP/2.0/UDP host;received=example.com", "Via header: bad received address 'example.com'"),
        ("SIP/2.0/UDP host;received", "Via header: bad received address ''"),
        ("SIP/2.0/UDP host;rport=http", "Via header: rport: bad value 'http'"),
        ("SIP/2.0/UDP host;ttl=256", "Via header: ttl: value '256' exceeds 255"),
        ("SIP/2.0/UDP host extra", "Via header: unexpected text 'extra' where ';' was expected"),
    ],
)
def test_via_errors(value: str, message: str) -> None:
    with raises_exactly(message):
        parse_via(value)


@pytest.mark.parametrize(
    "value",
    [
        "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport",
        "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK1;received=192.0.2.9;rport=1234",
        "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf",
        "SIP/2.0/UDP 999.0.2.1;branch=z9hG4bK1",
        "SIP/2.0/UDP host:70000",
        "SIP/2.0/UDP host;received=not-an-address",
        "SIP/2.0/UDP host;ttl=300",
        "SIP/2.0/UDP host;a=b=c",
        "SIP/2.0/UDP host",
    ],
)
def test_common_via_shortcut_agrees_with_full_parser(value: str) -> None:
    try:
        slow: Via | str = _parse_via_general(value)
    except SipParseError as exc:
        slow = f"Via header: {exc}"
    try:
        fast: Via | str = parse_via(value)
    except SipParseError as exc:
        fast = str(exc)
    assert fast == slow


# --- name-addr and addr-spec ---------------------------------------------------------


def test_quoted_display_name_with_comma_and_escaped_quotes() -> None:
    address = parse_address(r'"Bell, \"Alec\" \\ Alexander" <sip:a.g.bell@example.com>;tag=43')
    assert address.display_name == 'Bell, "Alec" \\ Alexander'
    assert address.tag == "43"
    assert address.uri == parse_sip_uri("sip:a.g.bell@example.com")
    assert str(address) == r'"Bell, \"Alec\" \\ Alexander" <sip:a.g.bell@example.com>;tag=43'


def test_token_display_names() -> None:
    assert parse_address("Bob <sip:bob@biloxi.example.com>").display_name == "Bob"
    assert parse_address("caller<sip:caller@example.com>;tag=323").display_name == "caller"
    spaced = parse_address("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>")
    assert spaced.display_name == "token1~` token2'+_ token3*%!.-"
    assert parse_address("<sip:bob@biloxi.example.com>").display_name is None


def test_addr_spec_parameters_belong_to_the_header() -> None:
    # RFC 3261 20.10: without brackets, ';user=phone' is a header parameter
    address = parse_address("sip:+16505552222@ss1.example.net;user=phone;tag=9")
    assert isinstance(address.uri, SipUri)
    assert len(address.uri.params) == 0
    assert address.params.items == (("user", "phone"), ("tag", "9"))
    bracketed = parse_address("<sip:+16505552222@ss1.example.net;user=phone>;tag=9")
    assert isinstance(bracketed.uri, SipUri)
    assert bracketed.uri.params.items == (("user", "phone"),)
    assert bracketed.params.items == (("tag", "9"),)
    spaced = parse_address("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n")
    assert spaced.tag == "1918181833n"


def test_address_serialization_and_tagging() -> None:
    address = Address(parse_sip_uri("sip:bob@biloxi.example.com"), "Bob")
    assert str(address) == '"Bob" <sip:bob@biloxi.example.com>'
    tagged = address.with_tag("a6c85cf")
    assert str(tagged) == '"Bob" <sip:bob@biloxi.example.com>;tag=a6c85cf'
    assert address.tag is None
    assert str(Address(parse_sip_uri("sip:x@y"))) == "<sip:x@y>"


def test_contact_star_and_other_schemes() -> None:
    assert parse_contact(" * ") == STAR
    assert str(parse_address("<name:John_Smith>").uri) == "name:John_Smith"
    assert str(parse_address("isbn:2983792873").uri) == "isbn:2983792873"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "To header: empty value"),
        ('"Mr. J. User <sip:j.user@example.com>', "To header: unterminated quoted string"),
        (
            "Watson, Thomas <sip:t.watson@example.org>",
            "To header: bad display name 'Watson, Thomas'",
        ),
        (
            '"Watson, Thomas" < sip:t.watson@example.org >',
            "To header: bad URI ' sip:t.watson@example.org ': whitespace inside the URI",
        ),
        ("<sip:a@b", "To header: missing '>'"),
        ('"Joe" sip:joe@example.org', "To header: display name not followed by '<'"),
        ('"Joe" <sip:joe@example.org>;;;;', "To header: empty parameter"),
        ("sip:", "To header: bad URI 'sip:': missing host"),
    ],
)
def test_address_errors(value: str, message: str) -> None:
    with raises_exactly(message):
        parse_address(value, context="To header")


# --- CSeq and scalar fields ----------------------------------------------------------


def test_cseq() -> None:
    assert parse_cseq("314159 INVITE") == CSeq(314159, "INVITE")
    assert parse_cseq(" 0009   INVITE ") == CSeq(9, "INVITE")
    assert parse_cseq("4294967295 BYE").number == 2**32 - 1
    assert str(CSeq(1, "ACK")) == "1 ACK"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("INVITE", "CSeq header: bad value 'INVITE'"),
        ("1", "CSeq header: bad value '1'"),
        ("-1 INVITE", "CSeq header: bad value '-1 INVITE'"),
        ("1 IN VITE", "CSeq header: bad value '1 IN VITE'"),
        ("4294967296 INVITE", "CSeq header: sequence number '4294967296' exceeds 4294967295"),
        (
            "36893488147419103232 REGISTER",
            "CSeq header: sequence number '36893488147419103232' exceeds 4294967295",
        ),
    ],
)
def test_cseq_errors(value: str, message: str) -> None:
    with raises_exactly(message):
        parse_cseq(value)


def test_scalar_fields() -> None:
    assert parse_max_forwards("0068") == 68
    assert parse_max_forwards("0") == 0
    assert parse_content_length(" 150 ") == 150
    assert parse_expires("3600") == 3600
    assert parse_call_id(" a84b4c76e66710@pc33.atlanta.example.com ") == (
        "a84b4c76e66710@pc33.atlanta.example.com"
    )
    assert parse_call_id("intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{") == (
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    )


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_max_forwards, "300", "Max-Forwards header: value '300' exceeds 255"),
        (parse_max_forwards, "seventy", "Max-Forwards header: bad value 'seventy'"),
        (parse_max_forwards, "", "Max-Forwards header: bad value ''"),
        (parse_content_length, "-999", "Content-Length header: bad value '-999'"),
        (parse_content_length, "\u0661\u0662", "Content-Length header: bad value '\u0661\u0662'"),
        (
            parse_expires,
            "1" + "0" * 102,
            f"Expires header: value '1{'0' * 60}...' exceeds 4294967295",
        ),
        (
            parse_expires,
            "9" * 5000,
            f"Expires header: value '{'9' * 61}...' exceeds 4294967295",
        ),
        (parse_call_id, "", "Call-ID header: empty value"),
        (parse_call_id, "a b", "Call-ID header: bad value 'a b'"),
    ],
)
def test_scalar_errors(parse: Callable[[str], object], value: str, message: str) -> None:
    with raises_exactly(message):
        parse(value)
