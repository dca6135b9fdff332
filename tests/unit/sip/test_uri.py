import pytest

from telportal.sip import (
    AbsoluteUri,
    Params,
    SipParseError,
    SipUri,
    TelUri,
    parse_sip_uri,
    parse_uri,
    unescape,
    uri_equal,
)
from telportal.sip.uri import _parse_sip


def test_sip_uri_components() -> None:
    uri = parse_uri("sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=hi&x=")
    assert uri == SipUri(
        scheme="sips",
        user="alice",
        password="secret",
        host="atlanta.example.com",
        port=5061,
        params=Params((("transport", "tcp"), ("lr", None))),
        headers=(("subject", "hi"), ("x", "")),
    )
    assert uri.is_secure
    assert uri.transport == "tcp"
    assert "lr" in uri.params
    assert uri.params.get("lr") is None


def test_host_only_uri() -> None:
    uri = parse_sip_uri("sip:biloxi.example.com")
    assert (uri.user, uri.host, uri.port, len(uri.params)) == (None, "biloxi.example.com", None, 0)
    assert not uri.is_secure


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:[2001:db8::10]:5070", "[2001:db8::10]", 5070),
        # RFC 5118 4.2: the last group looks like a port but is part of the address
        ("sip:[2001:db8::10:5070]", "[2001:db8::10:5070]", None),
        ("sip:user@[2001:db8::192.0.2.1]", "[2001:db8::192.0.2.1]", None),
        ("sip:ted@[::ffff:192.0.2.2]:19823", "[::ffff:192.0.2.2]", 19823),
        ("sip:192.0.2.1:5060", "192.0.2.1", 5060),
    ],
)
def test_ip_hosts(text: str, host: str, port: int | None) -> None:
    uri = parse_sip_uri(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


def test_user_part_with_reserved_characters() -> None:
    # RFC 4475 3.1.1.10 and 3.1.1.2: ';', '?', '/' and ',' belong to the user part
    uri = parse_sip_uri("sip:user;par=u%40example.net@example.com")
    assert (uri.user, uri.host, len(uri.params)) == ("user;par=u%40example.net", "example.com", 0)
    odd = parse_sip_uri(
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com"
    )
    assert odd.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert odd.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"


def test_escapes_are_kept_as_written_and_decoded_on_request() -> None:
    text = "sip:I%20have%20spaces@example.net;n%61me=v%61lue%25%34%31"
    uri = parse_sip_uri(text)
    assert str(uri) == text
    assert uri.user == "I%20have%20spaces"
    assert unescape(uri.user) == "I have spaces"
    assert uri.params.items == (("n%61me", "v%61lue%25%34%31"),)
    assert unescape("null-%00-null") == "null-\x00-null"


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.example.com",
        "SIP:ALICE@AtLanTa.CoM;Transport=UDP",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:alice@atlanta.example.com?subject=project%20x&priority=urgent",
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value",
        "sip:host;maddr=[2001:db8::1];ttl=15",
        "sip:alice@atlanta.example.com;empty=",
        "sips:[::1]:5061",
        "tel:+1-201-555-0123;ext=1234",
        "tel:7042;phone-context=example.com",
        "nobodyKnowsThisScheme:totallyopaquecontent",
        "soap.beep://192.0.2.103:3002",
        "http://www.example.com/path?q=1#frag",
    ],
)
def test_serialization_round_trips(text: str) -> None:
    assert str(parse_uri(text)) == text


