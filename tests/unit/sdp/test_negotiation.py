import re

import pytest

from telportal.sdp.description import Direction, RtpMap, SdpError, SessionDescription
from telportal.sdp.negotiation import (
    PCMA,
    PCMU,
    Codec,
    LocalMedia,
    accept_answer,
    answer_offer,
    create_offer,
    is_hold,
)

LOCAL = LocalMedia("203.0.113.5", 30000)


def offer(*media: str, connection: str = "198.51.100.7", session: str = "") -> SessionDescription:
    head = f"v=0\r\no=alice 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 {connection}\r\nt=0 0\r\n"
    return SessionDescription.parse(head + session + "".join(media))


G711_DTMF = (
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
)


def test_basic_answer_is_exact() -> None:
    answer = answer_offer(offer(G711_DTMF), LOCAL, session_id=42, session_version=1)
    assert answer.sdp.serialize() == (
        "v=0\r\n"
        "o=telportal 42 1 IN IP4 203.0.113.5\r\n"
        "s=-\r\n"
        "c=IN IP4 203.0.113.5\r\n"
        "t=0 0\r\n"
        "m=audio 30000 RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )
    audio = answer.audio
    assert (audio.codec, audio.payload_type, audio.telephone_event_payload_type) == (PCMU, 0, 101)
    assert (audio.remote_address, audio.remote_port, audio.remote_rtcp_port) == (
        "198.51.100.7",
        49170,
        49171,
    )
    assert audio.direction is Direction.SENDRECV
    assert not audio.remote_hold
    assert audio.ptime == 20
    assert audio.media_index == 0


def test_offerer_order_wins_over_ours() -> None:
    answer = answer_offer(offer("m=audio 49170 RTP/AVP 18 8 0\r\n"), LOCAL, 1, 1)
    assert answer.audio.codec == PCMA
    assert answer.sdp.media[0].formats == ("8",)


def test_static_types_need_no_rtpmap_and_dynamic_ones_are_read_from_it() -> None:
    text = (
        "m=audio 49170 RTP/AVP 96 97 98\r\n"
        "a=rtpmap:96 opus/48000/2\r\n"
        "a=rtpmap:97 pcma/8000\r\n"
        "a=rtpmap:98 telephone-event/48000\r\n"
    )
    answer = answer_offer(offer(text), LOCAL, 1, 1)
    # PCMA under the offerer's number 97; telephone-event at 48 kHz does not fit 8 kHz.
    assert (answer.audio.codec, answer.audio.payload_type) == (PCMA, 97)
    assert answer.audio.telephone_event_payload_type is None
    assert answer.sdp.media[0].formats == ("97",)
    assert answer.sdp.media[0].attribute_values("rtpmap") == ["97 PCMA/8000"]


def test_telephone_event_keeps_its_payload_number_with_events_0_to_15() -> None:
    text = "m=audio 49170 RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-11\r\n"
    media = answer_offer(offer(text), LOCAL, 1, 1).sdp.media[0]
    assert media.formats == ("8", "96")
    assert media.fmtps == {96: "0-15"}


def test_no_telephone_event_offered_means_none_answered() -> None:
    media = answer_offer(offer("m=audio 49170 RTP/AVP 0\r\n"), LOCAL, 1, 1).sdp.media[0]
    assert media.formats == ("0",)
    assert media.fmtps == {}


def test_telephone_event_can_be_declined_locally() -> None:
    local = LocalMedia("203.0.113.5", 30000, telephone_event=False)
    answer = answer_offer(offer(G711_DTMF), local, 1, 1)
    assert answer.sdp.media[0].formats == ("0",)
    assert answer.audio.telephone_event_payload_type is None


@pytest.mark.parametrize(
    ("offered", "connection", "answered", "hold"),
    [
        ("sendrecv", "198.51.100.7", Direction.SENDRECV, False),
        ("sendonly", "198.51.100.7", Direction.RECVONLY, True),
        ("recvonly", "198.51.100.7", Direction.SENDONLY, False),
        ("inactive", "198.51.100.7", Direction.INACTIVE, True),
        # RFC 2543 hold: 0.0.0.0 means "do not send to me", whatever the attribute says.
        ("sendrecv", "0.0.0.0", Direction.RECVONLY, True),
        ("recvonly", "0.0.0.0", Direction.INACTIVE, True),
    ],
)
def test_direction_and_hold(offered: str, connection: str, answered: Direction, hold: bool) -> None:
    sdp = offer(G711_DTMF + f"a={offered}\r\n", connection=connection)
    answer = answer_offer(sdp, LOCAL, 1, 2)
    assert answer.sdp.media[0].direction is answered
    assert answer.audio.direction is answered
    assert answer.audio.remote_hold is hold
    assert is_hold(sdp, sdp.media[0]) is hold


def test_session_level_direction_applies_to_media_without_one() -> None:
    sdp = offer(G711_DTMF, session="a=sendonly\r\n")
    answer = answer_offer(sdp, LOCAL, 1, 1)
    assert answer.audio.direction is Direction.RECVONLY
    assert answer.audio.remote_hold


def test_we_put_the_call_on_hold() -> None:
    local = LocalMedia("203.0.113.5", 30000, direction=Direction.SENDONLY)
    assert answer_offer(offer(G711_DTMF), local, 1, 1).audio.direction is Direction.SENDONLY
    # They are holding us as well: nobody sends.
    sdp = offer(G711_DTMF + "a=sendonly\r\n")
    assert answer_offer(sdp, local, 1, 1).audio.direction is Direction.INACTIVE


def test_other_streams_are_rejected_with_port_0() -> None:
    sdp = offer(
        "m=video 51372 RTP/AVP 31\r\na=rtpmap:31 H261/90000\r\n",
        "m=audio 0 RTP/AVP 0\r\n",
        "m=audio 49170 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n",
        G711_DTMF,
        "m=audio 49180 RTP/AVP 8\r\n",
    )
    answer = answer_offer(sdp, LOCAL, 1, 1)
    lines = [m.lines()[0] for m in answer.sdp.media]
    assert lines == [
        "m=video 0 RTP/AVP 31",
        "m=audio 0 RTP/AVP 0",
        "m=audio 0 RTP/SAVP 0",
        "m=audio 30000 RTP/AVP 0 101",
        "m=audio 0 RTP/AVP 8",
    ]
    assert all(not m.attributes for m in answer.sdp.media if m.port == 0)
    assert answer.audio.media_index == 3


def test_first_audio_stream_without_a_common_codec_is_skipped() -> None:
    sdp = offer("m=audio 40000 RTP/AVP 18\r\n", "m=audio 40002 RTP/AVP 8\r\n")
    answer = answer_offer(sdp, LOCAL, 1, 1)
    assert [m.port for m in answer.sdp.media] == [0, 30000]
    assert answer.audio.remote_port == 40002


def test_no_common_codec_is_a_clear_error() -> None:
    sdp = offer("m=audio 49170 RTP/AVP 18 3 96\r\na=rtpmap:96 telephone-event/8000\r\n")
    with pytest.raises(SdpError) as caught:
        answer_offer(sdp, LOCAL, 1, 1)
    assert str(caught.value) == (
        "no common audio codec: offered G729/8000, GSM/8000, telephone-event/8000; "
        "supported PCMU/8000, PCMA/8000"
    )


def test_offer_without_plain_rtp_audio_is_a_clear_error() -> None:
    sdp = offer("m=video 51372 RTP/AVP 31\r\n", "m=audio 49170 UDP/TLS/RTP/SAVPF 0\r\n")
    with pytest.raises(SdpError, match=r"^offer has no RTP/AVP audio stream$"):
        answer_offer(sdp, LOCAL, 1, 1)


def test_media_level_connection_and_rtcp_attribute() -> None:
    sdp = offer(
        "m=audio 49170 RTP/AVP 0\r\nc=IN IP6 2001:db8::7\r\na=rtcp:53020\r\na=ptime:30\r\n",
    )
    audio = answer_offer(sdp, LocalMedia("2001:db8::5", 30000), 1, 1).audio
    assert (audio.remote_address, audio.remote_port, audio.remote_rtcp_port) == (
        "2001:db8::7",
        49170,
        53020,
    )
    assert audio.ptime == 30


def test_ipv6_local_address_gives_ip6_lines() -> None:
    answer = answer_offer(offer(G711_DTMF), LocalMedia("2001:db8::5", 30000), 1, 1)
    text = answer.sdp.serialize()
    assert "o=telportal 1 1 IN IP6 2001:db8::5\r\n" in text
    assert "c=IN IP6 2001:db8::5\r\n" in text


def test_missing_connection_address_is_an_error() -> None:
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"
    )
    with pytest.raises(SdpError, match=r"^media line 1 has no connection address$"):
        answer_offer(sdp, LOCAL, 1, 1)


