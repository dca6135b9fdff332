"""The media engine seam (`MediaEngine`) and its embedded, in-process implementation.

The call layer talks to media only through `MediaEngine`, so an engine that drives
rtpengine over its ng control protocol can replace the embedded one for large sites.
Its methods are coroutines for that reason: for a remote engine each one is a request.
The embedded engine answers most of them without awaiting anything.

`EmbeddedMediaEngine` is thin: it binds sockets, turns datagrams and timer ticks into
calls on the pure `MediaSwitch`, runs file loading and speech synthesis in worker
threads, and fans events out to subscribers. An endpoint's port pair goes back to the
`PairPool` on `close(endpoint)` or `close_call`, also when creating the endpoint fails
half way; the pool keeps it open for a later call or closes it, and `aclose()` closes
every socket.

SDP: `create_endpoint(call_id, offer)` answers an offer; `create_endpoint(call_id)`
makes an offer, completed later by `accept_answer`. Re-INVITEs: `answer_offer` when the
peer offers, `create_offer` when we do (hold: direction=SENDONLY).
"""

import asyncio
import functools
import logging
import resource
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from telportal.clock import Clock, SystemClock
from telportal.media.clips import ClipCache, EncodedClip
from telportal.media.config import MediaConfig
from telportal.media.errors import MediaStateError, UnknownEndpointError
from telportal.media.events import MediaEvent
from telportal.media.latch import Address
from telportal.media.mixer import MixRole
from telportal.media.playlist import PlayFile, PlayItem, Playlist, PlaySpeech, PlayTone
from telportal.media.ports import PairPool, PortAllocator, PortPair, SocketTransmit
from telportal.media.realtime import AsyncioTicker
from telportal.media.recorder import CallRecorder, PauseMode, RecordingLayout, RecordingSummary
from telportal.media.scheduler import FRAME_SECONDS, SchedulerStats, TickScheduler
from telportal.media.session import MediaStats, SessionOptions
from telportal.media.switch import DEFAULT_DIGIT_GAP_MS, DEFAULT_DIGIT_MS, MediaSwitch, Transmit
from telportal.media.tts import SpeechPrompts
from telportal.media.wav import IncrementalWavWriter
from telportal.random_pool import POOL
from telportal.sdp import (
    Direction,
    LocalMedia,
    SessionDescription,
    accept_answer,
    answer_offer,
    create_offer,
)

logger = logging.getLogger(__name__)

REALTIME_EARLY = 0.001


