import random

import pytest

from telportal.sdp.description import (
    Attribute,
    Connection,
    Direction,
    Origin,
    RtcpAddress,
    RtpMap,
    SdpError,
    SessionDescription,
)

# Shaped like a softphone's INVITE body: two audio codecs, DTMF, RTCP on its own address.
SOFTPHONE_OFFER = (
    "v=0\r\n"
    "o=- 3899478513 3899478513 IN IP4 192.0.2.10\r\n"
    "s=softphone\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "b=AS:84\r\n"
    "t=0 0\r\n"
    "a=tool:example 1.0\r\n"
    "m=audio 40000 RTP/AVP 0 8 101\r\n"
    "b=TIAS:64000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=rtcp:40001 IN IP4 192.0.2.11\r\n"
    "a=sendrecv\r\n"
)


def test_parse_softphone_offer() -> None:
    sdp = SessionDescription.parse(SOFTPHONE_OFFER)
    assert sdp.origin == Origin("-", "3899478513", 3899478513, "192.0.2.10")
    assert sdp.session_name == "softphone"
    assert sdp.connection == Connection("192.0.2.10")
    assert sdp.bandwidths == ("AS:84",)
    assert sdp.timing == ((0, 0),)
    assert sdp.attributes == (Attribute("tool", "example 1.0"),)
    (audio,) = sdp.media
    assert (audio.media, audio.port, audio.protocol) == ("audio", 40000, "RTP/AVP")
    assert audio.formats == ("0", "8", "101")
    assert audio.payload_types == [0, 8, 101]
    assert audio.bandwidths == ("TIAS:64000",)
    assert audio.rtpmaps == {
        0: RtpMap(0, "PCMU", 8000),
        8: RtpMap(8, "PCMA", 8000),
        101: RtpMap(101, "telephone-event", 8000),
    }
    assert audio.fmtps == {101: "0-16"}
    assert audio.ptime == 20
    assert audio.rtcp == RtcpAddress(40001, Connection("192.0.2.11"))
    assert audio.direction is Direction.SENDRECV
    assert sdp.connection_for(audio) == Connection("192.0.2.10")


def test_round_trip_is_byte_exact() -> None:
    assert SessionDescription.parse(SOFTPHONE_OFFER).serialize() == SOFTPHONE_OFFER
    assert SessionDescription.parse(SOFTPHONE_OFFER.encode()).serialize() == SOFTPHONE_OFFER


def test_bare_lf_line_endings_and_blank_lines_are_accepted() -> None:
    relaxed = SOFTPHONE_OFFER.replace("\r\n", "\n") + "\n\n"
    assert SessionDescription.parse(relaxed) == SessionDescription.parse(SOFTPHONE_OFFER)


def test_ipv6_and_multiple_media_lines_are_kept_in_order() -> None:
    text = (
        "v=0\r\n"
        "o=bob 1 2 IN IP6 2001:db8::2\r\n"
        "s=-\r\n"
        "i=a call\r\n"
        "u=https://example.com/\r\n"
        "t=0 0\r\n"
        "r=604800 3600 0 90000\r\n"
        "a=recvonly\r\n"
        "m=audio 5004 RTP/AVP 8\r\n"
        "c=IN IP6 2001:db8::2\r\n"
        "m=video 5006/2 RTP/AVP 31 34\r\n"
        "i=camera\r\n"
        "c=IN IP6 2001:db8::3\r\n"
        "a=rtpmap:31 H261/90000\r\n"
        "m=audio 0 RTP/SAVP 0\r\n"
        "c=IN IP4 198.51.100.1/127\r\n"
    )
    sdp = SessionDescription.parse(text)
    assert sdp.origin.address_type == "IP6"
    assert [m.media for m in sdp.media] == ["audio", "video", "audio"]
    assert sdp.media[0].connection == Connection("2001:db8::2", "IP6")
    assert sdp.media[1].port_count == 2
    assert sdp.media[1].information == "camera"
    assert sdp.media[2].connection == Connection("198.51.100.1/127")
    assert sdp.extra_lines == (
        ("i", "a call"),
        ("u", "https://example.com/"),
        ("r", "604800 3600 0 90000"),
    )
    # No a=<direction> on the media: the session's recvonly applies.
    assert sdp.media[0].direction is None
    assert sdp.direction_for(sdp.media[0]) is Direction.RECVONLY
    assert sdp.serialize() == text


def test_direction_defaults_to_sendrecv() -> None:
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"
    )
    assert sdp.direction_for(sdp.media[0]) is Direction.SENDRECV
    assert sdp.connection_for(sdp.media[0]) is None


def test_hold_address_and_fqdn() -> None:
    assert Connection("0.0.0.0").is_hold
    assert not Connection("192.0.2.1").is_hold
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 host.example.com\r\ns=-\r\nc=IN IP4 host.example.com\r\nt=0 0\r\n"
    )
    assert sdp.connection == Connection("host.example.com")


def test_direction_arithmetic() -> None:
    assert Direction.SENDONLY.reversed() is Direction.RECVONLY
    assert Direction.RECVONLY.reversed() is Direction.SENDONLY
    assert Direction.SENDRECV.reversed() is Direction.SENDRECV
    assert Direction.INACTIVE.reversed() is Direction.INACTIVE
    assert Direction.of(sends=True, receives=False) is Direction.SENDONLY


def test_connection_for_address_picks_the_family() -> None:
    assert str(Connection.for_address("203.0.113.9")) == "IN IP4 203.0.113.9"
    assert str(Connection.for_address("2001:db8::9")) == "IN IP6 2001:db8::9"


