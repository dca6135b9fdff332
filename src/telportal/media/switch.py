"""The engine's brain without IO: endpoints, and what connects them, fed packets and ticks.

`MediaSwitch` owns one `MediaSession` per endpoint and everything that produces or
consumes its audio: a player, outgoing digits, a recorder, a bridge to one other
endpoint, or a mixer. Sockets are injected as `Transmit` objects (an asyncio datagram
transport in production, a list in tests) and time is always an argument, so every
behaviour here runs on a FakeClock with no socket.

What a leg sends, by priority (the first that is active wins, the others are dropped for
as long as it lasts):
1. outgoing digits (`send_digits`): RFC 4733 events when the peer negotiated
   telephone-event, else DTMF tones in the audio;
2. a prompt (`play`): pre-encoded frames, one per tick; barge-in ends it on a key press;
3. the mixer's output for this leg, or the bridged leg's packets relayed on arrival
   (re-stamped with our SSRC/sequence/timestamps, transcoded when the laws differ).
Digits received on a bridged leg are passed through: as RFC 4733 when the other leg has
telephone-event, else played there as tones. In-band tones simply travel in the audio.

Cost model: a bridged leg is moved only by arriving packets; a leg subscribes to the
scheduler only while it plays or sends digits; an idle leg costs one comparison per
second in the housekeeping sweep (RTCP reports and the no-RTP timeout).
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from telportal.media.audio import FRAME_MS, G711Law
from telportal.media.clips import EncodedClip
from telportal.media.digit_sender import DigitSender
from telportal.media.errors import MediaStateError, UnknownEndpointError
from telportal.media.events import (
    DigitReceived,
    DigitsSent,
    EndpointClosed,
    EndpointTimedOut,
    MediaEvent,
    PlayFinished,
    RecordingStopped,
    SourceLatched,
)
from telportal.media.latch import Address
from telportal.media.mixer import Mixer, MixRole
from telportal.media.player import PlayEndReason, Player
from telportal.media.recorder import CallRecorder, RecordingSummary
from telportal.media.scheduler import (
    PHASE_HOUSEKEEPING,
    PHASE_MIX,
    PHASE_RECORD,
    PHASE_SEND,
    TickScheduler,
)
from telportal.media.session import (
    Digit,
    Inbound,
    MediaSession,
    MediaStats,
    PacketKind,
    SessionOptions,
)
from telportal.random_pool import POOL
from telportal.rtp.dtmf import event_code
from telportal.sdp import NegotiatedAudio

DEFAULT_RTP_TIMEOUT = 60.0
DEFAULT_DIGIT_MS = 100
DEFAULT_DIGIT_GAP_MS = 100
HOUSEKEEPING_INTERVAL = 1.0
_FRAMES_PER_SWEEP = round(HOUSEKEEPING_INTERVAL * 1000) // FRAME_MS


class Transmit(Protocol):
    """Where a leg's datagrams go; asyncio's DatagramTransport is one."""

    def sendto(self, data: bytes, addr: Address) -> None: ...


class _Endpoint:
    """One leg inside the switch; a scheduler client while it plays or sends digits."""

    __slots__ = (
        "call_id",
        "endpoint_id",
        "mixer",
        "outgoing_digits",
        "peer",
        "player",
        "recorder",
        "rtcp_out",
        "rtp_out",
        "session",
        "switch",
        "timed_out",
    )

    def __init__(
        self,
        switch: "MediaSwitch",
        endpoint_id: str,
        call_id: str,
        session: MediaSession,
        rtp_out: Transmit,
        rtcp_out: Transmit,
    ) -> None:
        self.switch = switch
        self.endpoint_id = endpoint_id
        self.call_id = call_id
        self.session = session
        self.rtp_out = rtp_out
        self.rtcp_out = rtcp_out
        self.player: Player | None = None
        self.outgoing_digits: DigitSender | None = None
        self.recorder: CallRecorder | None = None
        self.peer: _Endpoint | None = None
        self.mixer: _Conference | None = None
        self.timed_out = False

    def __repr__(self) -> str:
        return f"<endpoint {self.endpoint_id} of call {self.call_id}>"

    @property
    def overridden(self) -> bool:
        """Whether a prompt or digits take the place of bridged or mixed audio."""
        return self.player is not None or self.outgoing_digits is not None

    def send_audio(self, payload: bytes, frame: int, now: float) -> None:
        datagram = self.session.audio_packet(payload, frame, now)
        if datagram is None:
            return
        self.rtp_out.sendto(datagram.data, datagram.address)
        if self.recorder is not None and self.session.law is not None:
            self.recorder.other(self.session.law.decode(payload))

    def on_tick(self, frame: int, now: float) -> None:
        digits = self.outgoing_digits
        player = self.player
        if digits is not None:
            self._send_digits(digits, frame, now)
        elif player is not None:
            payload = player.next_frame()
            if payload is None:
                self.switch._finish_play(self)
            elif self.recorder is None:
                # The hot path of a prompt: no Datagram object, no recorder to feed.
                session = self.session
                target = session.send_target
                if target is not None:
                    data = session.sender.generated(payload, session.payload_type, frame, now)
                    self.rtp_out.sendto(data, target)
                return
            else:
                self.send_audio(payload, frame, now)
        if not self.overridden:
            self.switch.scheduler.unsubscribe(self)

    def _send_digits(self, digits: DigitSender, frame: int, now: float) -> None:
        session = self.session
        for payload, marker, index, is_event in digits.next():
            if is_event:
                timestamp = digits.event_timestamp(index, session, frame, now)
                datagram = session.event_packet(payload, marker, timestamp)
                if datagram is not None:
                    self.rtp_out.sendto(datagram.data, datagram.address)
            else:
                self.send_audio(payload, frame, now)
        if digits.done:
            self.outgoing_digits = None
            self.switch.emit(DigitsSent(self.endpoint_id, self.call_id, digits.digits))


class _Conference:
    """A mixer on the scheduler: each tick, one mixed frame to each member."""

    def __init__(self, switch: "MediaSwitch", mixer: Mixer) -> None:
        self.switch = switch
        self.mixer = mixer

    def __repr__(self) -> str:
        return f"<mix {self.mixer.mix_id}>"

    def on_tick(self, frame: int, now: float) -> None:
        endpoints = self.switch._endpoints
        for member, pcm in self.mixer.mix().items():
            endpoint = endpoints.get(member)
            if endpoint is None or endpoint.overridden:
                continue
            law = endpoint.session.law
            if law is not None:
                endpoint.send_audio(law.encode(pcm), frame, now)


class _Housekeeping:
    """Visits every endpoint once a second, a slice per frame: RTCP reports that are due
    and the no-RTP timeout. Slicing keeps a thousand endpoints from costing one long
    tick every second, which would make that second's next packets late."""

    def __init__(self, switch: "MediaSwitch") -> None:
        self.switch = switch
        self._pending: list[str] = []
        self._per_frame = 1

    def on_tick(self, frame: int, now: float) -> None:
        if not self._pending:
            self._pending = list(self.switch._endpoints)
            self._pending.reverse()  # popped from the end: oldest endpoints first
            self._per_frame = -(-len(self._pending) // _FRAMES_PER_SWEEP)
        batch = self._pending[-self._per_frame :]
        del self._pending[-self._per_frame :]
        self.switch.sweep(now, batch)


class MediaSwitch:
    def __init__(
        self,
        scheduler: TickScheduler,
        emit: Callable[[MediaEvent], None],
        *,
        options: SessionOptions | None = None,
        rtp_timeout: float = DEFAULT_RTP_TIMEOUT,
        wall_offset: float = 0.0,
    ) -> None:
        self.scheduler = scheduler
        self.emit = emit
        self.options = options or SessionOptions()
        self.rtp_timeout = rtp_timeout
        self.wall_offset = wall_offset
        self._endpoints: dict[str, _Endpoint] = {}
        self._conferences: dict[str, _Conference] = {}
        self._housekeeping = _Housekeeping(self)

    def __contains__(self, endpoint_id: object) -> bool:
        return endpoint_id in self._endpoints

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._endpoints))

    def __len__(self) -> int:
        return len(self._endpoints)

    def _get(self, endpoint_id: str) -> _Endpoint:
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is None:
            raise UnknownEndpointError(endpoint_id)
        return endpoint

    def session(self, endpoint_id: str) -> MediaSession:
        return self._get(endpoint_id).session

    def call_of(self, endpoint_id: str) -> str:
        return self._get(endpoint_id).call_id

    # -- lifecycle -------------------------------------------------------------------

    def add_endpoint(
        self, endpoint_id: str, call_id: str, rtp_out: Transmit, rtcp_out: Transmit, now: float
    ) -> MediaSession:
        if endpoint_id in self._endpoints:
            raise MediaStateError(f"endpoint {endpoint_id!r} exists already")
        interval = self.options.rtcp_interval
        session = MediaSession(
            ssrc=POOL.bits(32),
            sequence=POOL.bits(16),
            timestamp=POOL.bits(32),
            options=self.options,
            wall_offset=self.wall_offset,
            # Spread first reports over an interval, so a thousand calls set up together
            # do not report together forever after.
            first_report_at=now + interval * POOL.below(1000) / 1000,
        )
        self._endpoints[endpoint_id] = _Endpoint(
            self, endpoint_id, call_id, session, rtp_out, rtcp_out
        )
        self.scheduler.subscribe(self._housekeeping, PHASE_HOUSEKEEPING)
        return session

    def negotiate(self, endpoint_id: str, audio: NegotiatedAudio, now: float) -> None:
        endpoint = self._get(endpoint_id)
        endpoint.session.negotiate(audio, now)
        endpoint.timed_out = False
        if endpoint.player is not None and endpoint.session.law is not None:
            endpoint.player.set_law(endpoint.session.law)

    def remove_endpoint(self, endpoint_id: str, now: float) -> MediaStats:
        """Stop everything on the endpoint and forget it; the caller closes its sockets."""
        endpoint = self._get(endpoint_id)
        if endpoint.player is not None:
            self._finish_play(endpoint, PlayEndReason.CLOSED)
        endpoint.outgoing_digits = None
        if endpoint.recorder is not None:
            self.record_stop(endpoint_id)
        self.unbridge(endpoint_id)
        self.unmix(endpoint_id)
        self.scheduler.unsubscribe(endpoint)
        bye = endpoint.session.bye(now)
        if bye is not None:
            endpoint.rtcp_out.sendto(bye.data, bye.address)
        del self._endpoints[endpoint_id]
        if not self._endpoints:
            self.scheduler.unsubscribe(self._housekeeping)
        stats = endpoint.session.stats()
        self.emit(EndpointClosed(endpoint_id, endpoint.call_id, stats))
        return stats

    def stats(self, endpoint_id: str) -> MediaStats:
        return self._get(endpoint_id).session.stats()

    def sweep(self, now: float, endpoint_ids: Iterable[str] | None = None) -> None:
        """RTCP reports that are due, and the no-RTP timeout (all endpoints by default)."""
        for endpoint_id in list(self._endpoints) if endpoint_ids is None else endpoint_ids:
            endpoint = self._endpoints.get(endpoint_id)
            if endpoint is None:
                continue  # closed since the sweep began
            session = endpoint.session
            report = session.rtcp_due(now)
            if report is not None:
                endpoint.rtcp_out.sendto(report.data, report.address)
            if endpoint.timed_out or not session.receives or session.negotiated_at is None:
                continue
            silent = now - (session.last_received or session.negotiated_at)
            if silent >= self.rtp_timeout:
                endpoint.timed_out = True
                self.emit(EndpointTimedOut(endpoint.endpoint_id, endpoint.call_id, silent))

    # -- receiving -------------------------------------------------------------------

    def receive_rtp(self, endpoint_id: str, data: bytes, source: Address, now: float) -> None:
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is None:
            return  # a packet that was in flight when the endpoint closed
        inbound = endpoint.session.receive_rtp(data, source, now)
        if inbound is None:
            return
        endpoint.timed_out = False
        if inbound.latched:
            self.emit(SourceLatched(endpoint_id, endpoint.call_id, source))
        for digit in inbound.digits:
            self._digit(endpoint, digit)
        if inbound.kind is PacketKind.AUDIO:
            self._audio(endpoint, inbound, now)
        else:
            self._event(endpoint, inbound, now)

    def receive_rtcp(self, endpoint_id: str, data: bytes, source: Address, now: float) -> None:
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is not None:
            endpoint.session.receive_rtcp(data, source, now)

    def _audio(self, endpoint: _Endpoint, inbound: Inbound, now: float) -> None:
        law = endpoint.session.law
        if law is None:
            return
        if endpoint.recorder is not None or endpoint.mixer is not None:
            pcm = law.decode(inbound.payload)
            if endpoint.recorder is not None:
                endpoint.recorder.caller(pcm)
            if endpoint.mixer is not None:
                endpoint.mixer.mixer.push(endpoint.endpoint_id, pcm)
        peer = endpoint.peer
        if peer is None or peer.overridden:
            return
        peer_law = peer.session.law
        if peer_law is None:
            return
        payload = law.transcode(inbound.payload, peer_law)
        datagram = peer.session.relay_packet(PacketKind.AUDIO, payload, inbound, now)
        if datagram is not None:
            peer.rtp_out.sendto(datagram.data, datagram.address)
            if peer.recorder is not None:
                peer.recorder.other(peer_law.decode(payload))

    def _event(self, endpoint: _Endpoint, inbound: Inbound, now: float) -> None:
        peer = endpoint.peer
        if peer is None:
            return
        if peer.session.event_payload_type is None:
            # The other leg cannot take telephone-events: play it each new press as tones.
            for digit in inbound.digits:
                if peer.outgoing_digits is None and peer.session.law is not None:
                    self._start_digits(peer, digit.digit, DEFAULT_DIGIT_MS, DEFAULT_DIGIT_GAP_MS)
            return
        if peer.overridden:
            return
        datagram = peer.session.relay_packet(PacketKind.EVENT, inbound.payload, inbound, now)
        if datagram is not None:
            peer.rtp_out.sendto(datagram.data, datagram.address)

    def _digit(self, endpoint: _Endpoint, digit: Digit) -> None:
        self.emit(DigitReceived(endpoint.endpoint_id, endpoint.call_id, digit.digit, digit.method))
        if endpoint.player is not None and endpoint.player.digit():
            self._finish_play(endpoint, PlayEndReason.BARGED_IN)

    def digit_from_signaling(self, endpoint_id: str, digit: str, now: float) -> None:
        """A digit from SIP INFO, merged into the leg's one stream of presses."""
        event_code(digit)
        endpoint = self._get(endpoint_id)
        merged = endpoint.session.signaling_digit(digit.upper(), now)
        if merged is not None:
            self._digit(endpoint, merged)

    # -- playing and digits ----------------------------------------------------------

    def play(
        self,
        endpoint_id: str,
        play_id: str,
        clips: list[EncodedClip],
        *,
        loop: bool = False,
        barge_in: bool = True,
    ) -> None:
        """Start playing; a play already running ends with PlayEndReason.REPLACED."""
        endpoint = self._get(endpoint_id)
        law = endpoint.session.law
        if law is None:
            raise MediaStateError(f"endpoint {endpoint_id!r} has no codec negotiated yet")
        if endpoint.player is not None:
            self._finish_play(endpoint, PlayEndReason.REPLACED)
        player = Player(play_id, clips, law, loop=loop, barge_in=barge_in)
        endpoint.player = player
        if player.finished:
            self._finish_play(endpoint)
            return
        self.scheduler.subscribe(endpoint, PHASE_SEND)

    def stop_play(self, endpoint_id: str) -> bool:
        endpoint = self._get(endpoint_id)
        if endpoint.player is None:
            return False
        self._finish_play(endpoint, PlayEndReason.STOPPED)
        return True

    def playing(self, endpoint_id: str) -> str | None:
        player = self._get(endpoint_id).player
        return None if player is None else player.play_id

    def _finish_play(self, endpoint: _Endpoint, reason: PlayEndReason | None = None) -> None:
        player = endpoint.player
        if player is None:
            return
        if reason is not None:
            player.stop(reason)
        endpoint.player = None
        if not endpoint.overridden:
            self.scheduler.unsubscribe(endpoint)
        self.emit(
            PlayFinished(
                endpoint.endpoint_id,
                endpoint.call_id,
                player.play_id,
                player.reason or PlayEndReason.COMPLETED,
            )
        )

    def send_digits(
        self,
        endpoint_id: str,
        digits: str,
        duration_ms: int = DEFAULT_DIGIT_MS,
        gap_ms: int = DEFAULT_DIGIT_GAP_MS,
    ) -> None:
        """Send DTMF: RFC 4733 if negotiated, else tones. A prompt pauses meanwhile."""
        if not digits:
            raise ValueError("no digits to send")
        if duration_ms < FRAME_MS or gap_ms < 0:
            raise ValueError(f"digit duration {duration_ms} ms or gap {gap_ms} ms is too short")
        endpoint = self._get(endpoint_id)
        if endpoint.outgoing_digits is not None:
            raise MediaStateError(f"endpoint {endpoint_id!r} is already sending digits")
        self._start_digits(endpoint, digits.upper(), duration_ms, gap_ms)

    def _start_digits(self, endpoint: _Endpoint, digits: str, duration_ms: int, gap: int) -> None:
        endpoint.outgoing_digits = DigitSender(endpoint.session, digits, duration_ms, gap)
        self.scheduler.subscribe(endpoint, PHASE_SEND)

    # -- recording -------------------------------------------------------------------

    def record_start(self, endpoint_id: str, recorder: CallRecorder) -> None:
        endpoint = self._get(endpoint_id)
        if endpoint.recorder is not None:
            raise MediaStateError(f"endpoint {endpoint_id!r} is already recording")
        endpoint.recorder = recorder
        self.scheduler.subscribe(recorder, PHASE_RECORD)

    def _recorder(self, endpoint_id: str) -> CallRecorder:
        recorder = self._get(endpoint_id).recorder
        if recorder is None:
            raise MediaStateError(f"endpoint {endpoint_id!r} is not recording")
        return recorder

    def record_pause(self, endpoint_id: str) -> None:
        self._recorder(endpoint_id).pause()

    def record_resume(self, endpoint_id: str) -> None:
        self._recorder(endpoint_id).resume()

    def record_stop(self, endpoint_id: str) -> RecordingSummary:
        endpoint = self._get(endpoint_id)
        recorder = self._recorder(endpoint_id)
        endpoint.recorder = None
        self.scheduler.unsubscribe(recorder)
        summary = recorder.stop()
        self.emit(RecordingStopped(endpoint_id, endpoint.call_id, summary))
        return summary

    # -- bridging and mixing ---------------------------------------------------------

    def bridge(self, a: str, b: str) -> None:
        """Connect two legs; each leaves any bridge or mix it was in."""
        if a == b:
            raise MediaStateError(f"cannot bridge endpoint {a!r} to itself")
        first, second = self._get(a), self._get(b)
        for endpoint_id in (a, b):
            self.unbridge(endpoint_id)
            self.unmix(endpoint_id)
        first.peer, second.peer = second, first

    def unbridge(self, endpoint_id: str) -> None:
        endpoint = self._get(endpoint_id)
        peer = endpoint.peer
        if peer is not None:
            peer.peer = None
            endpoint.peer = None

    def bridged_to(self, endpoint_id: str) -> str | None:
        peer = self._get(endpoint_id).peer
        return None if peer is None else peer.endpoint_id

    def mix(
        self, mix_id: str, endpoint_id: str, role: MixRole, whisper_to: str | None = None
    ) -> None:
        """Put a leg in mix `mix_id` (made on first use) with a role, or change its role.
        The leg leaves any bridge or other mix it was in."""
        endpoint = self._get(endpoint_id)
        if whisper_to is not None:
            self._get(whisper_to)
        conference = self._conferences.get(mix_id)
        if endpoint.mixer is not None and endpoint.mixer is not conference:
            self.unmix(endpoint_id)
        self.unbridge(endpoint_id)
        if conference is None:
            conference = self._conferences[mix_id] = _Conference(self, Mixer(mix_id))
            self.scheduler.subscribe(conference, PHASE_MIX)
        conference.mixer.add(endpoint_id, role, whisper_to)
        endpoint.mixer = conference

    def unmix(self, endpoint_id: str) -> None:
        endpoint = self._get(endpoint_id)
        conference = endpoint.mixer
        if conference is None:
            return
        endpoint.mixer = None
        conference.mixer.remove(endpoint_id)
        if not len(conference.mixer):
            self.scheduler.unsubscribe(conference)
            del self._conferences[conference.mixer.mix_id]

    def mix_of(self, endpoint_id: str) -> str | None:
        conference = self._get(endpoint_id).mixer
        return None if conference is None else conference.mixer.mix_id

    def law_of(self, endpoint_id: str) -> G711Law | None:
        return self._get(endpoint_id).session.law