def test_tel_and_other_schemes() -> None:
    tel = parse_uri("tel:+1-201-555-0123;phone-context=+1")
    assert isinstance(tel, TelUri)
    assert tel.is_global
    assert tel.params.get("phone-context") == "+1"
    other = parse_uri("isbn:2983792873")
    assert other == AbsoluteUri("isbn", "2983792873")
    with pytest.raises(SipParseError) as caught:
        parse_sip_uri("tel:+1")
    assert str(caught.value) == "URI 'tel:+1': not a sip or sips URI"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip:", "URI 'sip:': missing host"),
        ("sip:alice@", "URI 'sip:alice@': missing host"),
        ("sip:@host", "URI 'sip:@host': bad user part ''"),
        ("sip:al<ce@host", "URI 'sip:al<ce@host': forbidden character '<'"),
        ("sip:alice@host name", "URI 'sip:alice@host name': whitespace inside the URI"),
        ("<sip:alice@host>", "URI '<sip:alice@host>': forbidden character '<'"),
        ("alice", "URI 'alice': missing scheme"),
        ("1sip:alice@host", "URI '1sip:alice@host': bad scheme '1sip'"),
        (
            "sip:2001:db8::10",
            "URI 'sip:2001:db8::10': IPv6 address '2001:db8::10' must be in brackets",
        ),
        ("sip:[2001:db8:::1]", "URI 'sip:[2001:db8:::1]': bad IPv6 reference '[2001:db8:::1]'"),
        ("sip:[2001:db8::1", "URI 'sip:[2001:db8::1': unterminated IPv6 reference '[2001:db8::1'"),
        ("sip:[::1]x", "URI 'sip:[::1]x': unexpected 'x' after host"),
        ("sip:host:65536", "URI 'sip:host:65536': bad port '65536'"),
        ("sip:host:", "URI 'sip:host:': bad port ''"),
        ("sip:host:5o60", "URI 'sip:host:5o60': bad port '5o60'"),
        ("sip:999.0.2.1", "URI 'sip:999.0.2.1': bad IPv4 address '999.0.2.1'"),
        ("sip:-host.example.com-", "URI 'sip:-host.example.com-': bad host '-host.example.com-'"),
        ("sip:host;", "URI 'sip:host;': empty URI parameter"),
        ("sip:host;a=b=c{", "URI 'sip:host;a=b=c{': bad URI parameter 'a=b=c{'"),
        ("sip:host?subject", "URI 'sip:host?subject': bad URI header 'subject'"),
        ("sip:al%zzce@host", "URI 'sip:al%zzce@host': bad user part 'al%zzce'"),
        ("sip:alice:pa;ss@host", "URI 'sip:alice:pa;ss@host': bad password 'pa;ss'"),
        ("tel:call-me", "URI 'tel:call-me': bad telephone number 'call-me'"),
        ("http:", "URI 'http:': bad http URI body ''"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_uri(text)
    assert str(caught.value) == message


# RFC 3261 19.1.4, the examples of equivalent URIs
EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    # beyond the RFC's list: the same IPv6 address written two ways, and TEL numbers
    ("sip:[2001:db8::10]", "sip:[2001:DB8:0:0:0:0:0:10]"),
    ("tel:+1-201-555-0123", "tel:+1.201.555.0123"),
    ("SOAP.BEEP://host", "soap.beep://host"),
]

# RFC 3261 19.1.4, the examples of URIs that are not equivalent
NOT_EQUAL = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    # equality is not transitive
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    # beyond the RFC's list
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice@atlanta.com", "sip:atlanta.com"),
    ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com;maddr=192.0.2.1", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com;user=phone", "sip:alice@atlanta.com"),
    ("sip:a%3Bb@atlanta.com", "sip:a;b@atlanta.com"),  # reserved characters stay escaped
    ("sip:alice@atlanta.com", "tel:+1-201-555-0123"),
    ("tel:+1-201-555-0123", "tel:1-201-555-0123"),
    ("tel:+1-201-555-0123;ext=1", "tel:+1-201-555-0123"),
    ("http://host/a", "http://host/A"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal_uris(a: str, b: str) -> None:
    assert uri_equal(parse_uri(a), parse_uri(b))
    assert uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_different_uris(a: str, b: str) -> None:
    assert not uri_equal(parse_uri(a), parse_uri(b))
    assert not uri_equal(parse_uri(b), parse_uri(a))


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.example.com",
        "sip:alice:pw@192.0.2.1:5060;transport=udp;lr",
        "sip:+1-212-555-1212:1234@gateway.com;user=phone",
        "sip:user;par=u%40example.net@example.com",
        "sip:a.b.c;x=%41;y",
        "sip:host_1.example.com",
        "sip:12.34.56.78",
        "sip:1.2.3",
    ],
)
def test_common_shape_shortcut_agrees_with_full_parser(text: str) -> None:
    scheme, _, rest = text.partition(":")
    try:
        slow: SipUri | str = _parse_sip(scheme, rest)
    except SipParseError as exc:
        slow = str(exc)
    try:
        fast: SipUri | str = parse_sip_uri(text)
    except SipParseError as exc:
        fast = str(exc).partition(": ")[2]
    assert fast == slow
