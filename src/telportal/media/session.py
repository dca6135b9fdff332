"""One leg's media state, without IO: datagrams and times in, packets and digits out.

A `MediaSession` is what an endpoint knows about its RTP peer: the negotiated codec and
payload types, where to send (symmetric latch), reception statistics per remote SSRC
(RFC 3550 A.1/A.8), RTCP reports both ways, and DTMF from every method merged into one
stream of presses. It never reads a clock or touches a socket: every call takes `now`
(monotonic seconds) and returns what to send.

Receive rules:
- a datagram that does not parse as RTP version 2 is dropped and counted invalid; one
  whose second byte is an RTCP packet type (RFC 5761 multiplexing) is handled as RTCP;
- before negotiation, and for payload types we did not negotiate (comfort noise, a codec
  we did not pick), packets are dropped and counted as unknown; they never latch;
- a valid packet goes through the symmetric latch (see latch.py); a packet from a
  foreign source is dropped and counted;
- a new remote SSRC starts fresh statistics and a fresh RFC 4733 receiver (the peer
  restarted its stream or a new peer took over after re-latching).

In-band detection costs a Goertzel pass per voiced frame, so `InbandDtmf.AUTO` runs it
only when the peer did not negotiate telephone-event; `ON` runs it always (for peers that
negotiate 4733 but only send tones), and both outputs then go through the de-duplicator.
"""

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from telportal.media.audio import SAMPLE_RATE, G711Law
from telportal.media.digits import DigitDeduplicator, DtmfMethod
from telportal.media.latch import Address, SymmetricLatch, Verdict
from telportal.media.sender import RtpSender
from telportal.rtp.dtmf import DigitStarted, DtmfEvent, TelephoneEventReceiver
from telportal.rtp.packet import RtpPacket, RtpParseError
from telportal.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    is_rtcp,
    ntp_from_unix,
    parse_rtcp,
    serialize_rtcp,
)
from telportal.rtp.stats import ReceiverStatistics
from telportal.rtp.tones import DtmfDetector
from telportal.sdp import NegotiatedAudio

_FIXED_HEADER = struct.Struct("!BBHII")
_PLAIN_VERSION_BYTE = 0x80  # V=2 with no padding, extension or CSRC: the common case
_MIN_RTP_SIZE = 12
DEFAULT_RTCP_INTERVAL = 5.0


class InbandDtmf(enum.StrEnum):
    AUTO = "auto"
    ON = "on"
    OFF = "off"


class PacketKind(enum.Enum):
    AUDIO = "audio"
    EVENT = "event"


class Digit(NamedTuple):
    digit: str
    method: DtmfMethod


class Inbound(NamedTuple):
    """A packet the session accepted; `digits` are new presses it completed."""

    kind: PacketKind
    payload: bytes
    ssrc: int
    timestamp: int
    marker: bool
    digits: tuple[Digit, ...]
    latched: bool


class Datagram(NamedTuple):
    data: bytes
    address: Address


@dataclass(frozen=True, slots=True)
class SessionOptions:
    symmetric: bool = True
    relatch_after: float = 1.0
    inband_dtmf: InbandDtmf = InbandDtmf.AUTO
    rtcp_interval: float = DEFAULT_RTCP_INTERVAL
    cname: str = "telportal"


@dataclass(frozen=True, slots=True)
class MediaStats:
    """What one leg saw; `lost` and `jitter_ms` are ours about the peer, `remote_*` are
    what the peer's RTCP said about us."""

    packets_sent: int
    octets_sent: int
    packets_received: int
    packets_lost: int
    fraction_lost: float
    jitter_ms: float
    remote_fraction_lost: float | None
    remote_packets_lost: int | None
    remote_jitter_ms: float | None
    dropped_foreign: int
    dropped_invalid: int
    dropped_unknown: int
    rtcp_sent: int
    rtcp_received: int
    latched: Address | None
    relatches: int

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self,
        packets_sent: int,
        octets_sent: int,
        packets_received: int,
        packets_lost: int,
        fraction_lost: float,
        jitter_ms: float,
        remote_fraction_lost: float | None,
        remote_packets_lost: int | None,
        remote_jitter_ms: float | None,
        dropped_foreign: int,
        dropped_invalid: int,
        dropped_unknown: int,
        rtcp_sent: int,
        rtcp_received: int,
        latched: Address | None,
        relatches: int,
    ) -> None:
        object.__setattr__(self, "packets_sent", packets_sent)
        object.__setattr__(self, "octets_sent", octets_sent)
        object.__setattr__(self, "packets_received", packets_received)
        object.__setattr__(self, "packets_lost", packets_lost)
        object.__setattr__(self, "fraction_lost", fraction_lost)
        object.__setattr__(self, "jitter_ms", jitter_ms)
        object.__setattr__(self, "remote_fraction_lost", remote_fraction_lost)
        object.__setattr__(self, "remote_packets_lost", remote_packets_lost)
        object.__setattr__(self, "remote_jitter_ms", remote_jitter_ms)
        object.__setattr__(self, "dropped_foreign", dropped_foreign)
        object.__setattr__(self, "dropped_invalid", dropped_invalid)
        object.__setattr__(self, "dropped_unknown", dropped_unknown)
        object.__setattr__(self, "rtcp_sent", rtcp_sent)
        object.__setattr__(self, "rtcp_received", rtcp_received)
        object.__setattr__(self, "latched", latched)
        object.__setattr__(self, "relatches", relatches)