HEAD = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "SDP is empty"),
        ("o=- 1 1 IN IP4 192.0.2.1\r\n", "SDP must start with a v= line"),
        ("v=1\r\n", "unsupported SDP version '1', expected 0"),
        ("v=0\r\ns=-\r\nt=0 0\r\n", "SDP has no o= line"),
        ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0 0\r\n", "SDP has no s= line"),
        ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP has no t= line"),
        ("v=0\r\nhello\r\n", "line 2: expected '<type>=<value>', got 'hello'"),
        ("v=0\r\no=- 1 IN IP4 192.0.2.1\r\n", "line 2: o= line: expected 6 fields, got 5"),
        (
            "v=0\r\no=- 1 x IN IP4 192.0.2.1\r\n",
            "line 2: o= line: session version 'x' is not a number",
        ),
        (HEAD + "x=1\r\n", "line 5: unknown line type 'x'"),
        (HEAD + "c=IN IP5 192.0.2.1\r\n", "line 5: c= line: unsupported address type 'IP5'"),
        (
            HEAD + "c=IN IP4 2001:db8::1\r\n",
            "line 5: c= line: address 2001:db8::1 is not an IP4 address",
        ),
        (HEAD + "c=ATM NSAP 1\r\n", "line 5: c= line: unsupported network type 'ATM'"),
        (HEAD + "c=IN IP4\r\n", "line 5: c= line: expected 3 fields, got 2"),
        (HEAD + "t=now\r\n", "line 5: t= line: expected '<start> <stop>', got 'now'"),
        (HEAD + "m=audio 70000 RTP/AVP 0\r\n", "line 5: m= line: invalid port '70000'"),
        (HEAD + "m=audio \u00b2 RTP/AVP 0\r\n", "line 5: m= line: invalid port '\u00b2'"),
        (HEAD + "m=audio 1/0 RTP/AVP 0\r\n", "line 5: m= line: invalid port count '0'"),
        (
            HEAD + "m=audio 1 RTP/AVP\r\n",
            "line 5: m= line: expected '<media> <port> <proto> <format> ...', "
            "got 'audio 1 RTP/AVP'",
        ),
        (
            HEAD + "m=audio 1 RTP/AVP 0\r\nt=0 0\r\n",
            "line 6: t= line is not allowed after the first m= line",
        ),
        (
            HEAD + "m=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
            "line 6: a=rtpmap:0 PCMU is not '<payload type> <name>/<rate>'",
        ),
        (
            HEAD + "m=audio 1 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n",
            "line 6: a=rtpmap:200 X/8000 has payload type out of range 0-127",
        ),
        (HEAD + "a=ptime:abc\r\n", "line 5: a=ptime:abc is not a positive number of milliseconds"),
        (HEAD + "a=fmtp:101\r\n", "line 5: a=fmtp:101 is not '<payload type> <parameters>'"),
        (HEAD + "a=rtcp:x\r\n", "line 5: a=rtcp: invalid port 'x'"),
        (HEAD + "a=rtcp:1 IN\r\n", "line 5: a=rtcp:1 IN is not '<port> [IN IP4|IP6 <address>]'"),
        (HEAD + "a=sendonly:yes\r\n", "line 5: a=sendonly takes no value, got 'yes'"),
        (HEAD + "a=:x\r\n", "line 5: a=:x has no attribute name"),
        (HEAD + "v=0\r\n", "line 5: a second v= line"),
    ],
)
def test_parse_errors_name_the_line_and_fault(text: str, message: str) -> None:
    with pytest.raises(SdpError) as caught:
        SessionDescription.parse(text)
    assert str(caught.value) == message


def test_non_utf8_body() -> None:
    with pytest.raises(SdpError, match="SDP is not valid UTF-8 at byte 2"):
        SessionDescription.parse(b"v=\xff")


def test_mangled_descriptions_fail_only_with_sdp_error() -> None:
    """Seeded random edits of a valid body: each parses or raises SdpError, nothing else."""
    rng = random.Random(4566)
    alphabet = "=: /\r\n0123456789abcIPNmvostcaX-."
    parsed = 0
    for _ in range(3000):
        chars = list(SOFTPHONE_OFFER)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(chars))
            choice = rng.random()
            if choice < 0.4:
                chars[position] = rng.choice(alphabet)
            elif choice < 0.7:
                del chars[position]
            else:
                chars.insert(position, rng.choice(alphabet))
        try:
            sdp = SessionDescription.parse("".join(chars))
        except SdpError:
            continue
        parsed += 1
        for media in sdp.media:
            assert isinstance(media.rtpmaps, dict)
            assert isinstance(media.fmtps, dict)
            _ = (media.ptime, media.rtcp, media.payload_types, sdp.direction_for(media))
        assert SessionDescription.parse(sdp.serialize()) == sdp
    assert parsed > 100


def test_lines_seen_before_are_parsed_once_and_errors_are_raised_every_time() -> None:
    first = SessionDescription.parse(SOFTPHONE_OFFER)
    again = SessionDescription.parse(SOFTPHONE_OFFER.replace("40000", "40002"))
    # Frozen records from the same text are shared, not parsed again.
    for a, b in zip(first.media[0].attributes, again.media[0].attributes, strict=True):
        assert a is b
    assert first.media[0].rtpmaps[0] is again.media[0].rtpmaps[0]
    assert again.media[0].port == 40002
    bad = SOFTPHONE_OFFER.replace("a=rtpmap:8 PCMA/8000", "a=rtpmap:8 PCMA")
    for _ in range(2):
        with pytest.raises(SdpError, match="rtpmap:8 PCMA is not"):
            SessionDescription.parse(bad)
    with pytest.raises(ValueError, match="not an IP address"):
        Connection.for_address("pbx.example.com")
