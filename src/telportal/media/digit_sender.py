"""Sending DTMF on a leg: RFC 4733 events when the peer negotiated telephone-event,
DTMF tones in the audio otherwise.

The whole string is planned up front as steps of one frame (20 ms): for RFC 4733 the
start, update and end packets of each digit (updates every 40 ms so each lands on its
own tick; three end packets, per RFC 4733 2.5.1.4), for tones the encoded frames of
tone and gap. Steps are counted per tick actually run, not by frame number, so a
skipped tick delays the plan instead of losing its end packets. All packets of one
event carry the timestamp of the frame where the key went down.
"""

from telportal.media.audio import FRAME_MS, SAMPLE_RATE
from telportal.media.clips import EncodedClip
from telportal.media.errors import MediaStateError
from telportal.media.session import MediaSession
from telportal.rtp.dtmf import TelephoneEventSender, event_code
from telportal.rtp.tones import dtmf_tone, tone_pcm

# RFC 4733 updates every 40 ms: two frames, so each lands on a tick of its own.
EVENT_UPDATE_MS = 2 * FRAME_MS


class DigitSender:
    """The packets of a digit string, one step per scheduler tick."""

    def __init__(self, session: MediaSession, digits: str, duration_ms: int, gap_ms: int) -> None:
        for digit in digits:
            event_code(digit)  # raises on anything that is not a DTMF digit
        self.digits = digits
        law = session.law
        if law is None:
            raise MediaStateError("cannot send digits before a codec is negotiated")
        # step -> [(payload, marker, digit index, is_event)]
        self._plan: dict[int, list[tuple[bytes, bool, int, bool]]] = {}
        per_digit = duration_ms + gap_ms
        if session.event_payload_type is not None:
            sender = TelephoneEventSender(
                session.event_payload_type,
                session.ssrc,
                update_interval_ms=EVENT_UPDATE_MS,
            )
            for index, digit in enumerate(digits):
                for scheduled in sender.packets(digit, 0, 0, duration_ms):
                    step = (index * per_digit + scheduled.offset_ms) // FRAME_MS
                    packet = scheduled.packet
                    self._plan.setdefault(step, []).append(
                        (packet.payload, packet.marker, index, True)
                    )
        else:
            silence = bytes(2 * gap_ms * SAMPLE_RATE // 1000)
            pcm = b"".join(tone_pcm(dtmf_tone(d), duration_ms) + silence for d in digits)
            clip = EncodedClip.from_pcm(pcm)
            for step, frame in enumerate(clip.frames(law)):
                self._plan[step] = [(frame, False, 0, False)]
        self._steps = max(self._plan) + 1
        self._step = 0
        self._timestamps: dict[int, int] = {}

    def next(self) -> list[tuple[bytes, bool, int, bool]]:
        actions = self._plan.get(self._step, [])
        self._step += 1
        return actions

    @property
    def done(self) -> bool:
        return self._step >= self._steps

    def event_timestamp(self, index: int, session: MediaSession, frame: int, now: float) -> int:
        """All packets of one event carry the timestamp of the frame where it began."""
        timestamp = self._timestamps.get(index)
        if timestamp is None:
            timestamp, _ = session.sender.frame_timestamp(frame, now)
            self._timestamps[index] = timestamp
        return timestamp
