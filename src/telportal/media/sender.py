"""The header side of one outgoing RTP stream: our SSRC, sequence and timestamps.

Whatever feeds a leg (a prompt, a mixer, the other leg of a bridge, digits), the peer must
see one stream: one SSRC, sequence numbers without gaps, timestamps that advance with
real time. Media comes in "segments" that each bring their own timing:
- generated audio is timed by the scheduler's frame number: timestamp = offset +
  frame * 160, so a skipped tick shows as a timestamp gap, never as a sped-up stream;
- relayed audio keeps the source's timestamp spacing: timestamp = source timestamp +
  offset, which also carries RFC 4733 events across unchanged in duration.
When the segment changes (a prompt starts during a bridge, the far leg's SSRC changes),
the new offset is chosen so the stream resumes at the last timestamp plus the wall time
elapsed, rounded to whole frames and at least one frame, and the marker bit is set: a
talkspurt begins (RFC 3551 4.1), so the peer's jitter buffer re-syncs instead of
stretching.
"""

import struct

from telportal.media.audio import FRAME_SAMPLES, SAMPLE_RATE
from telportal.media.scheduler import FRAME_SECONDS
from telportal.rtp.packet import RTP_SEQ_MOD, RTP_TIMESTAMP_MOD

_HEADER = struct.Struct("!BBHII")
_VERSION_BYTE = 0x80  # V=2, no padding, no extension, no CSRC
_MARKER = 0x80
_TIMESTAMP_MASK = RTP_TIMESTAMP_MOD - 1
_FRAMES = object()  # the segment key of scheduler-timed audio


class RtpSender:
    __slots__ = (
        "_last_time",
        "_last_timestamp",
        "_offset",
        "_segment",
        "_sequence",
        "octets",
        "packets",
        "ssrc",
    )

    def __init__(self, ssrc: int, sequence: int, timestamp: int) -> None:
        self.ssrc = ssrc
        self._sequence = sequence % RTP_SEQ_MOD
        self._offset = 0
        self._segment: object = None
        self._last_timestamp = timestamp & _TIMESTAMP_MASK
        self._last_time: float | None = None
        self.packets = 0
        self.octets = 0

    def _resume(self, now: float) -> int:
        """Where a new segment starts: after the last packet by the wall time elapsed."""
        if self._last_time is None:
            return self._last_timestamp
        frames = max(1, round((now - self._last_time) / FRAME_SECONDS))
        return (self._last_timestamp + frames * FRAME_SAMPLES) & _TIMESTAMP_MASK

    def _pack(self, payload_type: int, marker: bool, timestamp: int, payload: bytes) -> bytes:
        sequence = self._sequence
        self._sequence = (sequence + 1) % RTP_SEQ_MOD
        self.packets += 1
        self.octets += len(payload)
        return (
            _HEADER.pack(
                _VERSION_BYTE,
                payload_type | _MARKER if marker else payload_type,
                sequence,
                timestamp,
                self.ssrc,
            )
            + payload
        )

    def frame_timestamp(self, frame: int, now: float) -> tuple[int, bool]:
        """(timestamp of scheduler frame `frame`, whether it starts a new segment)."""
        new = self._segment is not _FRAMES
        if new:
            self._offset = (self._resume(now) - frame * FRAME_SAMPLES) & _TIMESTAMP_MASK
            self._segment = _FRAMES
        timestamp = (self._offset + frame * FRAME_SAMPLES) & _TIMESTAMP_MASK
        self._last_timestamp = timestamp
        self._last_time = now
        return timestamp, new

    def generated(self, payload: bytes, payload_type: int, frame: int, now: float) -> bytes:
        """A packet of scheduler-timed audio for frame `frame`."""
        if self._segment is not _FRAMES:
            timestamp, _ = self.frame_timestamp(frame, now)
            return self._pack(payload_type, True, timestamp, payload)
        # The hot path of every playing stream, 50 times a second: kept to plain
        # arithmetic and one struct call.
        timestamp = (self._offset + frame * FRAME_SAMPLES) & _TIMESTAMP_MASK
        self._last_timestamp = timestamp
        self._last_time = now
        sequence = self._sequence
        self._sequence = (sequence + 1) & 0xFFFF
        self.packets += 1
        self.octets += len(payload)
        return _HEADER.pack(_VERSION_BYTE, payload_type, sequence, timestamp, self.ssrc) + payload

    def event(self, payload: bytes, payload_type: int, marker: bool, timestamp: int) -> bytes:
        """A telephone-event packet at a timestamp from `frame_timestamp` (RFC 4733 keeps
        the event's start timestamp on all its packets)."""
        return self._pack(payload_type, marker, timestamp, payload)

    def relayed(
        self,
        payload: bytes,
        payload_type: int,
        marker: bool,
        source_ssrc: int,
        source_timestamp: int,
        now: float,
    ) -> bytes:
        """A packet from another leg, re-stamped into this stream."""
        if self._segment != source_ssrc:
            self._offset = (self._resume(now) - source_timestamp) & _TIMESTAMP_MASK
            self._segment = source_ssrc
            marker = True
        timestamp = (source_timestamp + self._offset) & _TIMESTAMP_MASK
        self._last_timestamp = timestamp
        self._last_time = now
        return self._pack(payload_type, marker, timestamp, payload)

    def timestamp_at(self, now: float) -> int:
        """The RTP timestamp that corresponds to `now`, for a sender report."""
        if self._last_time is None:
            return self._last_timestamp
        elapsed = round((now - self._last_time) * SAMPLE_RATE)
        return (self._last_timestamp + elapsed) & _TIMESTAMP_MASK
