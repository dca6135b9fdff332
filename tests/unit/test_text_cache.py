"""The parse caches keep short texts only: a long value, which anyone can send, is
parsed every time and never held (telportal/text_cache.py)."""

from typing import Any

from telportal.sdp import SessionDescription
from telportal.sip import Request, parse_message
from telportal.sip import address as sip_address
from telportal.sip import via as sip_via
from telportal.text_cache import MAX_CACHED_TEXT, short_text_cache


def test_short_texts_are_kept_and_long_ones_parsed_every_time() -> None:
    parsed: list[str] = []

    @short_text_cache(8)
    def parse(text: str) -> tuple[str]:
        parsed.append(text)
        return (text,)

    short, long = "x" * MAX_CACHED_TEXT, "y" * (MAX_CACHED_TEXT + 1)
    assert parse(short) is parse(short)
    assert parse(long) == parse(long) == (long,)
    assert parsed == [short, long, long]
    assert parse.cache_info().currsize == 1  # type: ignore[attr-defined]


def _cache_sizes() -> dict[str, Any]:
    return {
        "address": sip_address._cached_address.cache_info().currsize,  # type: ignore[attr-defined]
        "tagged": len(sip_address._TAGGED),
        "via": sip_via._cached_via.cache_info().currsize,  # type: ignore[attr-defined]
    }


def test_a_message_with_huge_header_values_is_parsed_and_not_kept() -> None:
    name = "n" * 20_000
    data = (
        "OPTIONS sip:1001@192.0.2.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-1;x-{'p' * 20_000}=1\r\n"
        f'From: "{name}" <sip:scan@192.0.2.9>;tag=t-{"a" * 10_000}\r\n'
        f'To: "{name}" <sip:1001@192.0.2.1>\r\n'
        "Call-ID: long-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    before = _cache_sizes()
    request = parse_message(data)
    assert isinstance(request, Request)
    assert request.from_.display_name == name and request.to.display_name == name
    assert request.top_via.branch == "z9hG4bK-1"
    assert _cache_sizes() == before  # nothing of it is held


def test_a_long_sdp_line_is_parsed_and_not_kept() -> None:
    from telportal.sdp import description

    before = description._attribute.cache_info().currsize  # type: ignore[attr-defined]
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        f"m=audio 4000 RTP/AVP 0\r\na=x-note:{'z' * 5_000}\r\n"
    )
    assert sdp.media[0].attribute("x-note") == "z" * 5_000
    assert description._attribute.cache_info().currsize == before