def _open_files_limit() -> int:
    """The soft limit on open files: idle port pairs take at most a quarter of it, so
    that a process left at a common default (1,024) keeps its files for calls."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """A new endpoint: its id for every later call, and our SDP (answer or offer)."""

    endpoint_id: str
    call_id: str
    sdp: SessionDescription
    rtp_port: int
    rtcp_port: int


class EventSubscription:
    """Events from the moment of subscribing, as an async iterator; close it when done.

    A subscription is to every endpoint's events or to one endpoint's
    (`endpoint_id`). The engine offers an event to the subscriptions to everything and
    to those of the event's endpoint only, and `put` drops another endpoint's events
    all the same. Offered every event, one subscription per IVR call, each call's task
    woke for every other call's events, a cost growing with the square of the calls in
    progress (docs/benchmarks.md).
    """

    def __init__(
        self, unsubscribe: Callable[["EventSubscription"], None], endpoint_id: str | None = None
    ) -> None:
        self._queue: asyncio.Queue[MediaEvent | None] = asyncio.Queue()
        self._unsubscribe = unsubscribe
        self._closed = False
        self.endpoint_id = endpoint_id

    def put(self, event: MediaEvent) -> None:
        if self._closed:
            return
        if self.endpoint_id is not None and event.endpoint_id != self.endpoint_id:
            return
        self._queue.put_nowait(event)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._unsubscribe(self)
            self._queue.put_nowait(None)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> MediaEvent:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class MediaEngine(Protocol):
    """What the call layer may ask of media; see the module docstring for the SDP flow."""

    async def create_endpoint(
        self, call_id: str, remote_sdp: SessionDescription | None = None
    ) -> EndpointInfo: ...

    async def accept_answer(self, endpoint_id: str, answer: SessionDescription) -> None: ...

    async def answer_offer(
        self, endpoint_id: str, offer: SessionDescription
    ) -> SessionDescription: ...

    async def create_offer(
        self, endpoint_id: str, direction: Direction = Direction.SENDRECV
    ) -> SessionDescription: ...

    async def play(self, endpoint_id: str, playlist: Playlist, *, barge_in: bool = True) -> str: ...

    async def stop_play(self, endpoint_id: str) -> bool: ...

    async def send_digits(
        self,
        endpoint_id: str,
        digits: str,
        *,
        duration_ms: int = DEFAULT_DIGIT_MS,
        gap_ms: int = DEFAULT_DIGIT_GAP_MS,
    ) -> None: ...

    async def digit_from_signaling(self, endpoint_id: str, digit: str) -> None: ...

    async def record_start(
        self,
        endpoint_id: str,
        path: Path,
        *,
        layout: RecordingLayout = RecordingLayout.STEREO,
        pause_mode: PauseMode = PauseMode.SILENCE,
    ) -> None: ...

    async def record_pause(self, endpoint_id: str) -> None: ...

    async def record_resume(self, endpoint_id: str) -> None: ...

    async def record_stop(self, endpoint_id: str) -> RecordingSummary: ...

    async def bridge(self, a: str, b: str) -> None: ...

    async def unbridge(self, endpoint_id: str) -> None: ...

    async def mix(
        self, mix_id: str, endpoint_id: str, role: MixRole, *, whisper_to: str | None = None
    ) -> None: ...

    async def unmix(self, endpoint_id: str) -> None: ...

    async def stats(self, endpoint_id: str) -> MediaStats: ...

    async def close(self, endpoint_id: str) -> MediaStats: ...

    async def close_call(self, call_id: str) -> None: ...

    def events(self, endpoint_id: str | None = None) -> EventSubscription: ...

    def listen(
        self, endpoint_id: str, listener: Callable[[MediaEvent], None]
    ) -> Callable[[], None]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Sockets:
    pair: PortPair
    local: LocalMedia
    session_id: int
    version: int = 0
    pending_offer: SessionDescription | None = None


class EmbeddedMediaEngine:
    """The in-process engine. Use `async with EmbeddedMediaEngine(config) as engine:`."""

    def __init__(
        self,
        config: MediaConfig,
        *,
        clock: Clock | None = None,
        wrap_transmit: Callable[[str, Transmit], Transmit] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        # Instrumentation seam: every endpoint's RTP output goes through this wrapper
        # (benchmarks time each packet with it; production leaves it unset).
        self._wrap_transmit = wrap_transmit
        self.ports = PortAllocator(config.bind_address, config.port_min, config.port_max)
        self.pairs = PairPool(
            self.ports,
            self.clock,
            keep=min(config.idle_port_pairs, _open_files_limit() // 8),
            reuse_after=config.port_reuse_after,
        )
        self.clips = ClipCache(config.cache_dir, config.memory_budget)
        self._temporary_speech_dir: Path | None = None
        self._speech: SpeechPrompts | None = None
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="telportal-media")
        self._sockets: dict[str, _Sockets] = {}
        # Subscriptions to every endpoint's events, and to one endpoint's: an event
        # is offered to its own endpoint's subscribers only, so its cost does not grow
        # with the calls in progress (one subscription per IVR call).
        self._everything: list[EventSubscription] = []
        self._by_endpoint: dict[str, list[EventSubscription]] = {}
        self._listeners: list[Callable[[MediaEvent], None]] = []
        self._endpoint_listeners: dict[str, list[Callable[[MediaEvent], None]]] = {}
        self._ticker: AsyncioTicker | None = None
        self._switch: MediaSwitch | None = None
        self._scheduler: TickScheduler | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Attach to the running event loop; called by `async with` and on first use."""
        if self._switch is not None:
            return
        if self._closed:
            raise MediaStateError("the media engine is closed")
        loop = asyncio.get_running_loop()
        now = self.clock.monotonic()
        slots = self.config.scheduler_slots
        scheduler = TickScheduler(
            now,
            slots=slots,
            max_late_frames=self.config.max_late_frames,
            # Timers wake with millisecond granularity: let a tick run up to one early.
            early=min(REALTIME_EARLY, FRAME_SECONDS / slots / 2),
        )
        options = SessionOptions(
            symmetric=self.config.symmetric_rtp,
            relatch_after=self.config.relatch_after,
            inband_dtmf=self.config.inband_dtmf,
            rtcp_interval=self.config.rtcp_interval,
        )
        self._switch = MediaSwitch(
            scheduler,
            self._emit,
            options=options,
            rtp_timeout=self.config.rtp_timeout,
            wall_offset=self.clock.now().timestamp() - now,
        )
        self._scheduler = scheduler
        self._ticker = AsyncioTicker(scheduler, self.clock, loop)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every endpoint (events are still delivered), then the workers."""
        if self._closed:
            return
        self._closed = True
        for endpoint_id in list(self._sockets):
            await self.close(endpoint_id)
        await self.pairs.aclose()
        if self._ticker is not None:
            self._ticker.close()
        await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._executor.shutdown, wait=True)
        )
        for subscription in self._all_subscriptions():
            subscription.close()
        if self._temporary_speech_dir is not None:
            shutil.rmtree(self._temporary_speech_dir, ignore_errors=True)

    @property
    def switch(self) -> MediaSwitch:
        self.start()
        assert self._switch is not None
        return self._switch

    @property
    def scheduler_stats(self) -> SchedulerStats:
        self.start()
        assert self._scheduler is not None
        return self._scheduler.stats

    # -- events ----------------------------------------------------------------------

    def _emit(self, event: MediaEvent) -> None:
        for subscription in self._everything:
            subscription.put(event)
        subscribers = self._by_endpoint.get(event.endpoint_id)
        if subscribers is not None:
            for subscription in subscribers:
                subscription.put(event)
        own = self._endpoint_listeners.get(event.endpoint_id)
        # Copied: a listener may stop itself (or another) while it runs.
        for listener in list(self._listeners) if own is None else [*own, *self._listeners]:
            try:
                listener(event)
            except Exception:
                # Events are emitted from inside packet and tick handling: a failing
                # listener must not take a call's media down with it.
                logger.exception("media event listener %r failed on %r", listener, event)

    def events(self, endpoint_id: str | None = None) -> EventSubscription:
        """Events from now on: all of them, or those of `endpoint_id`."""
        subscription = EventSubscription(self._unsubscribe, endpoint_id)
        if endpoint_id is None:
            self._everything.append(subscription)
        else:
            self._by_endpoint.setdefault(endpoint_id, []).append(subscription)
        return subscription

    def _unsubscribe(self, subscription: EventSubscription) -> None:
        endpoint_id = subscription.endpoint_id
        if endpoint_id is None:
            self._everything.remove(subscription)
            return
        subscribers = self._by_endpoint[endpoint_id]
        subscribers.remove(subscription)
        if not subscribers:
            del self._by_endpoint[endpoint_id]

    def listen(
        self, endpoint_id: str, listener: Callable[[MediaEvent], None]
    ) -> Callable[[], None]:
        """Call `listener` synchronously for each event of `endpoint_id` from now on;
        returns the function that stops it. What an IVR call uses: no queue and no task
        of its own between an event and its handling (a task per call, woken per event,
        cost more than the events it carried)."""
        self._endpoint_listeners.setdefault(endpoint_id, []).append(listener)

        def remove() -> None:
            listeners = self._endpoint_listeners.get(endpoint_id)
            if listeners is not None and listener in listeners:
                listeners.remove(listener)
                if not listeners:
                    del self._endpoint_listeners[endpoint_id]

        return remove

    def _all_subscriptions(self) -> list[EventSubscription]:
        return [*self._everything, *(s for subs in self._by_endpoint.values() for s in subs)]

    @property
    def subscribed_endpoints(self) -> list[str | None]:
        """The endpoint of each open subscription and endpoint listener, None for a
        subscription to all (for diagnostics)."""
        return [
            *(subscription.endpoint_id for subscription in self._all_subscriptions()),
            *(e for e, listeners in self._endpoint_listeners.items() for _ in listeners),
        ]

    def add_listener(self, listener: Callable[[MediaEvent], None]) -> Callable[[], None]:
        """Call `listener` for every event, synchronously; returns the function that stops it."""
        self._listeners.append(listener)
        return functools.partial(self._listeners.remove, listener)

    # -- endpoints -------------------------------------------------------------------

    def _get(self, endpoint_id: str) -> _Sockets:
        sockets = self._sockets.get(endpoint_id)
        if sockets is None:
            raise UnknownEndpointError(endpoint_id)
        return sockets

    def _rtp_in(self, endpoint_id: str, data: bytes, source: Address) -> None:
        self.switch.receive_rtp(endpoint_id, data, source, self.clock.monotonic())

    def _rtcp_in(self, endpoint_id: str, data: bytes, source: Address) -> None:
        self.switch.receive_rtcp(endpoint_id, data, source, self.clock.monotonic())

    async def create_endpoint(
        self, call_id: str, remote_sdp: SessionDescription | None = None
    ) -> EndpointInfo:
        """Take a port pair; answer `remote_sdp` if given, else make an offer.

        Raises SdpError (the pair goes back to the pool) when the offer has nothing we
        can accept.
        """
        switch = self.switch
        endpoint_id = POOL.take(16)
        pair = await self.pairs.take(
            functools.partial(self._rtp_in, endpoint_id),
            functools.partial(self._rtcp_in, endpoint_id),
        )
        port = pair.port
        try:
            local = LocalMedia(
                address=self.config.sdp_address, port=port, codecs=self.config.codecs
            )
            sockets = _Sockets(pair, local, POOL.bits(62))
            if remote_sdp is None:
                audio = None
                sdp = sockets.pending_offer = create_offer(local, sockets.session_id, 0)
            else:
                answer = answer_offer(remote_sdp, local, sockets.session_id, 0)
                audio, sdp = answer.audio, answer.sdp
        except BaseException:
            await self.pairs.give_back(pair)
            raise
        now = self.clock.monotonic()
        rtp_out: Transmit = SocketTransmit(pair.rtp_socket)
        if self._wrap_transmit is not None:
            rtp_out = self._wrap_transmit(endpoint_id, rtp_out)
        switch.add_endpoint(endpoint_id, call_id, rtp_out, SocketTransmit(pair.rtcp_socket), now)
        if audio is not None:
            switch.negotiate(endpoint_id, audio, now)
        self._sockets[endpoint_id] = sockets
        return EndpointInfo(endpoint_id, call_id, sdp, port, port + 1)

    async def accept_answer(self, endpoint_id: str, answer: SessionDescription) -> None:
        sockets = self._get(endpoint_id)
        offer = sockets.pending_offer
        if offer is None:
            raise MediaStateError(f"endpoint {endpoint_id!r} has no offer waiting for an answer")
        audio = accept_answer(offer, answer, sockets.local)
        sockets.pending_offer = None
        self.switch.negotiate(endpoint_id, audio, self.clock.monotonic())

    async def answer_offer(self, endpoint_id: str, offer: SessionDescription) -> SessionDescription:
        sockets = self._get(endpoint_id)
        sockets.version += 1
        answer = answer_offer(offer, sockets.local, sockets.session_id, sockets.version)
        # An offer of ours still unanswered is void now: its late answer must not
        # undo this one (RFC 3264 4).
        sockets.pending_offer = None
        self.switch.negotiate(endpoint_id, answer.audio, self.clock.monotonic())
        return answer.sdp

    async def create_offer(
        self, endpoint_id: str, direction: Direction = Direction.SENDRECV
    ) -> SessionDescription:
        sockets = self._get(endpoint_id)
        sockets.version += 1
        local = LocalMedia(
            address=sockets.local.address,
            port=sockets.pair.port,
            codecs=sockets.local.codecs,
            direction=direction,
        )
        offer = create_offer(local, sockets.session_id, sockets.version)
        sockets.pending_offer = offer
        sockets.local = local
        return offer

    async def close(self, endpoint_id: str) -> MediaStats:
        """Stop everything on the endpoint and give its port pair back (`PairPool`)."""
        sockets = self._sockets.pop(endpoint_id, None)
        if sockets is None:
            raise UnknownEndpointError(endpoint_id)
        try:
            return self.switch.remove_endpoint(endpoint_id, self.clock.monotonic())
        finally:
            # After its EndpointClosed: the endpoint will have no more events.
            self._endpoint_listeners.pop(endpoint_id, None)
            await self.pairs.give_back(sockets.pair)

    async def close_call(self, call_id: str) -> None:
        switch = self.switch
        for endpoint_id in [e for e in self._sockets if switch.call_of(e) == call_id]:
            await self.close(endpoint_id)

    def transports(self, endpoint_id: str) -> tuple[asyncio.DatagramTransport, ...]:
        """The endpoint's RTP and RTCP transports (for tests and diagnostics)."""
        pair = self._get(endpoint_id).pair
        return pair.rtp, pair.rtcp

    async def stats(self, endpoint_id: str) -> MediaStats:
        self._get(endpoint_id)
        return self.switch.stats(endpoint_id)

    # -- playing ---------------------------------------------------------------------

    def _speech_prompts(self) -> SpeechPrompts:
        if self._speech is None:
            folder = self.config.speech_dir
            if folder is None and self.config.cache_dir is not None:
                folder = self.config.cache_dir / "speech"
            if folder is None:
                folder = self._temporary_speech_dir = Path(
                    tempfile.mkdtemp(prefix="telportal-speech-")
                )
            self._speech = SpeechPrompts(folder)
        return self._speech

    def _load(self, item: PlayItem) -> EncodedClip:
        """Runs in a worker thread: file reading, conversion and synthesis block."""
        if isinstance(item, PlayFile):
            return self.clips.load_file(item.path)
        if isinstance(item, PlayTone):
            return self.clips.tone(item.tone, item.duration_ms)
        if isinstance(item, PlaySpeech):
            path = self._speech_prompts().wav_path(item.text, item.voice, item.rate)
            return self.clips.load_file(path)
        return EncodedClip.silence(item.duration_ms)

    async def load(self, items: Sequence[PlayItem]) -> list[EncodedClip]:
        """Resolve items to clips off the event loop (cached after the first time)."""
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(self._executor, self._load, item) for item in items)
            )
        )

    async def play(self, endpoint_id: str, playlist: Playlist, *, barge_in: bool = True) -> str:
        """Start `playlist`; returns the play id that PlayFinished will carry."""
        self._get(endpoint_id)
        clips = await self.load(playlist.items)
        self._get(endpoint_id)  # it may have closed while the clips loaded
        play_id = POOL.take(12)
        self.switch.play(endpoint_id, play_id, clips, loop=playlist.loop, barge_in=barge_in)
        return play_id

    async def stop_play(self, endpoint_id: str) -> bool:
        self._get(endpoint_id)
        return self.switch.stop_play(endpoint_id)

    async def send_digits(
        self,
        endpoint_id: str,
        digits: str,
        *,
        duration_ms: int = DEFAULT_DIGIT_MS,
        gap_ms: int = DEFAULT_DIGIT_GAP_MS,
    ) -> None:
        self._get(endpoint_id)
        self.switch.send_digits(endpoint_id, digits, duration_ms, gap_ms)

    async def digit_from_signaling(self, endpoint_id: str, digit: str) -> None:
        self._get(endpoint_id)
        self.switch.digit_from_signaling(endpoint_id, digit, self.clock.monotonic())

    # -- recording -------------------------------------------------------------------

    async def record_start(
        self,
        endpoint_id: str,
        path: Path,
        *,
        layout: RecordingLayout = RecordingLayout.STEREO,
        pause_mode: PauseMode = PauseMode.SILENCE,
    ) -> None:
        self._get(endpoint_id)
        channels = 2 if layout is RecordingLayout.STEREO else 1
        writer = await asyncio.get_running_loop().run_in_executor(
            self._executor, IncrementalWavWriter, path, channels
        )
        try:
            self._get(endpoint_id)
            self.switch.record_start(endpoint_id, CallRecorder(writer, layout, pause_mode))
        except BaseException:
            writer.close()
            raise

    async def record_pause(self, endpoint_id: str) -> None:
        self._get(endpoint_id)
        self.switch.record_pause(endpoint_id)

    async def record_resume(self, endpoint_id: str) -> None:
        self._get(endpoint_id)
        self.switch.record_resume(endpoint_id)

    async def record_stop(self, endpoint_id: str) -> RecordingSummary:
        self._get(endpoint_id)
        return self.switch.record_stop(endpoint_id)

    # -- bridging and mixing ---------------------------------------------------------

    async def bridge(self, a: str, b: str) -> None:
        self._get(a)
        self._get(b)
        self.switch.bridge(a, b)

    async def unbridge(self, endpoint_id: str) -> None:
        self._get(endpoint_id)
        self.switch.unbridge(endpoint_id)

    async def mix(
        self, mix_id: str, endpoint_id: str, role: MixRole, *, whisper_to: str | None = None
    ) -> None:
        self._get(endpoint_id)
        self.switch.mix(mix_id, endpoint_id, role, whisper_to)

    async def unmix(self, endpoint_id: str) -> None:
        self._get(endpoint_id)
        self.switch.unmix(endpoint_id)
