"""Runs an IVR flow on a live call: the pure interpreter driven by SIP and media.

`IvrCall` answers the call with a media endpoint, then loops: it performs the
flow's actions (play, say, collect, HTTP, record, hang up) on the media engine
and turns what happens (prompts finished, keys pressed, timers, HTTP answers,
the caller hanging up) into the interpreter's events. Keys pressed while a
prompt plays stop it when barge-in is on and are kept for the next collect, as
callers who know a menu type ahead.

What is not the IVR's to do (queue, transfer, callback, case) is handed to a
`Handoff` the composition root provides; until the ACD and cases exist the
default says so on the call and ends it.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import httpx

from telportal.clock import Clock
from telportal.ivr.actions import (
    Action,
    Collect,
    CreateCase,
    FilePrompt,
    Hangup,
    HttpRequest,
    Play,
    PromptPart,
    Queue,
    Record,
    RequestCallback,
    Say,
    SilencePrompt,
    SpeechPrompt,
    TonePrompt,
    Transfer,
)
from telportal.ivr.events import (
    CallEnded,
    DigitsEntered,
    Event,
    HttpFailed,
    HttpResponded,
    InputTimedOut,
    MediaFinished,
    RecordingFinished,
)
from telportal.ivr.flow import Flow
from telportal.ivr.interpreter import FlowRun
from telportal.ivr.record import CallInfo, CallRecord
from telportal.mailbox import Mailbox
from telportal.media import (
    DigitReceived,
    EndpointTimedOut,
    MediaEngine,
    MediaEvent,
    PlayFile,
    PlayFinished,
    PlayItem,
    Playlist,
    PlaySilence,
    PlaySpeech,
    PlayTone,
)
from telportal.rtp.tones import BEEP, BUSY_CHINA, DIAL_NORTH_AMERICA, RINGBACK_CHINA
from telportal.sdp import SessionDescription
from telportal.signaling.calls import InboundCall
from telportal.signaling.media_offers import anchor
from telportal.signaling.site_handover import handed_over

log = logging.getLogger(__name__)

TONES = {"beep": BEEP, "ringback": RINGBACK_CHINA, "busy": BUSY_CHINA, "dial": DIAL_NORTH_AMERICA}
HTTP_BODY_LIMIT = 1_000_000

Handoff = Callable[[InboundCall, Action, "IvrCall"], Awaitable[None]]


async def say_unavailable(call: InboundCall, action: Action, ivr: "IvrCall") -> None:
    """The stand-in for queues, transfers, callbacks and cases until they exist."""
    log.info(
        "call %s: %s is not available yet; ending the call", call.call_id, type(action).__name__
    )
    await ivr.play_and_wait(
        Playlist((PlaySpeech("Sorry, no one can take your call right now. Goodbye."),))
    )


class IvrCall:
    def __init__(
        self,
        call: InboundCall,
        engine: MediaEngine,
        flow: Flow,
        clock: Clock,
        *,
        called: str,
        site: str,
        tenant_slug: str,
        prompt_dir: Path,
        recording_dir: Path,
        handoff: Handoff = say_unavailable,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.call = call
        self.engine = engine
        self.flow = flow
        self.clock = clock
        self.called = called
        self.prompt_dir = prompt_dir
        self.recording_dir = recording_dir
        # Set by the handoff: the agent's recorded conversation, who hung up, how the
        # queue part ended, and the routing decision with its figures.
        self.agent_recording: Path | None = None
        self.hangup_by: str | None = None
        self.queue_outcome: str | None = None
        self.routing: dict[str, Any] | None = None
        # The record of another service's flow the call was transferred to, if any.
        self.continued: CallRecord | None = None
        self.handoff = handoff
        self.http = http
        self.endpoint = ""
        # Flows name their tenant by slug, the way enterprises write them.
        from_site, carried = handed_over(
            call.request, call.trunk.name if call.trunk is not None else None
        )
        info = CallInfo(
            tenant_slug, call.caller, called, call.call_id, site,
            from_site=from_site, carried=carried,
        )  # fmt: skip
        self.run = FlowRun(flow, info, clock)
        # The flow's events in order, the call's end among them (`when_ended`), so that
        # waiting for the next one is one `get`, not two tasks raced by `asyncio.wait`.
        self._events: Mailbox[Event] = Mailbox()
        self._typed_ahead = ""
        self._collect: Collect | None = None
        self._collected = ""
        self._collect_timer: asyncio.TimerHandle | None = None
        self._collect_play: str | None = None
        self._play_ref: dict[str, int] = {}
        self._record_stop: asyncio.Event | None = None
        self._record_terminator: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_listening: Callable[[], None] | None = None

    # --- the call ------------------------------------------------------------------

    async def serve(self, answered_endpoint: str | None = None) -> CallRecord:
        """Answer, run the flow to its end, and return what the call did.

        `answered_endpoint`: the call was answered already on this media endpoint (a
        shared number asked the caller which enterprise they want).
        """
        stop_waiting = self.call.when_ended(self._on_call_ended)
        # Not `finally`: a compiled coroutine must not await there (decision 0028).
        try:
            await self._run_flow(answered_endpoint)
        except BaseException:
            await self._close(stop_waiting)
            raise
        await self._close(stop_waiting)
        return self.run.record()

    async def _run_flow(self, answered_endpoint: str | None) -> None:
        if answered_endpoint is not None:
            self.endpoint = answered_endpoint
        else:
            offer = SessionDescription.parse(self.call.offer.decode(errors="replace"))
            info = await self.engine.create_endpoint(self.call.call_id, offer)
            self.endpoint = info.endpoint_id
        # Listening once the endpoint exists, with no await since: nothing of its
        # can have happened yet. A subscription for every endpoint, narrowed once
        # the endpoint existed, took every other call's events meanwhile (15 in 20
        # subscriptions unfiltered at 20 calls in progress, each a wasted wake-up).
        # A listener, not a subscription: no queue and no task per call between
        # the engine and the flow.
        self._stop_listening = self.engine.listen(self.endpoint, self._on_media)
        anchor(self.call, self.engine, self.endpoint)
        if answered_endpoint is None:
            await self.call.answer(info.sdp.serialize().encode())
        actions = self.run.start()
        # An event may ask for nothing (a prompt the flow no longer waits for): the
        # run goes on until it is finished, which a hang-up always makes it.
        while True:
            for action in actions:
                await self._perform(action)
            if self.run.finished:
                break
            actions = self.run.handle(await self._next_event())

    async def _close(self, stop_waiting: Callable[[], None]) -> None:
        stop_waiting()
        self.call.offer_answerer = None  # the endpoint closes below
        if self._stop_listening is not None:
            self._stop_listening()
            # The remover holds our bound `_on_media`: kept, it made this call a cycle
            # that only the collector could free (every call, some 36 objects).
            self._stop_listening = None
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._cancel_collect_timer()
        # Not `contextlib.suppress`: three Python calls more, once a call.
        try:  # noqa: SIM105
            await self.engine.close(self.endpoint)
        except Exception:  # noqa: S110 - the call is over: nothing is left to tell
            pass

    async def _next_event(self) -> Event:
        return await self._events.get()

    def _on_call_ended(self) -> None:
        # After the events before it, as before: what happened first is handled first.
        self._events.put_nowait(CallEnded(reason="caller_hangup"))

    # --- media events ----------------------------------------------------------------

    def _on_media(self, event: MediaEvent) -> None:
        """An event of our endpoint, handled inside the engine's packet or tick handling:
        nothing here may wait."""
        if isinstance(event, DigitReceived):
            self._on_digit(event.digit)
        elif isinstance(event, EndpointTimedOut):
            if not self.call.ended.is_set():
                log.warning("call %s: no RTP from the caller for %.0f s: hanging up",
                            self.call.call_id, event.silent_seconds)  # fmt: skip
                self.hangup_by = "system"
                self._spawn(self.call.hangup("no media from the caller"))
        elif isinstance(event, PlayFinished):
            ref = self._play_ref.pop(event.play_id, None)
            if ref is not None and ref >= 0:  # -1: played outside the flow
                self._events.put_nowait(MediaFinished(ref))
            if self._collect is not None and event.play_id == self._collect_play:
                self._arm_collect_timer(self._collect.timeout)

    def _on_digit(self, digit: str) -> None:
        if self._record_stop is not None:
            if digit == self._record_terminator:
                self._record_stop.set()
            return
        collect = self._collect
        if collect is None:
            self._typed_ahead += digit
            return
        if collect.terminator is not None and digit == collect.terminator:
            self._finish_collect(terminated=True)
            return
        self._collected += digit
        if len(self._collected) >= collect.max_digits:
            self._finish_collect(terminated=False)
        else:
            self._arm_collect_timer(collect.digit_timeout)

    # --- actions ---------------------------------------------------------------------

    async def _perform(self, action: Action) -> None:
        if isinstance(action, Play):
            await self._play(action.ref, action.prompt, action.barge_in)
        elif isinstance(action, Say):
            await self._play(
                action.ref, (SpeechPrompt(action.text, action.language),), action.barge_in
            )
        elif isinstance(action, Collect):
            await self._start_collect(action)
        elif isinstance(action, HttpRequest):
            self._spawn(self._http(action))
        elif isinstance(action, Record):
            self._spawn(self._record(action))
        elif isinstance(action, Hangup):
            await self.call.hangup(f"ivr: {action.reason}")
        elif isinstance(action, Queue | Transfer | RequestCallback | CreateCase):
            await self.handoff(self.call, action, self)
            if isinstance(action, Queue | Transfer):
                await self.call.hangup("handed off")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _playlist(self, prompt: tuple[PromptPart, ...]) -> Playlist | None:
        items: list[PlayItem] = []
        for part in prompt:
            if isinstance(part, SpeechPrompt):
                items.append(PlaySpeech(part.text, voice=part.language))
            elif isinstance(part, FilePrompt):
                items.append(PlayFile(self.prompt_dir / self.call.tenant_id / part.path))
            elif isinstance(part, TonePrompt):
                ms = None if part.duration is None else max(1, round(part.duration * 1000))
                items.append(PlayTone(TONES.get(part.tone, BEEP), ms))
            elif isinstance(part, SilencePrompt):
                items.append(PlaySilence(max(20, round(part.duration * 1000))))
        return Playlist(tuple(items)) if items else None

    async def _play(self, ref: int, prompt: tuple[PromptPart, ...], barge_in: bool) -> None:
        playlist = self._playlist(prompt)
        if playlist is None:
            self._events.put_nowait(MediaFinished(ref))
            return
        play_id = await self.engine.play(self.endpoint, playlist, barge_in=barge_in)
        self._play_ref[play_id] = ref

    async def play_and_wait(self, playlist: Playlist) -> None:
        """Play outside the flow (a handoff's announcement) and wait for its end."""
        done = asyncio.Event()
        play_id = await self.engine.play(self.endpoint, playlist, barge_in=False)
        self._play_ref[play_id] = -1
        remove = getattr(self.engine, "add_listener", None)
        if remove is None:
            return
        stop = remove(lambda e: done.set() if getattr(e, "play_id", None) == play_id else None)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):  # not `wait_for`: see notify/sender.py
                    await done.wait()
        finally:
            stop()

    async def _start_collect(self, action: Collect) -> None:
        self._collect = action
        self._collected = ""
        self._collect_play = None
        # Keys typed ahead count first: a caller who knows the menu need not wait.
        ahead, self._typed_ahead = self._typed_ahead, ""
        for digit in ahead:
            if self._collecting():
                self._on_digit(digit)
            else:
                self._typed_ahead += digit
        if not self._collecting():
            return
        playlist = self._playlist(action.prompt)
        if playlist is None or ahead:
            self._arm_collect_timer(action.timeout)
            return
        self._collect_play = await self.engine.play(self.endpoint, playlist, barge_in=True)

    def _collecting(self) -> bool:
        # A method, not an attribute test: _on_digit may end the collect under us.
        return self._collect is not None

    def _arm_collect_timer(self, seconds: float) -> None:
        self._cancel_collect_timer()
        loop = asyncio.get_running_loop()
        self._collect_timer = loop.call_later(seconds, self._collect_timed_out)

    def _cancel_collect_timer(self) -> None:
        if self._collect_timer is not None:
            self._collect_timer.cancel()
            self._collect_timer = None

    def _collect_timed_out(self) -> None:
        collect = self._collect
        if collect is None:
            return
        if self._collected:
            self._finish_collect(terminated=False)
            return
        self._collect = None
        self._events.put_nowait(InputTimedOut(collect.ref))

    def _finish_collect(self, *, terminated: bool) -> None:
        collect = self._collect
        if collect is None:
            return
        self._cancel_collect_timer()
        self._collect = None
        if self._collect_play is not None:
            self._spawn(self._stop_play())
        self._events.put_nowait(DigitsEntered(collect.ref, self._collected, terminated))

    async def _stop_play(self) -> None:
        with contextlib.suppress(Exception):
            await self.engine.stop_play(self.endpoint)

    async def _http(self, action: HttpRequest) -> None:
        if self.http is not None:
            await self._request(self.http, action)
            return
        async with httpx.AsyncClient() as client:
            await self._request(client, action)

    async def _request(self, client: httpx.AsyncClient, action: HttpRequest) -> None:
        try:
            response = await client.request(
                action.method,
                action.url,
                headers=dict(action.headers),
                content=action.body.encode() if action.body is not None else None,
                timeout=action.timeout,
            )
            body = response.content[:HTTP_BODY_LIMIT]
            self._events.put_nowait(HttpResponded(action.ref, response.status_code, body))
        except httpx.TimeoutException:
            self._events.put_nowait(HttpFailed(action.ref, "timeout"))
        except httpx.HTTPError as exc:
            self._events.put_nowait(HttpFailed(action.ref, "error", str(exc)[:200]))

    async def _record(self, action: Record) -> None:
        playlist = self._playlist(action.prompt)
        if playlist is not None:
            await self.play_and_wait(playlist)
        if action.beep:
            await self.play_and_wait(Playlist((PlayTone(BEEP),)))
        self.recording_dir.mkdir(parents=True, exist_ok=True)
        path = self.recording_dir / f"{self.call.call_id}-{action.ref}.wav"
        started = self.clock.monotonic()
        await self.engine.record_start(self.endpoint, path)
        stop = self._record_stop = asyncio.Event()
        self._record_terminator = action.terminator
        waits = {asyncio.create_task(stop.wait()), asyncio.create_task(self.call.ended.wait())}
        # Not `finally`: a compiled coroutine must not await there (decision 0028).
        try:
            await asyncio.wait(
                waits, timeout=action.max_duration, return_when=asyncio.FIRST_COMPLETED
            )
        except BaseException:
            await self._stop_recording(waits)
            raise
        await self._stop_recording(waits)
        self._events.put_nowait(
            RecordingFinished(action.ref, str(path), self.clock.monotonic() - started)
        )

    async def _stop_recording(self, waits: "set[asyncio.Task[Literal[True]]]") -> None:
        for task in waits:
            task.cancel()
        self._record_stop = None
        await self.engine.record_stop(self.endpoint)