class MediaSession:
    __slots__ = (
        "_detector",
        "_events",
        "_last_fraction",
        "_next_report",
        "_packets_at_last_report",
        "_remote_block",
        "_stats",
        "_wall_offset",
        "audio",
        "digits",
        "dropped_foreign",
        "dropped_invalid",
        "dropped_unknown",
        "event_payload_type",
        "last_received",
        "law",
        "negotiated_at",
        "options",
        "payload_type",
        "received",
        "receives",
        "rtcp_latch",
        "rtcp_received",
        "rtcp_sent",
        "rtp_latch",
        "send_target",
        "sender",
        "sends",
    )

    def __init__(
        self,
        *,
        ssrc: int,
        sequence: int,
        timestamp: int,
        options: SessionOptions,
        wall_offset: float = 0.0,
        first_report_at: float = 0.0,
    ) -> None:
        self.options = options
        self.sender = RtpSender(ssrc, sequence, timestamp)
        self.audio: NegotiatedAudio | None = None
        self.law: G711Law | None = None
        self.payload_type = -1
        self.event_payload_type: int | None = None
        self.sends = False
        self.receives = False
        # Where audio goes now, or None when it may not be sent (not negotiated, on hold,
        # port 0): kept up to date so the per-packet path reads one attribute.
        self.send_target: Address | None = None
        self.rtp_latch = SymmetricLatch(
            None, enabled=options.symmetric, relatch_after=options.relatch_after
        )
        self.rtcp_latch = SymmetricLatch(
            None, enabled=options.symmetric, relatch_after=options.relatch_after
        )
        # Monotonic + wall_offset = Unix time, for the NTP timestamp of sender reports.
        self._wall_offset = wall_offset
        self._stats: ReceiverStatistics | None = None
        self._events = TelephoneEventReceiver()
        self._detector: DtmfDetector | None = None
        self.digits = DigitDeduplicator()
        self.last_received: float | None = None
        self.negotiated_at: float | None = None
        self.received = 0
        self.dropped_foreign = 0
        self.dropped_invalid = 0
        self.dropped_unknown = 0
        self.rtcp_sent = 0
        self.rtcp_received = 0
        self._next_report = first_report_at
        self._packets_at_last_report = 0
        self._last_fraction = 0.0
        self._remote_block: ReportBlock | None = None

    @property
    def ssrc(self) -> int:
        return self.sender.ssrc

    def negotiate(self, audio: NegotiatedAudio, now: float) -> None:
        """Apply an offer/answer result; a new remote address forgets the latches."""
        previous = self.audio
        self.audio = audio
        self.law = G711Law.of(audio.codec)
        self.payload_type = audio.payload_type
        self.event_payload_type = audio.telephone_event_payload_type
        self.sends = audio.direction.sends
        self.receives = audio.direction.receives
        rtp = (audio.remote_address, audio.remote_port)
        rtcp = (audio.remote_address, audio.remote_rtcp_port)
        if previous is None or (previous.remote_address, previous.remote_port) != rtp:
            self.rtp_latch.reset(rtp)
            self.rtcp_latch.reset(rtcp)
        inband = self.options.inband_dtmf
        wanted = inband is InbandDtmf.ON or (
            inband is InbandDtmf.AUTO and self.event_payload_type is None
        )
        if wanted and self._detector is None:
            self._detector = DtmfDetector()
        elif not wanted:
            self._detector = None
        # The no-RTP timeout counts from here until the first packet arrives.
        self.negotiated_at = now
        self._retarget()

    def _retarget(self) -> None:
        self.send_target = self.target if self.sends else None

    @property
    def target(self) -> Address | None:
        if self.audio is None or self.audio.remote_port == 0:
            return None
        return self.rtp_latch.target

    @property
    def rtcp_target(self) -> Address | None:
        if self.audio is None or self.audio.remote_port == 0:
            return None
        if self.rtcp_latch.latched is None and self.rtp_latch.latched is not None:
            # Behind NAT the signalled RTCP port is as wrong as the RTP one was; the
            # mapping next to the latched RTP port is the best guess until RTCP arrives.
            host, port = self.rtp_latch.latched
            return host, port + 1
        return self.rtcp_latch.target

    # -- receiving -------------------------------------------------------------------

    def _header(
        self, data: bytes, source: Address, now: float
    ) -> tuple[int, int, int, int, bytes] | None:
        """(second byte, sequence, timestamp, SSRC, payload) of an RTP datagram, or None."""
        if len(data) < _MIN_RTP_SIZE:
            self.dropped_invalid += 1
            return None
        if is_rtcp(data):
            # RTCP multiplexed on the RTP port (RFC 5761): its packet types 200-204 sit
            # where an RTP second byte would be a marker bit plus payload type 72-76.
            self.receive_rtcp(data, source, now)
            return None
        if data[0] == _PLAIN_VERSION_BYTE:
            _, second, sequence, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
            return second, sequence, timestamp, ssrc, data[_MIN_RTP_SIZE:]
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError:
            self.dropped_invalid += 1
            return None
        second = packet.payload_type | (0x80 if packet.marker else 0)
        return second, packet.sequence_number, packet.timestamp, packet.ssrc, packet.payload

    def receive_rtp(self, data: bytes, source: Address, now: float) -> Inbound | None:
        """Account for one datagram from the RTP port; None when it is dropped."""
        header = self._header(data, source, now)
        if header is None:
            return None
        second, sequence, timestamp, ssrc, payload = header
        payload_type = second & 0x7F
        if payload_type == self.payload_type:
            kind = PacketKind.AUDIO
        elif payload_type == self.event_payload_type:
            kind = PacketKind.EVENT
        else:
            self.dropped_unknown += 1
            return None
        verdict = self.rtp_latch.accept(source, now)
        if verdict is Verdict.DROP:
            self.dropped_foreign += 1
            return None
        if verdict is Verdict.LATCHED:
            self._retarget()
        self.last_received = now
        self.received += 1
        stats = self._stats
        if stats is None or stats.ssrc != ssrc:
            stats = self._stats = ReceiverStatistics(ssrc, SAMPLE_RATE)
            self._events = TelephoneEventReceiver()
        restarts = stats.restarts
        stats.receive(sequence, timestamp, now)
        if stats.restarts != restarts:
            # A restarted stream numbers its events afresh: an event timestamp below the
            # last one is a new key, not a late packet of an old one.
            self._events = TelephoneEventReceiver()
        marker = bool(second & 0x80)
        digits: tuple[Digit, ...] = ()
        if kind is PacketKind.EVENT:
            try:
                events = self._events.receive(
                    RtpPacket(payload_type, sequence, timestamp, ssrc, payload, marker)
                )
            except RtpParseError:
                self.dropped_invalid += 1
                return None
            digits = self._merge(events, DtmfMethod.RFC4733, now)
        elif self._detector is not None and self.law is not None:
            pcm = self.law.decode(payload)
            digits = self._merge(self._detector.feed(pcm), DtmfMethod.INBAND, now)
        return Inbound(kind, payload, ssrc, timestamp, marker, digits, verdict is Verdict.LATCHED)

    def _merge(self, events: list[DtmfEvent], method: DtmfMethod, now: float) -> tuple[Digit, ...]:
        if not events:
            return ()
        digits: list[Digit] = []
        for event in events:
            if isinstance(event, DigitStarted):
                if self.digits.key_down(event.digit, method, now):
                    digits.append(Digit(event.digit, method))
            else:
                self.digits.key_up(method, now)
        return tuple(digits)

    def signaling_digit(self, digit: str, now: float) -> Digit | None:
        """A digit from SIP INFO; None when another method already reported the press."""
        if self.digits.press(digit, DtmfMethod.SIGNALING, now):
            return Digit(digit, DtmfMethod.SIGNALING)
        return None

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> bool:
        try:
            packets = parse_rtcp(data)
        except RtpParseError:
            self.dropped_invalid += 1
            return False
        if self.rtcp_latch.accept(source, now) is Verdict.DROP:
            self.dropped_foreign += 1
            return False
        self.rtcp_received += 1
        ours = self.sender.ssrc
        for packet in packets:
            if isinstance(packet, SenderReport):
                if self._stats is not None and packet.ssrc == self._stats.ssrc:
                    self._stats.receive_sender_report(packet.ntp_timestamp, now)
                self._remember(packet.reports, ours)
            elif isinstance(packet, ReceiverReport):
                self._remember(packet.reports, ours)
        return True

    def _remember(self, blocks: tuple[ReportBlock, ...], ours: int) -> None:
        for block in blocks:
            if block.ssrc == ours:
                self._remote_block = block

    # -- sending ---------------------------------------------------------------------

    def audio_packet(self, payload: bytes, frame: int, now: float) -> Datagram | None:
        """Scheduler-timed audio, already in this leg's law; None when we may not send."""
        target = self.send_target
        if target is None:
            return None
        return Datagram(self.sender.generated(payload, self.payload_type, frame, now), target)

    def event_packet(self, payload: bytes, marker: bool, timestamp: int) -> Datagram | None:
        target = self.target
        if not self.sends or target is None or self.event_payload_type is None:
            return None
        return Datagram(
            self.sender.event(payload, self.event_payload_type, marker, timestamp), target
        )

    def relay_packet(
        self, kind: PacketKind, payload: bytes, inbound: Inbound, now: float
    ) -> Datagram | None:
        """A packet another leg received, re-stamped for this leg (payload already in our law)."""
        target = self.send_target
        if target is None:
            return None
        if kind is PacketKind.AUDIO:
            payload_type = self.payload_type
        elif self.event_payload_type is not None:
            payload_type = self.event_payload_type
        else:
            return None
        data = self.sender.relayed(
            payload, payload_type, inbound.marker, inbound.ssrc, inbound.timestamp, now
        )
        return Datagram(data, target)

    def _report(self, now: float) -> list[RtcpPacket]:
        blocks: tuple[ReportBlock, ...] = ()
        stats = self._stats
        if stats is not None and stats.valid:
            block = stats.report_block(now)
            self._last_fraction = block.fraction_lost / 256
            blocks = (block,)
        sender = self.sender
        report: RtcpPacket
        if sender.packets > self._packets_at_last_report:
            report = SenderReport(
                ssrc=sender.ssrc,
                ntp_timestamp=ntp_from_unix(now + self._wall_offset),
                rtp_timestamp=sender.timestamp_at(now),
                packet_count=sender.packets & 0xFFFFFFFF,
                octet_count=sender.octets & 0xFFFFFFFF,
                reports=blocks,
            )
        else:
            report = ReceiverReport(sender.ssrc, blocks)
        self._packets_at_last_report = sender.packets
        # RFC 3550 6.1: every compound packet carries an SDES with the CNAME.
        sdes = SourceDescription((SdesChunk.with_cname(sender.ssrc, self.options.cname),))
        return [report, sdes]

    def rtcp_due(self, now: float) -> Datagram | None:
        """An SR (if we sent since the last report) or RR, once per `rtcp_interval`."""
        target = self.rtcp_target
        if target is None or now < self._next_report:
            return None
        self._next_report = now + self.options.rtcp_interval
        self.rtcp_sent += 1
        return Datagram(serialize_rtcp(self._report(now)), target)

    def bye(self, now: float) -> Datagram | None:
        """The last report and an RTCP BYE, for when the leg ends. None for a session
        that never sent RTP or RTCP: RFC 3550 6.3.7, such a participant MUST NOT send
        a BYE (a call the IVR answered and ended at once sends nothing at all)."""
        target = self.rtcp_target
        if target is None or (self.sender.packets == 0 and self.rtcp_sent == 0):
            return None
        self.rtcp_sent += 1
        packets = [*self._report(now), Bye((self.sender.ssrc,))]
        return Datagram(serialize_rtcp(packets), target)

    def stats(self) -> MediaStats:
        stats = self._stats
        remote = self._remote_block
        return MediaStats(
            packets_sent=self.sender.packets,
            octets_sent=self.sender.octets,
            packets_received=self.received,
            packets_lost=max(0, stats.lost) if stats is not None else 0,
            fraction_lost=self._last_fraction,
            jitter_ms=stats.jitter * 1000 / SAMPLE_RATE if stats is not None else 0.0,
            remote_fraction_lost=remote.fraction_lost / 256 if remote else None,
            remote_packets_lost=remote.cumulative_lost if remote else None,
            remote_jitter_ms=remote.jitter * 1000 / SAMPLE_RATE if remote else None,
            dropped_foreign=self.dropped_foreign,
            dropped_invalid=self.dropped_invalid,
            dropped_unknown=self.dropped_unknown,
            rtcp_sent=self.rtcp_sent,
            rtcp_received=self.rtcp_received,
            latched=self.rtp_latch.latched,
            relatches=self.rtp_latch.relatches,
        )