def test_create_offer_then_accept_the_answer() -> None:
    ours = LocalMedia("203.0.113.5", 30000)
    sdp_offer = create_offer(ours, session_id=7, session_version=1)
    assert sdp_offer.media[0].formats == ("0", "8", "101")
    theirs = LocalMedia("198.51.100.7", 40000, codecs=(PCMA,))
    answer = answer_offer(SessionDescription.parse(sdp_offer.serialize()), theirs, 9, 1)
    audio = accept_answer(sdp_offer, answer.sdp, ours)
    assert (audio.codec, audio.payload_type, audio.telephone_event_payload_type) == (PCMA, 8, 101)
    assert (audio.remote_address, audio.remote_port) == ("198.51.100.7", 40000)
    assert audio.direction is Direction.SENDRECV


def test_accept_answer_that_holds_us() -> None:
    ours = LocalMedia("203.0.113.5", 30000)
    sdp_offer = create_offer(ours, 7, 2)
    holding = LocalMedia("198.51.100.7", 40000, direction=Direction.SENDONLY)
    answer = answer_offer(sdp_offer, holding, 9, 2)
    audio = accept_answer(sdp_offer, answer.sdp, ours)
    assert audio.direction is Direction.RECVONLY
    assert audio.remote_hold


def test_accept_answer_errors() -> None:
    ours = LocalMedia("203.0.113.5", 30000)
    sdp_offer = create_offer(ours, 7, 1)
    head = "v=0\r\no=bob 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
    cases = [
        ("", "answer has 0 media lines, the offer had 1"),
        ("m=audio 0 RTP/AVP 0\r\n", "answer rejected every audio stream"),
        (
            "m=audio 4000 RTP/AVP 18\r\n",
            "answer uses payload type 18, which the offer did not include",
        ),
        (
            "m=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",
            "answer accepted media line 1 with no codec we support",
        ),
    ]
    for media, message in cases:
        with pytest.raises(SdpError) as caught:
            accept_answer(sdp_offer, SessionDescription.parse(head + media), ours)
        assert str(caught.value) == message


def test_local_media_validation() -> None:
    with pytest.raises(ValueError, match=re.escape("'pbx.example.com' is not an IP address")):
        LocalMedia("pbx.example.com", 30000)
    with pytest.raises(ValueError, match="port 0 is out of range 1-65535"):
        LocalMedia("203.0.113.5", 0)
    with pytest.raises(ValueError, match="at least one codec is needed"):
        LocalMedia("203.0.113.5", 1, codecs=())


def test_codec_matching_ignores_case_and_needs_mono() -> None:
    assert PCMU.matches(RtpMap(0, "pcmu", 8000))
    assert PCMU.matches(RtpMap(0, "PCMU", 8000, 1))
    assert not PCMU.matches(RtpMap(0, "PCMU", 8000, 2))
    assert not PCMU.matches(RtpMap(0, "PCMU", 16000))
    assert str(Codec("G722", 8000, 9)) == "G722/8000"
