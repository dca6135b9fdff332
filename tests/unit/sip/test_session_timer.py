"""Session timers (RFC 4028): header grammar, negotiation, and the timer on a fake clock."""

import pytest

from telportal.clock import FakeClock
from telportal.sip import Request, Response, SipParseError, make_response, parse_message
from telportal.sip.dialog import Dialog, DialogState
from telportal.sip.params import Params
from telportal.sip.session_timer import (
    DEFAULT_SESSION_EXPIRES,
    MIN_SE_FLOOR,
    Expire,
    Refresher,
    SendRefresh,
    SessionExpires,
    SessionTimer,
    SessionTimerAgreement,
    SessionTimerPolicy,
    TimerState,
    has_option_tag,
    negotiate_uac,
    negotiate_uas,
    parse_min_se,
    parse_session_expires,
    request_headers,
    retry_headers_after_422,
    session_expires_of,
)
from telportal.sip.validate import Rejection


def invite(*extra: str) -> Request:
    lines = [
        "INVITE sip:4008001000@pbx.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-st1;rport",
        "Max-Forwards: 70",
        "From: <sip:1001@acme.example.com>;tag=caller",
        "To: <sip:4008001000@pbx.example.com>",
        "Call-ID: st-1@192.0.2.10",
        "CSeq: 1 INVITE",
        "Contact: <sip:1001@192.0.2.10:5060>",
        *extra,
    ]
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def ok_with(*extra: tuple[str, str]) -> Response:
    response = make_response(invite(), 200, to_tag="callee", headers=extra)
    message = parse_message(bytes(response))
    assert isinstance(message, Response)
    return message


def agreed(result: SessionTimerAgreement | Rejection | None) -> SessionTimerAgreement:
    assert isinstance(result, SessionTimerAgreement)
    return result


