"""DTMF as RTP telephone-events (RFC 4733): payload, receiver and sender.

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |     event     |E|R| volume    |          duration             |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

Receiver rules (one key press = one `DigitStarted` then one `DigitEnded`):
- every packet of one event carries the RTP timestamp of the event's start, so the
  timestamp, not the marker bit, identifies the event: a retransmitted start (marker set,
  same timestamp) and the three redundant end packets change nothing once seen;
- the first packet of a new timestamp starts a digit and reports it at once, so an IVR
  reacts on key down; the first end packet reports the duration;
- a new timestamp while a digit is still down ends that digit with the last duration
  heard (its end packets were lost), except when the same event continues in a new
  segment with no marker, as RFC 4733 does for long-duration events (longer than the
  16-bit duration field);
- a packet whose timestamp is older than the current event's is late and dropped;
- events other than the 16 DTMF digits (flash, fax tones) are ignored.

Sender: the start packet has the marker bit; updates follow every 50 ms, each carrying
the duration up to the next update, so no packet claims a zero duration (which some
receivers drop); then three identical end packets, 20 ms apart. All share one timestamp.
"""

import struct
from dataclasses import dataclass
from typing import final

from telportal.rtp.packet import RTP_SEQ_MOD, RTP_TIMESTAMP_MOD, RtpPacket, RtpParseError

DTMF_DIGITS = "0123456789*#ABCD"
TELEPHONE_EVENT_SIZE = 4
MAX_VOLUME = 63
MAX_DURATION = 0xFFFF
DEFAULT_VOLUME = 10
END_PACKET_COUNT = 3
UPDATE_INTERVAL_MS = 50
END_RETRANSMIT_INTERVAL_MS = 20

_PAYLOAD = struct.Struct("!BBH")
_END_BIT = 0x80
_RESERVED_BIT = 0x40
_VOLUME_MASK = 0x3F
_HALF_TIMESTAMP = RTP_TIMESTAMP_MOD // 2


def event_code(digit: str) -> int:
    """The RFC 4733 event code of a DTMF digit ('0'-'9', '*', '#', 'A'-'D')."""
    code = DTMF_DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit")
    return code


def event_digit(code: int) -> str | None:
    """The DTMF digit for an event code, or None for other events."""
    return DTMF_DIGITS[code] if 0 <= code < len(DTMF_DIGITS) else None


@final
@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload. `volume` is in -dBm0; `duration` in timestamp units."""

    event: int
    end: bool = False
    volume: int = DEFAULT_VOLUME
    duration: int = 0

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self, event: int, end: bool = False, volume: int = DEFAULT_VOLUME, duration: int = 0
    ) -> None:
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "volume", volume)
        object.__setattr__(self, "duration", duration)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 0xFF:
            raise ValueError(f"event {self.event} is out of range 0-255")
        if not 0 <= self.volume <= MAX_VOLUME:
            raise ValueError(f"volume {self.volume} is out of range 0-63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"duration {self.duration} is out of range 0-65535")

    @classmethod
    def parse(cls, payload: bytes) -> "TelephoneEvent":
        if len(payload) != TELEPHONE_EVENT_SIZE:
            raise RtpParseError(
                f"telephone-event payload is {len(payload)} bytes, expected 4 "
                "(packed multiple events are not supported)"
            )
        event, flags, duration = _PAYLOAD.unpack(payload)
        # The R bit is reserved: senders set it to zero and receivers ignore it.
        return TelephoneEvent(event, bool(flags & _END_BIT), flags & _VOLUME_MASK, duration)

    def serialize(self) -> bytes:
        flags = (_END_BIT if self.end else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)


@dataclass(frozen=True, slots=True)
class DigitStarted:
    """A key went down. `timestamp` is where it started, in the stream's clock units."""

    digit: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class DigitEnded:
    """A key went up after `duration` clock units."""

    digit: str
    timestamp: int
    duration: int


DtmfEvent = DigitStarted | DigitEnded


