"""One stream of key presses per call, whichever methods carry the digits."""

from telportal.media.audio import FRAME_SAMPLES, G711Law
from telportal.media.digits import DUPLICATE_WINDOW, DigitDeduplicator, DtmfMethod
from telportal.media.session import Digit, InbandDtmf, MediaSession, SessionOptions
from telportal.rtp.dtmf import TelephoneEventSender
from telportal.rtp.tones import dtmf_tone, tone_pcm
from tests.unit.media.support import frames_of, negotiated, rtp

RFC4733 = DtmfMethod.RFC4733
INBAND = DtmfMethod.INBAND
SIGNALING = DtmfMethod.SIGNALING
PEER = ("192.0.2.10", 4000)


def test_same_press_by_two_methods_is_one() -> None:
    dedupe = DigitDeduplicator()
    assert dedupe.key_down("5", RFC4733, 0.00) is True
    assert dedupe.key_down("5", INBAND, 0.04) is False  # tones detected 40 ms later
    dedupe.key_up(RFC4733, 0.10)
    dedupe.key_up(INBAND, 0.14)


def test_each_method_keeps_its_own_presses() -> None:
    dedupe = DigitDeduplicator()
    assert dedupe.key_down("1", RFC4733, 0.0) is True
    dedupe.key_up(RFC4733, 0.1)
    assert dedupe.key_down("1", RFC4733, 0.2) is True


def test_fast_double_press_by_two_methods_stays_two() -> None:
    dedupe = DigitDeduplicator()
    new = []
    for down, up in [(0.0, 0.08), (0.16, 0.24)]:
        new.append(dedupe.key_down("1", RFC4733, down))
        new.append(dedupe.key_down("1", INBAND, down + 0.04))
        dedupe.key_up(RFC4733, up)
        dedupe.key_up(INBAND, up + 0.04)
    assert new == [True, False, True, False]


def test_inband_first_then_rfc4733() -> None:
    dedupe = DigitDeduplicator()
    assert dedupe.key_down("7", INBAND, 1.00) is True
    assert dedupe.key_down("7", RFC4733, 1.01) is False


def test_signaling_duplicate_within_the_window_only() -> None:
    dedupe = DigitDeduplicator()
    assert dedupe.key_down("9", RFC4733, 0.0) is True
    dedupe.key_up(RFC4733, 0.1)
    assert dedupe.press("9", SIGNALING, 0.1 + DUPLICATE_WINDOW - 0.01) is False
    assert dedupe.press("9", SIGNALING, 2.0) is True


def test_different_digits_are_never_merged() -> None:
    dedupe = DigitDeduplicator()
    assert dedupe.key_down("1", RFC4733, 0.0) is True
    assert dedupe.key_down("2", INBAND, 0.02) is True


def test_a_press_absorbs_one_press_per_other_method() -> None:
    dedupe = DigitDeduplicator()
    assert dedupe.key_down("3", RFC4733, 0.0) is True
    assert dedupe.press("3", SIGNALING, 0.05) is False
    assert dedupe.key_down("3", INBAND, 0.06) is False
    # A second INFO press: the RFC 4733 press has already absorbed one from signaling.
    assert dedupe.press("3", SIGNALING, 0.07) is True


def session_with_both_methods() -> MediaSession:
    session = MediaSession(
        ssrc=1, sequence=0, timestamp=0, options=SessionOptions(inband_dtmf=InbandDtmf.ON)
    )
    session.negotiate(negotiated(PEER[1]), 0.0)
    return session


def feed_press(
    session: MediaSession,
    digit: str,
    start: float,
    first_sequence: int,
    timestamp: int,
    *,
    with_events: bool = True,
) -> list[Digit]:
    """A phone that sends RFC 4733 events AND leaves the tones in its audio."""
    audio = frames_of(tone_pcm(dtmf_tone(digit), 100) + bytes(2 * 8 * 200))
    events = {
        scheduled.offset_ms // 20: scheduled.packet
        for scheduled in TelephoneEventSender(101, 0x1234).packets(digit, timestamp, 0, 100)
    }
    digits: list[Digit] = []
    sequence = first_sequence
    for index, frame in enumerate(audio):
        now = start + index * 0.02
        packet = rtp(G711Law.PCMU.encode(frame), sequence, timestamp + index * FRAME_SAMPLES)
        sequence += 1
        inbound = session.receive_rtp(packet, PEER, now)
        assert inbound is not None
        digits.extend(inbound.digits)
        event = events.get(index)
        if event is not None and with_events:
            data = rtp(
                event.payload, sequence, event.timestamp, payload_type=101, marker=event.marker
            )
            sequence += 1
            inbound = session.receive_rtp(data, PEER, now + 0.001)
            assert inbound is not None
            digits.extend(inbound.digits)
    return digits


def test_session_reports_one_digit_for_4733_plus_inband() -> None:
    session = session_with_both_methods()
    digits = feed_press(session, "5", 0.0, 100, 16000)
    assert digits == [Digit("5", RFC4733)]
    # SIP INFO for the same press, just after: still the same press.
    assert session.signaling_digit("5", 0.35) is None
    # Next press, same digit: reported again, once.
    digits = feed_press(session, "5", 1.0, 200, 24000)
    assert digits == [Digit("5", RFC4733)]
    assert session.signaling_digit("8", 3.0) == Digit("8", SIGNALING)
    # The same audio without the events: the tones alone are detected, so above the
    # in-band detection did fire and was merged.
    digits = feed_press(session, "5", 4.0, 300, 40000, with_events=False)
    assert digits == [Digit("5", INBAND)]


def test_inband_only_peer_is_detected_in_auto_mode() -> None:
    session = MediaSession(ssrc=1, sequence=0, timestamp=0, options=SessionOptions())
    session.negotiate(negotiated(PEER[1], events=None), 0.0)
    found: list[Digit] = []
    pcm = tone_pcm(dtmf_tone("#"), 100) + bytes(2 * 8 * 200)
    for index, frame in enumerate(frames_of(pcm)):
        packet = rtp(G711Law.PCMU.encode(frame), index, index * FRAME_SAMPLES)
        inbound = session.receive_rtp(packet, PEER, index * 0.02)
        assert inbound is not None
        found.extend(inbound.digits)
    assert found == [Digit("#", INBAND)]