# -- headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1800", SessionExpires(1800)),
        ("1800;refresher=uac", SessionExpires(1800, Refresher.UAC)),
        ("4000 ; refresher = UAS", SessionExpires(4000, Refresher.UAS)),
        ("90;x=1;refresher=uas", SessionExpires(90, Refresher.UAS, Params((("x", "1"),)))),
    ],
)
def test_parse_session_expires(text: str, expected: SessionExpires) -> None:
    assert parse_session_expires(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Session-Expires header: bad value ''"),
        ("soon", "Session-Expires header: bad value 'soon'"),
        ("-5", "Session-Expires header: bad value '-5'"),
        ("1800;refresher=both", "Session-Expires header: bad refresher 'both'"),
        ("1800;;", "Session-Expires header: empty parameter"),
        ("99999999999", "Session-Expires header: value '99999999999' exceeds 4294967295"),
    ],
)
def test_bad_session_expires(text: str, message: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_session_expires(text)
    assert str(caught.value) == message


def test_format_session_expires_round_trips() -> None:
    for value in ("1800", "1800;refresher=uac", "90;refresher=uas;x=1"):
        assert str(parse_session_expires(value)) == value


def test_min_se_and_compact_form() -> None:
    assert parse_min_se("120") == 120
    assert parse_min_se("120;x=y") == 120
    with pytest.raises(SipParseError, match="Min-SE header"):
        parse_min_se("two minutes")
    assert session_expires_of(invite("x: 600;refresher=uac")) == SessionExpires(600, Refresher.UAC)
    assert session_expires_of(invite()) is None
    assert has_option_tag(invite("Supported: 100rel, Timer"), "Supported")
    assert not has_option_tag(invite("Supported: 100rel"), "Supported")


def test_request_headers() -> None:
    assert request_headers() == (
        ("Supported", "timer"),
        ("Session-Expires", "1800"),
        ("Min-SE", "90"),
    )
    # Never ask for less than the Min-SE we announce.
    assert request_headers(100, 300, refresher=Refresher.UAC)[1:] == (
        ("Session-Expires", "300;refresher=uac"),
        ("Min-SE", "300"),
    )


# -- UAS negotiation --------------------------------------------------------------------


def test_uas_answers_422_with_min_se_when_the_interval_is_too_small() -> None:
    request = invite("Supported: timer", "Session-Expires: 60", "Min-SE: 60")

    verdict = negotiate_uas(request, SessionTimerPolicy(min_se=120))

    assert isinstance(verdict, Rejection)
    assert (verdict.status, verdict.reason) == (422, "Session Interval Too Small")
    assert verdict.headers == (("Min-SE", "120"),)
    response = make_response(request, verdict.status, headers=verdict.headers, to_tag="t")
    assert response.headers.get("Min-SE") == "120"


def test_uac_retries_a_422_with_the_min_se_it_names() -> None:
    request = invite("Supported: timer", "Session-Expires: 60")
    verdict = negotiate_uas(request, SessionTimerPolicy(interval=600, min_se=300))
    assert isinstance(verdict, Rejection)
    refused = parse_message(bytes(make_response(request, 422, headers=verdict.headers)))
    assert isinstance(refused, Response)

    lines = retry_headers_after_422(refused, SessionTimerPolicy(interval=120, min_se=90))

    assert lines == (("Supported", "timer"), ("Session-Expires", "300"), ("Min-SE", "300"))
    retried = invite(*(f"{name}: {value}" for name, value in lines))
    accepted = agreed(negotiate_uas(retried, SessionTimerPolicy(interval=600, min_se=300)))
    assert accepted.interval == 300


def test_uas_picks_the_refresher_when_the_uac_leaves_it_open() -> None:
    request = invite("Supported: timer", "Session-Expires: 1800")

    ours = agreed(negotiate_uas(request, SessionTimerPolicy(refresh_locally=True)))
    theirs = agreed(negotiate_uas(request, SessionTimerPolicy(refresh_locally=False)))

    assert (ours.interval, ours.refresher, ours.local_refresher) == (1800, Refresher.UAS, True)
    assert ours.headers == (("Session-Expires", "1800;refresher=uas"), ("Require", "timer"))
    assert (theirs.refresher, theirs.local_refresher) == (Refresher.UAC, False)
    assert theirs.headers == (("Session-Expires", "1800;refresher=uac"), ("Require", "timer"))


def test_uas_keeps_the_refresher_the_uac_chose() -> None:
    request = invite("Supported: timer", "Session-Expires: 1800;refresher=uac")
    agreement = agreed(negotiate_uas(request, SessionTimerPolicy(refresh_locally=True)))
    assert agreement.refresher is Refresher.UAC
    assert not agreement.local_refresher


def test_uas_shortens_a_long_interval_but_not_below_the_request_min_se() -> None:
    policy = SessionTimerPolicy(interval=600)
    assert agreed(negotiate_uas(invite("k: timer", "x: 7200"), policy)).interval == 600
    request = invite("k: timer", "x: 7200", "Min-SE: 1200")
    assert agreed(negotiate_uas(request, policy)).interval == 1200
    # ... and never lengthens one.
    assert agreed(negotiate_uas(invite("k: timer", "x: 300"), policy)).interval == 300


def test_uas_without_uac_support_refreshes_itself_and_requires_nothing() -> None:
    # A proxy inserted Session-Expires; the UAC itself knows nothing of timers.
    agreement = agreed(negotiate_uas(invite("Session-Expires: 1800"), SessionTimerPolicy()))
    assert agreement.refresher is Refresher.UAS
    assert agreement.local_refresher
    assert agreement.headers == (("Session-Expires", "1800;refresher=uas"),)
    # Nor can such a UAC act on a 422: the small interval is accepted as it is.
    small = agreed(negotiate_uas(invite("Session-Expires: 60"), SessionTimerPolicy()))
    assert small.interval == 60


def test_uas_may_ask_for_a_timer_the_uac_supports_but_did_not_request() -> None:
    agreement = agreed(
        negotiate_uas(invite("Supported: timer", "Min-SE: 2400"), SessionTimerPolicy())
    )
    assert agreement.interval == 2400
    assert agreement.headers[1] == ("Require", "timer")
    assert negotiate_uas(invite(), SessionTimerPolicy()) is None


def test_uas_answers_400_to_an_unreadable_session_expires() -> None:
    verdict = negotiate_uas(invite("Supported: timer", "Session-Expires: often"))
    assert isinstance(verdict, Rejection)
    assert verdict.status == 400
    assert verdict.detail == "Session-Expires header: bad value 'often'"


def test_policy_limits() -> None:
    with pytest.raises(ValueError, match="floor"):
        SessionTimerPolicy(min_se=30)
    with pytest.raises(ValueError, match="below min_se"):
        SessionTimerPolicy(interval=100, min_se=200)


# -- UAC negotiation --------------------------------------------------------------------


def test_uac_reads_the_2xx() -> None:
    uas_refreshes = negotiate_uac(ok_with(("Session-Expires", "1800;refresher=uas")))
    assert uas_refreshes is not None
    assert (uas_refreshes.interval, uas_refreshes.local_refresher) == (1800, False)
    uac_refreshes = negotiate_uac(ok_with(("Session-Expires", "900;refresher=uac")))
    assert uac_refreshes is not None
    assert uac_refreshes.local_refresher
    # A 2xx without refresher leaves the work to us rather than to nobody.
    assert agreed(negotiate_uac(ok_with(("Session-Expires", "900")))).local_refresher
    assert negotiate_uac(ok_with()) is None
    with pytest.raises(ValueError, match="does not conclude"):
        negotiate_uac(make_response(invite(), 180, to_tag="t"))


# -- the timer --------------------------------------------------------------------------


def test_refresher_sends_a_refresh_at_half_the_interval() -> None:
    clock = FakeClock()
    agreement = agreed(negotiate_uas(invite("Supported: timer", "Session-Expires: 1800")))
    timer = SessionTimer.start(agreement, clock.monotonic())
    assert timer.next_deadline() == 900

    clock.advance(899.9)
    assert timer.on_timer(clock.monotonic()) == []
    clock.advance(0.1)
    actions = timer.on_timer(clock.monotonic())

    assert actions == [SendRefresh(1800, MIN_SE_FLOOR)]
    assert actions[0].headers == (
        ("Supported", "timer"),
        ("Session-Expires", "1800;refresher=uac"),
        ("Min-SE", "90"),
    )
    assert timer.state is TimerState.REFRESHING
    assert timer.on_timer(clock.monotonic()) == []  # one refresh at a time
    assert timer.next_deadline() == 1800 - 32

    clock.advance(2.5)  # the re-INVITE or UPDATE got its 2xx
    timer.refreshed(clock.monotonic())
    assert timer.state is TimerState.WAITING
    assert timer.next_deadline() == 902.5 + 900


def test_peer_never_refreshes_so_the_call_is_torn_down_with_bye() -> None:
    clock = FakeClock()
    request = invite("Supported: timer", "Session-Expires: 90")
    agreement = agreed(negotiate_uas(request, SessionTimerPolicy(refresh_locally=False)))
    dialog = Dialog.from_uas(request, "callee", "<sip:pbx@192.0.2.1>")
    dialog.respond(request, 200, headers=agreement.headers)
    dialog.receive_request(_ack(request))
    timer = SessionTimer.start(agreement, clock.monotonic())

    # Expiry comes min(32, 90/3) = 30 s before the 90 s run out.
    assert timer.next_deadline() == 60
    clock.advance(45)  # half the interval: nothing to do, the peer refreshes
    assert timer.on_timer(clock.monotonic()) == []
    clock.advance(15)
    actions = timer.on_timer(clock.monotonic())

    assert actions == [Expire(last_refresh=0.0)]
    assert timer.state is TimerState.EXPIRED
    assert timer.next_deadline() is None
    assert timer.on_timer(clock.monotonic() + 1000) == []
    bye = dialog.bye()
    assert bye.method == "BYE"
    assert str(bye.uri) == "sip:1001@192.0.2.10:5060"
    assert dialog.state is DialogState.TERMINATED


def test_refreshes_from_the_peer_push_the_deadline() -> None:
    clock = FakeClock()
    timer = SessionTimer(1800, local_refresher=False, now=clock.monotonic())
    assert timer.next_deadline() == 1800 - 32
    for _ in range(5):
        clock.advance(900)
        assert timer.on_timer(clock.monotonic()) == []
        timer.refreshed(clock.monotonic())
        assert timer.next_deadline() == clock.monotonic() + 1768
    assert timer.last_refresh == 4500


def test_a_refresher_whose_refreshes_fail_expires_too() -> None:
    clock = FakeClock()
    timer = SessionTimer(120, local_refresher=True, now=clock.monotonic())
    clock.advance(60)
    assert timer.on_timer(clock.monotonic()) == [SendRefresh(120, MIN_SE_FLOOR)]
    clock.advance(20)  # 120 - min(32, 40) = 88
    assert timer.on_timer(clock.monotonic()) == []
    clock.advance(8)
    assert timer.on_timer(clock.monotonic()) == [Expire(last_refresh=0.0)]


def test_a_late_wakeup_past_expiry_expires_at_once() -> None:
    clock = FakeClock()
    timer = SessionTimer(DEFAULT_SESSION_EXPIRES, local_refresher=True, now=clock.monotonic())
    clock.advance(5000)
    assert timer.on_timer(clock.monotonic()) == [Expire(last_refresh=0.0)]


def test_a_refresh_may_renegotiate_interval_and_refresher() -> None:
    clock = FakeClock()
    timer = SessionTimer(1800, local_refresher=True, now=clock.monotonic())
    clock.advance(900)
    assert timer.on_timer(clock.monotonic()) == [SendRefresh(1800, MIN_SE_FLOOR)]
    # The peer answers our refresh taking over the refreshing, with a shorter interval.
    answer = agreed(negotiate_uac(ok_with(("Session-Expires", "600;refresher=uas"))))
    timer.refreshed(clock.monotonic(), answer)
    assert (timer.interval, timer.local_refresher) == (600, False)
    assert timer.next_deadline() == 900 + 600 - 32


def test_stop_silences_the_timer() -> None:
    clock = FakeClock()
    timer = SessionTimer(90, local_refresher=False, now=clock.monotonic())
    timer.stop()
    clock.advance(1000)
    assert timer.next_deadline() is None
    assert timer.on_timer(clock.monotonic()) == []
    timer.refreshed(clock.monotonic())
    assert timer.state is TimerState.STOPPED
    with pytest.raises(ValueError, match="positive"):
        SessionTimer(0, local_refresher=True, now=0.0)


def _ack(request: Request) -> Request:
    lines = [
        "ACK sip:pbx@192.0.2.1 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-ack1;rport",
        "Max-Forwards: 70",
        "From: <sip:1001@acme.example.com>;tag=caller",
        "To: <sip:4008001000@pbx.example.com>;tag=callee",
        f"Call-ID: {request.call_id}",
        "CSeq: 1 ACK",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message