class TelephoneEventReceiver:
    """Turns the telephone-event packets of one stream into digit events (rules at the top)."""

    def __init__(self) -> None:
        self._segment_timestamp: int | None = None
        self._start_timestamp = 0
        self._digit = ""
        self._ended = True
        self._duration = 0
        # Clock units between the event's start and the current segment's timestamp.
        self._segment_offset = 0

    def receive(self, packet: RtpPacket) -> list[DtmfEvent]:
        event = TelephoneEvent.parse(packet.payload)
        digit = event_digit(event.event)
        if digit is None:
            return []
        timestamp = packet.timestamp
        if self._segment_timestamp is not None:
            age = (self._segment_timestamp - timestamp) % RTP_TIMESTAMP_MOD
            if age == 0:
                return self._update(event)
            if age < _HALF_TIMESTAMP:
                return []
        events: list[DtmfEvent] = []
        if not self._ended:
            if self._continues(digit, timestamp, packet.marker):
                self._segment_timestamp = timestamp
                self._segment_offset = (timestamp - self._start_timestamp) % RTP_TIMESTAMP_MOD
                return self._update(event)
            events.append(self._end())
        self._segment_timestamp = self._start_timestamp = timestamp
        self._segment_offset = 0
        self._digit = digit
        self._ended = False
        self._duration = event.duration
        events.append(DigitStarted(digit, timestamp))
        if event.end:
            events.append(self._end())
        return events

    def flush(self) -> list[DtmfEvent]:
        """End a digit whose end packets never came; call it when the stream stops."""
        return [] if self._ended else [self._end()]

    def _continues(self, digit: str, timestamp: int, marker: bool) -> bool:
        if marker or digit != self._digit or self._segment_timestamp is None:
            return False
        gap = (timestamp - self._segment_timestamp) % RTP_TIMESTAMP_MOD
        return 0 < gap <= self._duration - self._segment_offset

    def _update(self, event: TelephoneEvent) -> list[DtmfEvent]:
        if self._ended:
            return []
        self._duration = max(self._duration, self._segment_offset + event.duration)
        return [self._end()] if event.end else []

    def _end(self) -> DigitEnded:
        self._ended = True
        return DigitEnded(self._digit, self._start_timestamp, self._duration)


@dataclass(frozen=True, slots=True)
class ScheduledPacket:
    """A packet to send `offset_ms` after the key press began."""

    offset_ms: int
    packet: RtpPacket


class TelephoneEventSender:
    """Plans the packets for one key press; the caller sends each at its offset."""

    def __init__(
        self,
        payload_type: int,
        ssrc: int,
        *,
        clock_rate: int = 8000,
        volume: int = DEFAULT_VOLUME,
        update_interval_ms: int = UPDATE_INTERVAL_MS,
    ) -> None:
        if update_interval_ms <= 0:
            raise ValueError(f"update interval {update_interval_ms} ms must be positive")
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.volume = volume
        self.update_interval_ms = update_interval_ms

    def packets(
        self, digit: str, timestamp: int, first_sequence: int, duration_ms: int = 100
    ) -> list[ScheduledPacket]:
        """The start, update and end packets, numbered from `first_sequence`."""
        code = event_code(digit)
        if duration_ms <= 0:
            raise ValueError(f"duration {duration_ms} ms must be positive")
        total = duration_ms * self.clock_rate // 1000
        if total > MAX_DURATION:
            raise ValueError(
                f"duration {duration_ms} ms exceeds the {MAX_DURATION} units "
                "one telephone-event can carry"
            )
        plan: list[tuple[int, TelephoneEvent]] = []
        for offset_ms in range(0, duration_ms, self.update_interval_ms):
            covered_ms = min(offset_ms + self.update_interval_ms, duration_ms)
            units = covered_ms * self.clock_rate // 1000
            plan.append((offset_ms, TelephoneEvent(code, False, self.volume, units)))
        end = TelephoneEvent(code, True, self.volume, total)
        plan.extend(
            (duration_ms + index * END_RETRANSMIT_INTERVAL_MS, end)
            for index in range(END_PACKET_COUNT)
        )
        return [
            ScheduledPacket(
                offset_ms,
                RtpPacket(
                    payload_type=self.payload_type,
                    sequence_number=(first_sequence + index) % RTP_SEQ_MOD,
                    timestamp=timestamp,
                    ssrc=self.ssrc,
                    payload=event.serialize(),
                    marker=index == 0,
                ),
            )
            for index, (offset_ms, event) in enumerate(plan)
        ]
