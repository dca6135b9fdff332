"""The SIP edge of a site: transports, transactions, registrar and keep-alive together.

This is the asyncio adapter around the pure parts. It owns three loops:
- receive: every screened message from the transports goes through the
  transaction layer; what it delivers is handled here (REGISTER, OPTIONS, ...);
- timers: sleeps until the transaction layer's next deadline (woken early only
  when a call into the layer armed an earlier one) and fires due timers;
- housekeeping: expires bindings every second and sends OPTIONS keep-alives
  to registered phones and trunks every `sip.keepalive_seconds`.

Authentication is the same for known and unknown users (the digest core
guarantees it); an address that fails too often is ignored for a while.
"""

import asyncio
import dataclasses
import logging
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from telportal import __version__
from telportal.auth.lockout import Lockout
from telportal.calls_batch import CallRecordWriter
from telportal.clock import Clock
from telportal.config import Config
from telportal.events import EventBus, PhoneRegistration
from telportal.ivr.flow import Flow
from telportal.ivr.publishing import PublishedFlow
from telportal.ivr.record import CallRecord
from telportal.media import MediaEngine
from telportal.net import (
    UDP_REPEAT_WINDOW,
    ConnectionGone,
    Listener,
    NoRoute,
    Peer,
    Repeat,
    SipTransportLayer,
    Source,
    Transport,
    TransportClosed,
    TransportConfig,
    TransportError,
)
from telportal.net.address import ip_literal
from telportal.net.locate import DnsLookup
from telportal.net.locate import locate as locate_servers
from telportal.signaling.calls import (
    Credentials,
    InboundCall,
    Leg,
    OutboundLeg,
    bridge,
    phone_destination,
)
from telportal.signaling.directory import NumberRoute, SipDirectory, SipTrunk, TenantEntry
from telportal.signaling.ivr_call import Handoff, IvrCall
from telportal.signaling.live_calls import LiveCalls
from telportal.signaling.number_choice import choose_enterprise
from telportal.signaling.queue_handoff import ring_queue_members
from telportal.sip import (
    Headers,
    Request,
    Response,
    SipUri,
    make_response,
    parse_uri,
)
from telportal.sip.dialog import (
    DEFAULT_MAX_FORWARDS,
    DialogError,
    DialogId,
    request_dialog_id,
    response_dialog_id,
)
from telportal.sip.digest import Authorized, BadRequest, Banned, Challenged, DigestServer
from telportal.sip.errors import SipParseError
from telportal.sip.location import LocationEvent, LocationService
from telportal.sip.registrar import RegistrarPolicy, process_register
from telportal.sip.session_timer import SessionTimerPolicy, negotiate_uas
from telportal.sip.transaction import (
    AckKey,
    Deliver,
    Dropped,
    NoAck,
    Send,
    Stray,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionId,
    TransactionLayer,
    TwoHundredRetransmitter,
    new_branch,
    new_tag,
)
from telportal.sip.transaction import TransportError as TxnTransportError
from telportal.sip.transaction_messages import new_call_id
from telportal.sip.validate import Rejection

log = logging.getLogger(__name__)

Address = Peer | Source
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE"
SERVER = f"Telportal/{__version__}"
HOUSEKEEPING_SECONDS = 1.0
# Call records stay in memory until the call-record store exists (issue 6).
MAX_KEPT_RECORDS = 1000
# Destinations whose sent-by is remembered; past this the memory starts again.
MAX_SENT_BY_CACHED = 10_000

# A trunk located by DNS counts as up while one of its first few servers answers OPTIONS.
_PINGED_SERVERS = 3
# A located server that let an INVITE go unanswered is tried last for this long (or
# until it answers a keep-alive), so that the next calls do not wait for it too.
SERVER_DOWN_SECONDS = 60.0
_MAX_SERVERS_DOWN = 1000

# What a phone may dial out: digits with an optional leading + (no SIP URIs, no *codes).
_DIALABLE = re.compile(r"\+?[0-9]{3,20}")

# The flow a service number's calls run: a published version, or a bare Flow (tests).
FlowSource = Callable[[str, str | None], Awaitable[Flow | PublishedFlow | None]]


def _wake(waiter: "asyncio.Future[None] | None") -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class RequestTimeout(Exception):
    """A client transaction ended without a final response."""


@dataclass
class TrunkStatus:
    trunk: SipTrunk
    reachable: bool | None = None  # None until the first keep-alive answers or times out

    # Written out, not generated: see decision 0021.
    def __init__(self, trunk: SipTrunk, reachable: bool | None = None) -> None:
        self.trunk = trunk
        self.reachable = reachable


@dataclass
class _Outgoing:
    future: asyncio.Future[Response] = field(default_factory=asyncio.Future)

    # Written out, not generated: see decision 0021.
    def __init__(self, future: asyncio.Future[Response] | None = None) -> None:
        self.future = asyncio.Future() if future is None else future


Handler = Callable[[Request, TransactionId, Source], Awaitable[None]]


class SipService:
    def __init__(
        self,
        config: Config,
        clock: Clock,
        bus: EventBus,
        directory: SipDirectory,
        *,
        transport: SipTransportLayer | None = None,
        nonce_secret: bytes | None = None,
        digest_algorithms: Sequence[str] = ("MD5", "SHA-256"),
        timers: TimerSettings | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.bus = bus
        self.directory = directory
        self.transport = transport or SipTransportLayer(
            TransportConfig(udp_repeat_window=UDP_REPEAT_WINDOW)
        )
        self.transactions: TransactionLayer[Address] = TransactionLayer(clock, timers)
        self.location: LocationService[Source] = LocationService(clock)
        sip = config.sip
        self.policy = RegistrarPolicy(min_expires=sip.min_expires, max_expires=sip.max_expires)
        self.lockout = Lockout(
            clock, sip.auth_max_failures, sip.auth_window_seconds, sip.auth_ban_seconds
        )
        self._nonce_secret = nonce_secret or secrets.token_bytes(32)
        self._algorithms = tuple(digest_algorithms)
        self._digest: dict[str, DigestServer] = {}
        self._outgoing: dict[TransactionId, _Outgoing] = {}
        self._clients: dict[TransactionId, asyncio.Queue[Response | None]] = {}
        self.retransmitter: TwoHundredRetransmitter[Address] = TwoHundredRetransmitter(
            clock, timers
        )
        # Legs whose 2xx (to the first INVITE, or to a re-INVITE) waits for its ACK.
        self._awaiting_ack: dict[object, Leg] = {}
        self._dialogs: dict[DialogId, InboundCall | OutboundLeg] = {}
        # Legs dialling or in a call, by Call-ID: where a forked 2xx goes (`_late_2xx`).
        self._uac_calls: dict[str, OutboundLeg] = {}
        self._invites: dict[TransactionId, InboundCall] = {}
        self.user_agent = SERVER
        # What happens to an accepted INVITE; the ACD will extend this.
        self.on_invite: Callable[[InboundCall], Awaitable[None]] = self.route_call
        # Set by the composition root: media, and the flow each service runs.
        self.media: MediaEngine | None = None
        self.flows: FlowSource | None = None
        # Carriers named by a domain are located through this (RFC 3263); None: the
        # name is only resolved to an address, by the system, when a message goes out.
        self.dns: DnsLookup | None = None
        # Seconds a located server may leave an INVITE without any answer before the
        # next one gets it (RFC 3263 4.3; `OutboundLeg._attempt`).
        self.failover_after = config.sip.failover_seconds
        # Located servers that did not answer an INVITE, until when they are tried last.
        self._servers_down: dict[Address, float] = {}
        self.prompt_dir = config.data_dir / "prompts"
        self.recording_dir = config.data_dir / "recordings"
        self.call_records: list[CallRecord] = []
        # Call records, written behind the calls (decision 0010); None: not recorded.
        self.records: CallRecordWriter | None = None
        self._records_open: CallRecordWriter | None = None
        self.session_policy = SessionTimerPolicy()
        self.handoff: Handoff = ring_queue_members(self)
        self.calls_ended = 0
        self._handlers: dict[str, Handler] = {
            "REGISTER": self._on_register,
            "OPTIONS": self._on_options,
            "INVITE": self._on_invite,
        }
        self.trunk_status: dict[str, TrunkStatus] = {}
        # Calls connected to an agent, for the call-control API.
        self.live_calls = LiveCalls(self)
        # Calls in progress on each trunk, both directions: carriers sell channels.
        self.trunk_channels: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # What the timer loop sleeps on while it sleeps (see `_timer_loop`).
        self._timer_waiter: asyncio.Future[None] | None = None
        self._armed: float | None = None  # the deadline the timer loop sleeps until
        self.listeners: list[Listener] = []
        # Our host:port as each destination sees it (see `sent_by`).
        self._sent_by: dict[tuple[Transport, str], str] = {}

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> list[Listener]:
        cfg, sip = self.config, self.config.sip
        host, port = cfg.sip_listen.host, cfg.sip_listen.port
        self.listeners.append(await self.transport.listen(Transport.UDP, host, port))
        if sip.tcp:
            self.listeners.append(await self.transport.listen(Transport.TCP, host, port))
        if sip.tls_listen is not None:
            tls = sip.tls_listen
            self.listeners.append(await self.transport.listen(Transport.TLS, tls.host, tls.port))
        if sip.ws_listen is not None:
            ws = sip.ws_listen
            self.listeners.append(await self.transport.listen(Transport.WS, ws.host, ws.port))
        self._sent_by.clear()  # the listeners changed
        await self.directory.load()
        if self.records is not None:
            self.records.open()
            self._records_open = self.records
        for coro in (
            self._receive_loop(),
            self._timer_loop(),
            self._housekeeping_loop(),
            self.directory.follow(self.bus),
        ):
            self._spawn(coro)
        log.info("SIP on %s", ", ".join(f"{x.transport}:{x.host}:{x.port}" for x in self.listeners))
        return self.listeners

    async def stop(self) -> None:
        # Calls still up are dropped, not hung up: a BYE would wait 64*T1 for peers
        # that may be gone, and a restart must not hang on them.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._records_open is not None:
            # What the calls recorded, up to the ones just dropped, is written now.
            await self._records_open.aclose()
            self._records_open = None
        await self.transport.close()
        for out in self._outgoing.values():
            if not out.future.done():
                out.future.cancel()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run coro as a task the service tracks and cancels on stop."""
        self._spawn(coro)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SIP task failed", exc_info=task.exception())

    # --- loops ---------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        transport = self.transport
        while True:
            # What is waiting already is taken without a coroutine (two a message).
            incoming = transport.receive_nowait()
            if incoming is None:
                try:
                    incoming = await transport.receive()
                except TransportClosed:
                    return
            source = incoming.source
            try:
                if isinstance(incoming, Repeat):
                    # An INVITE's retransmission, recognised by its bytes before parsing.
                    repeated = self.transactions.receive_repeat(incoming.transaction, source)
                    if repeated is not None:  # None: its transaction never started
                        await self._perform(repeated)
                else:
                    await self._perform(
                        self.transactions.receive(
                            incoming.message, source, source.transport.reliable
                        )
                    )
            except Exception:
                # One message's failure must not stop the site answering the next.
                log.exception("handling a message from %s failed", source)

    def _next_deadline(self) -> float | None:
        ours, retransmit = self.transactions.next_deadline(), self.retransmitter.next_deadline()
        if ours is None or (retransmit is not None and retransmit < ours):
            return retransmit
        return ours

    def _rearm(self) -> None:
        """Wake the timer loop if a timer was armed before the deadline it sleeps until."""
        deadline = self._next_deadline()
        if deadline is not None and (self._armed is None or deadline < self._armed):
            _wake(self._timer_waiter)

    async def _timer_loop(self) -> None:
        # The loop sleeps on a future that either the deadline's own callback or
        # `_rearm` resolves. Not `asyncio.timeout` around an event: its expiry cancels
        # the task and turns the CancelledError into a TimeoutError, two exceptions
        # through three coroutines for every deadline reached, and at load most
        # deadlines are reached only to find their timer cancelled meanwhile.
        loop = asyncio.get_running_loop()
        while True:
            deadline = self._armed = self._next_deadline()
            delay = None if deadline is None else deadline - self.clock.monotonic()
            if delay is None or delay > 0:
                waiter = self._timer_waiter = loop.create_future()
                handle = None if delay is None else loop.call_later(delay, _wake, waiter)
                try:
                    await waiter
                finally:
                    self._timer_waiter = None
                    if handle is not None:
                        handle.cancel()
            await self._perform(self.transactions.tick())
            await self._perform(self.retransmitter.tick())

    async def _housekeeping_loop(self) -> None:
        last_keepalive = self.clock.monotonic()
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            await self._publish(self.location.expire())
            if self.clock.monotonic() - last_keepalive >= self.config.sip.keepalive_seconds:
                last_keepalive = self.clock.monotonic()
                self._spawn(self.keepalive_round())

    # --- the transaction user ------------------------------------------------------

    async def _perform(self, actions: Sequence[object]) -> None:
        self._rearm()
        for action in actions:
            if isinstance(action, Send):
                try:
                    sent = self._send_now(action)
                except (TransportError, ConnectionGone, OSError) as exc:
                    await self._send_failed(action, exc)
                    continue
                if not sent:
                    await self._send(action)
            elif isinstance(action, Deliver):
                await self._deliver(action)
            elif isinstance(action, Timeout | TxnTransportError | Terminated):
                self._fail(action.transaction)
            elif isinstance(action, Dropped):
                log.debug(
                    "dropped %s from %s: %s",
                    type(action.message).__name__,
                    action.source,
                    action.reason,
                )
            elif isinstance(action, Stray):
                held = self._stray(action.message)
                if held is not None:
                    await self._send_held_bye(held)
            elif isinstance(action, NoAck):
                await self._no_ack(action.key)

    def _send_now(self, action: Send[Address]) -> bool:
        """Send at once what needs no waiting (UDP to an address: nearly everything);
        False when `_send` must be awaited instead. Raises what the transport raises."""
        message, destination = action.message, action.destination
        if isinstance(message, Response) and isinstance(destination, Source):
            return self.transport.respond_now(message, destination, action.data)
        return self.transport.send_now(action.data, destination)

    async def _send(self, action: Send[Address]) -> None:
        try:
            if isinstance(action.message, Response) and isinstance(action.destination, Source):
                await self.transport.respond(action.message, action.destination)
            else:
                await self.transport.send(action.data, action.destination)
        except (TransportError, ConnectionGone, OSError) as exc:
            await self._send_failed(action, exc)

    async def _send_failed(self, action: Send[Address], exc: Exception) -> None:
        log.debug("send to %s failed: %s", action.destination, exc)
        if action.transaction is not None:
            await self._perform(self.transactions.transport_error(action.transaction))

    async def _deliver(self, action: Deliver[Address]) -> None:
        msg = action.message
        if isinstance(msg, Response):
            self._deliver_response(msg, action.transaction)
            return
        if msg.method == "ACK":
            await self._ack_delivered(msg)
            return
        source = action.source
        assert isinstance(source, Source)  # requests always come from the transports
        if msg.method == "CANCEL":
            call = self._invites.get(action.cancels) if action.cancels else None
            if call is not None:
                await call.on_cancel(action.transaction)
            else:
                await self._perform(self.transactions.accept_cancel(action.transaction))
            return
        if msg.to.tag is not None:
            dialog_id = request_dialog_id(msg)
            leg = self._dialogs.get(dialog_id) if dialog_id else None
            if leg is None:
                await self.respond(action.transaction, make_response(msg, 481))
            else:
                await leg.on_request(msg, action.transaction, source)
            return
        if self.lockout.banned_for(source.host) > 0:
            # A banned source is refused everything, OPTIONS included, so a scanner
            # cannot keep fingerprinting the server while it waits out its ban.
            await self.respond(action.transaction, make_response(msg, 403))
            return
        handler = self._handlers.get(msg.method)
        if handler is None:
            status, extra = (405, [("Allow", ALLOW)]) if msg.method in ALLOW else (501, [])
            await self.respond(action.transaction, make_response(msg, status, headers=extra))
            return
        await handler(msg, action.transaction, source)

    def _deliver_response(self, msg: Response, transaction: TransactionId) -> None:
        queue = self._clients.get(transaction)
        if queue is not None:
            queue.put_nowait(msg)
        out = self._outgoing.get(transaction)
        if out is not None and msg.status >= 200 and not out.future.done():
            out.future.set_result(msg)
        elif queue is None and out is None and 200 <= msg.status < 300:
            # The INVITE client transaction passes on every 2xx until Timer M (RFC
            # 6026): a repeat once the leg has its answer, or another branch's.
            self._late_2xx(msg)

    def _stray(self, message: Request | Response) -> "tuple[Request, Address] | None":
        """An ACK for our 2xx, or a retransmitted 2xx whose ACK was lost. Returns the
        BYE (and where to) of a call hung up before this ACK, for the caller to send."""
        # No coroutine and no `contextlib.suppress` (a Python object and two Python
        # calls from compiled code): every answered call's ACK comes here.
        held: tuple[Request, Address] | None = None
        if isinstance(message, Request):
            if message.method == "ACK":
                try:
                    ack = AckKey.of(message)
                except SipParseError:
                    pass
                else:
                    self.retransmitter.stop(ack)
                    call = self._awaiting_ack.pop(ack, None)  # answered: forget it
                    if call is not None:
                        held = call.ack_wait_over()
                key = request_dialog_id(message)
                leg = self._dialogs.get(key) if key else None
                if leg is not None:
                    leg.on_ack(message)
            return held
        if 200 <= message.status < 300:
            self._late_2xx(message)
        return None

    def _late_2xx(self, response: Response) -> None:
        """A 2xx to an INVITE of ours that no one waits for: acknowledged again on its
        leg's dialog, or, from another branch of a forked INVITE, acknowledged and ended
        (RFC 3261 13.2.2.4)."""
        if response.cseq.method != "INVITE":
            return
        key = response_dialog_id(response)
        leg = self._dialogs.get(key) if key else None
        if leg is not None:
            leg.on_stray_2xx(response)
            return
        uac = self._uac_calls.get(response.call_id)
        if uac is not None and uac.local_tag == response.from_.tag:
            self._spawn(uac.end_fork(response))

    async def _ack_delivered(self, ack: Request) -> None:
        held = self._stray(ack)
        if held is not None:
            await self._send_held_bye(held)

    async def _no_ack(self, key: AckKey) -> None:
        """64*T1 without an ACK for a 2xx: the call's BYE goes now (RFC 3261 13.3.1.4),
        the one it held if it was hung up meanwhile."""
        call = self._awaiting_ack.pop(key, None)
        if call is None:
            return
        held = call.ack_wait_over()
        if held is not None:
            await self._send_held_bye(held)
        else:
            call.on_no_ack()

    async def _send_held_bye(self, held: "tuple[Request, Address]") -> None:
        """The BYE of a call hung up before its 2xx was acknowledged (RFC 3261 15): in
        a client transaction of its own, whose answer no one awaits (the call has
        ended for its users already)."""
        bye, destination = held
        _, actions = self.transactions.send_request(bye, destination)
        await self._perform(actions)

    def _fail(self, transaction: TransactionId) -> None:
        queue = self._clients.get(transaction)
        if queue is not None:
            queue.put_nowait(None)
        out = self._outgoing.pop(transaction, None)
        if out is not None and not out.future.done():
            out.future.set_exception(RequestTimeout(str(transaction)))

    async def respond(self, transaction: TransactionId, response: Response) -> None:
        response.headers.set("Server", SERVER)
        if response.status > 100 and response.to.tag is None:
            # RFC 3261 8.2.6.2: every answer but 100 tags its To (dialog answers
            # carry the dialog's tag already).
            response.headers.set("To", str(response.to.with_tag(new_tag())))
        await self._perform(self.transactions.send_response(transaction, response))

    async def request(self, request: Request, destination: Address) -> Response:
        """Send a request in a client transaction; the final response, or RequestTimeout."""
        txn, actions = self.transactions.send_request(request, destination)
        out = self._outgoing[txn] = _Outgoing()
        try:
            await self._perform(actions)
            return await out.future
        finally:
            self._outgoing.pop(txn, None)

    # --- what the call objects use -------------------------------------------------

    @property
    def active_dialogs(self) -> int:
        return len(self._dialogs)

    @property
    def calls_awaiting_ack(self) -> int:
        """Answered calls whose 2xx is not yet acknowledged."""
        return len(self._awaiting_ack)

    def legs_of(self, call_id: str) -> list[InboundCall | OutboundLeg]:
        """The legs whose dialog has this Call-ID (a scan: for operators and tests)."""
        return [leg for key, leg in self._dialogs.items() if key.call_id == call_id]

    def track_dialog(self, dialog_id: DialogId, leg: InboundCall | OutboundLeg) -> None:
        self._dialogs[dialog_id] = leg
        if isinstance(leg, InboundCall):
            self._invites[leg.transaction] = leg

    def forget_dialog(self, dialog_id: DialogId) -> None:
        leg = self._dialogs.pop(dialog_id, None)
        if isinstance(leg, InboundCall):
            self._invites.pop(leg.transaction, None)

    def expect_ack(self, ok: Response, leg: Leg) -> AckKey:
        """Note that `leg` waits for the ACK of `ok`, before `ok` is sent: over a stream
        the send may yield, and the ACK may be read meanwhile."""
        key = AckKey.of(ok)
        self._awaiting_ack[key] = leg
        return key

    def retransmit_until_ack(self, ok: Response, destination: Source, key: AckKey) -> None:
        """Resend `ok` (sent once already) until its ACK, unless that has come."""
        if key in self._awaiting_ack:
            self.retransmitter.start(ok, destination)
            self._rearm()

    def note_uac(self, leg: OutboundLeg) -> None:
        """`leg` is dialling: a forked 2xx to its INVITE is to be found by its Call-ID."""
        self._uac_calls[leg.call_id] = leg

    def forget_uac(self, leg: OutboundLeg) -> None:
        if self._uac_calls.get(leg.call_id) is leg:
            del self._uac_calls[leg.call_id]

    async def start_client(
        self, request: Request, destination: Address, responses: "asyncio.Queue[Response | None]"
    ) -> TransactionId:
        txn, actions = self.transactions.send_request(request, destination)
        self._clients[txn] = responses
        await self._perform(actions)
        return txn

    def stop_client(self, transaction: TransactionId) -> None:
        self._clients.pop(transaction, None)

    async def cancel_client(self, transaction: TransactionId) -> None:
        await self._perform(self.transactions.cancel(transaction))

    async def accept_cancel(self, cancel: TransactionId, to_tag: str) -> None:
        await self._perform(self.transactions.accept_cancel(cancel, to_tag=to_tag))

    async def send_outside_transaction(self, request: Request, destination: Address) -> None:
        """ACK for a 2xx: its own transaction, never retransmitted by a layer (17.1.1.3)."""
        try:
            if not self.transport.send_now(request, destination):
                await self.transport.send(request, destination)
        except (TransportError, ConnectionGone, OSError) as exc:
            log.debug("ACK to %s failed: %s", destination, exc)

    # --- requests ------------------------------------------------------------------

    async def _on_options(self, req: Request, txn: TransactionId, source: Source) -> None:
        await self.respond(
            txn,
            make_response(
                req,
                200,
                headers=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "timer")],
            ),
        )

    def _digest_for(self, realm: str) -> DigestServer:
        server = self._digest.get(realm)
        if server is None:
            server = DigestServer(
                self.clock, self._nonce_secret, realm, self.lockout, algorithms=self._algorithms
            )
            self._digest[realm] = server
        return server

    async def authenticate(
        self, req: Request, txn: TransactionId, source: Source
    ) -> tuple[TenantEntry, str] | None:
        """The tenant and user a request is from, or None once it has been answered.

        The realm is the tenant's slug; a domain that names no tenant is
        challenged all the same (with the domain as realm) so that nothing tells
        a scanner which domains and users exist.
        """
        host = req.uri.host if isinstance(req.uri, SipUri) else "invalid"
        tenant = self.directory.tenant_for_domain(host)
        realm = tenant.slug if tenant else host.strip("[]")
        directory = self.directory

        def lookup(username: str, _realm: str) -> tuple[str, str] | None:
            user = directory.user(tenant.tenant_id, username) if tenant else None
            return (user.ha1_md5, user.ha1_sha256) if user else None

        verdict = self._digest_for(realm).verify(
            req.method, str(req.uri), req.single("Authorization"), lookup, source=source.host
        )
        if isinstance(verdict, Authorized) and tenant is not None:
            return tenant, verdict.username
        if isinstance(verdict, Challenged):
            headers = [(verdict.header, c) for c in verdict.challenges]
            await self.respond(txn, make_response(req, verdict.status, headers=headers))
        elif isinstance(verdict, BadRequest):
            await self.respond(txn, make_response(req, 400, verdict.reason))
        elif isinstance(verdict, Banned):
            # 403 rather than silence: silence leaves server transactions waiting.
            # (Not the 401 a wrong password gets: a banned source may not even try.)
            await self.respond(txn, make_response(req, 403))
        else:
            await self.respond(txn, make_response(req, 403))
        return None

    async def _on_invite(self, req: Request, txn: TransactionId, source: Source) -> None:
        from_user = req.from_.uri.user if isinstance(req.from_.uri, SipUri) else None
        called = req.uri.user if isinstance(req.uri, SipUri) else None
        route = self.directory.number_route(called, from_user or "") if called else None
        trunk = self.directory.trunk_for_source(source.host)
        caller_is_trunk = trunk is not None and (route is not None or trunk.tenant_id is not None)
        if trunk is not None and caller_is_trunk:
            # A carrier's or PBX's network is trusted; a service number names the
            # tenant, otherwise the trunk's own tenant takes the call.
            tenant_id = route.tenant_id if route is not None else str(trunk.tenant_id)
            caller = from_user or "anonymous"
            if not self.seize_channel(trunk):
                await self.respond(txn, make_response(req, 503, "Trunk Channels Busy"))
                return
        else:
            who = await self.authenticate(req, txn, source)
            if who is None:
                return
            tenant_id, caller = who[0].tenant_id, who[1]
            if route is not None and route.tenant_id != tenant_id:
                route = None  # a phone calls its own tenant's numbers only
        agreement = negotiate_uas(req, self.session_policy)
        if isinstance(agreement, Rejection):
            # 422 with our Min-SE: the caller retries with a longer interval.
            await self.respond(
                txn,
                make_response(
                    req, agreement.status, agreement.reason, headers=list(agreement.headers)
                ),
            )
            return
        try:
            call = InboundCall(self, req, txn, source, tenant_id, caller)
            call.number_route = route
            if caller_is_trunk and route is not None:
                call.number_choices = self.directory.number_choices(called or "", caller)
            call.timer_agreement = agreement
            call.trunk = trunk if caller_is_trunk else None
        except (ValueError, DialogError) as exc:
            if caller_is_trunk and trunk is not None:
                self.release_channel(trunk)
            await self.respond(txn, make_response(req, 400, str(exc)[:120]))
            return
        self._spawn(self._run_call(call))

    async def _run_call(self, call: InboundCall) -> None:
        # Not `finally`: a compiled coroutine must not await there (decision 0028).
        try:
            await self.on_invite(call)
        except BaseException:
            await self._after_call(call)
            raise
        await self._after_call(call)

    async def _after_call(self, call: InboundCall) -> None:
        try:
            if not call.ended.is_set() and not self._stopping:
                await call.hangup("call handler finished")
        finally:  # no await here
            if call.trunk is not None:
                self.release_channel(call.trunk)
            self.calls_ended += 1

    def seize_channel(self, trunk: SipTrunk) -> bool:
        """Count a call on a trunk; False when its channels are all in use."""
        used = self.trunk_channels.get(trunk.trunk_id, 0)
        if trunk.max_channels is not None and used >= trunk.max_channels:
            return False
        self.trunk_channels[trunk.trunk_id] = used + 1
        return True

    def release_channel(self, trunk: SipTrunk) -> None:
        used = self.trunk_channels.get(trunk.trunk_id, 0) - 1
        if used > 0:
            self.trunk_channels[trunk.trunk_id] = used
        else:
            self.trunk_channels.pop(trunk.trunk_id, None)

    async def route_call(self, call: InboundCall) -> None:
        """A service number runs its service's IVR flow; anything else rings an extension."""
        route = call.number_route
        if route is None:
            await self._recorded_call(call)
            return
        answered_endpoint = None
        if call.number_choices and self.media is not None:
            chosen = await choose_enterprise(self, call, self.media)
            if chosen is None:
                return  # the caller hung up while choosing
            route, answered_endpoint = chosen
            call.number_route, call.tenant_id = route, route.tenant_id
        found = await self.flows(route.tenant_id, route.service_id) if self.flows else None
        if found is None or self.media is None:
            await call.reject(480, "Service Not Available")
            return
        flow, published = (
            (found.flow, found.version) if isinstance(found, PublishedFlow) else (found, None)
        )
        await self._record_start(call, route)
        ivr = IvrCall(
            call,
            self.media,
            flow,
            self.clock,
            called=route.number,
            site=self.config.site.name,
            tenant_slug=self.directory.slug_of(route.tenant_id) or route.tenant_id,
            handoff=self.handoff,
            prompt_dir=self.prompt_dir,
            recording_dir=self.recording_dir,
        )
        record = await ivr.serve(answered_endpoint)
        if ivr.continued is not None:  # transferred to another service's flow
            record = dataclasses.replace(
                record,
                path=(*record.path, *ivr.continued.path),
                outcome=ivr.continued.outcome,
            )
        await self._record_end(call, record, published, ivr)
        self.call_records.append(record)
        if len(self.call_records) > MAX_KEPT_RECORDS:
            del self.call_records[: len(self.call_records) - MAX_KEPT_RECORDS]
        if log.isEnabledFor(logging.DEBUG):
            # Debug, not info: the call record keeps the path and outcome of every
            # call, and a line a call (15 us to format and write) is 2,000 lines a
            # second at the target rate of #3.
            log.debug(
                "call %s to %s: flow %s v%s, path %s",
                call.call_id,
                route.number,
                record.flow,
                record.version,
                " > ".join(v.step for v in record.path),
            )

    async def _record_start(self, call: InboundCall, route: NumberRoute) -> None:
        if self.records is not None:  # queued, written behind: never costs the caller
            await self.records.start(
                call.tenant_id, call.call_id, site=self.config.site.name, direction="inbound",
                caller=call.caller, called=route.number, service_id=route.service_id,
            )  # fmt: skip

    async def _recorded_call(self, call: InboundCall) -> None:
        """A call between phones, or out through a trunk: it gets a record like any call."""
        uri = call.request.uri
        called = (uri.user if isinstance(uri, SipUri) else None) or str(uri)
        dialled_out = (
            call.trunk is None
            and self.directory.user(call.tenant_id, called) is None
            and _DIALABLE.fullmatch(called) is not None
        )
        records = self.records
        if records is not None:
            await records.start(
                call.tenant_id, call.call_id, site=self.config.site.name,
                direction="outbound" if dialled_out else "internal",
                caller=call.caller, called=called[:255],
            )  # fmt: skip
        # Not `finally`: a compiled coroutine must not await there (decision 0028).
        try:
            await self.call_extension(call)
        except BaseException:
            await self._record_call_end(call)
            raise
        await self._record_call_end(call)

    async def _record_call_end(self, call: InboundCall) -> None:
        records = self.records
        if records is not None:
            if call.answered_at is not None:
                await records.answered(call.tenant_id, call.call_id, call.answered_at)
            await records.finish(
                call.tenant_id, call.call_id, end_reason=call.end_reason or "ended",
                hangup_by=call.hangup_by or "system",
            )  # fmt: skip

    async def _record_end(
        self, call: InboundCall, record: CallRecord, version: int | None, ivr: IvrCall
    ) -> None:
        if self.records is None:
            return
        hangup_by = ivr.hangup_by or ("caller" if call.end_reason == "peer hung up" else "system")
        outcome = record.outcome
        if ivr.queue_outcome:
            outcome = f"{outcome}: {ivr.queue_outcome}"
        if call.answered_at is not None:
            await self.records.answered(call.tenant_id, call.call_id, call.answered_at)
        await self.records.save_ivr(call.tenant_id, call.call_id, record, version)
        await self.records.finish(
            call.tenant_id, call.call_id, end_reason=call.end_reason or "ended",
            outcome=outcome, hangup_by=hangup_by,
        )  # fmt: skip

    async def call_extension(self, call: InboundCall) -> None:
        """Ring the registered phone(s) of the extension the Request-URI names."""
        uri = call.request.uri
        extension = uri.user if isinstance(uri, SipUri) else None
        user = self.directory.user(call.tenant_id, extension) if extension else None
        if user is None:
            if extension and call.trunk is None and _DIALABLE.fullmatch(extension):
                await self.call_outside(call, extension)
            else:
                await call.reject(404)
            return
        bindings = [
            b for b in self.location.lookup(f"{call.tenant_id}/{user.extension}") if b.reachable
        ]
        if not bindings or bindings[0].peer is None:
            await call.reject(480, "Temporarily Unavailable")
            return
        binding = bindings[0]
        assert binding.peer is not None
        hops = call.relayed_max_forwards()
        if hops < 0:
            await call.reject(483)  # a loop counted down to here (RFC 7332)
            return
        leg = OutboundLeg(
            self,
            binding.contact,
            phone_destination(binding.contact, binding.peer),
            caller=call.caller,
            to=f"sip:{user.extension}@{self.sent_by(binding.peer)}",
            max_forwards=hops,
        )
        reason = await bridge(call, leg)
        call.hangup_by = _hangup_by(reason)
        log.info("call %s from %s to %s ended: %s", call.call_id, call.caller, extension, reason)

    async def call_outside(self, call: InboundCall, number: str) -> None:
        """A phone dials a number that is not an extension: out through the tenant's trunk.

        Only authenticated phones get here; calls that came in from a trunk are never
        sent back out to one (that would make us an open relay for toll fraud).
        """
        hops = call.relayed_max_forwards()
        if hops < 0:
            await call.reject(483)
            return
        leg = self.trunk_leg(call.tenant_id, number, caller=call.caller, max_forwards=hops)
        if leg is None:
            await call.reject(404)
            return
        trunk, outbound = leg
        if not self.seize_channel(trunk):
            await call.reject(503, "Trunk Channels Busy")
            return
        try:
            reason = await bridge(call, outbound)
            call.hangup_by = _hangup_by(reason)
        finally:
            self.release_channel(trunk)
        log.info(
            "call %s from %s out to %s via %s: %s",
            call.call_id,
            call.caller,
            number,
            trunk.name,
            reason,
        )

    def trunk_leg(
        self,
        tenant_id: str,
        number: str,
        *,
        caller: str,
        max_forwards: int = DEFAULT_MAX_FORWARDS,
    ) -> tuple[SipTrunk, OutboundLeg] | None:
        """An outbound leg to `number` through the tenant's trunk (not yet dialled)."""
        trunk = self.directory.outbound_trunk(tenant_id)
        if trunk is None:
            return None
        transport = Transport(trunk.transport)
        target = f"sip:{number}@{_trunk_hostport(trunk)}{_transport_param(transport)}"
        credentials = (
            Credentials(
                trunk.username,
                realm=trunk.auth_realm,
                ha1_md5=trunk.ha1_md5,
                ha1_sha256=trunk.ha1_sha256,
            )
            if trunk.username and trunk.auth_realm
            else None
        )
        leg = OutboundLeg(
            self,
            target,
            Peer(transport, trunk.host, trunk.port or transport.default_port),
            caller=caller,
            credentials=credentials,
            max_forwards=max_forwards,
        )
        if trunk.port is None:
            leg.server = (trunk.host, None, transport)
        return trunk, leg

    async def locate(self, host: str, port: int | None, transport: Transport) -> list[Address]:
        """The servers to try for `host`, best first: with no port, its SRV records
        (RFC 3263); with one, the host itself, left to the system's resolver when a
        message goes (its hosts file and search domains, as for any name with a
        port). Raises NoRoute when there is none."""
        dns = self.dns
        if dns is None or port is not None or ip_literal(host) is not None:
            return [Peer(transport, host, port or transport.default_port)]
        found: list[Address] = []
        for target in await locate_servers(dns, host, port, transport):
            peer = Peer(target.transport, target.host, target.port)
            if target.transport.secure:
                # Over TLS the connection goes to the SRV target's name, and its
                # certificate is checked against that name; a name DNS could point
                # anywhere is only believed inside the carrier's own domain.
                name = target.name.lower()
                if name != host.lower() and not name.endswith("." + host.lower()):
                    log.warning("%s: SRV target %s is outside its domain: not used", host, name)
                    continue
                peer = Peer(target.transport, target.name, target.port)
            if peer not in found:
                found.append(peer)
        if not found:
            raise NoRoute(f"no SIP server found for {host} inside its own domain")
        if self._servers_down:
            now = self.clock.monotonic()
            down = [peer for peer in found if self._servers_down.get(peer, 0.0) > now]
            if down:  # still tried, after the others (RFC 3263 4.3 order otherwise)
                found = [peer for peer in found if peer not in down] + down
        return found

    def server_down(self, server: Address) -> None:
        """`server` left an INVITE unanswered: the next calls try it last for a while."""
        down = self._servers_down
        if len(down) >= _MAX_SERVERS_DOWN:
            now = self.clock.monotonic()
            for peer in [peer for peer, until in down.items() if until <= now]:
                del down[peer]
            if len(down) >= _MAX_SERVERS_DOWN:
                down.clear()
        down[server] = self.clock.monotonic() + SERVER_DOWN_SECONDS

    def server_up(self, server: Address) -> None:
        self._servers_down.pop(server, None)

    async def _on_register(self, req: Request, txn: TransactionId, source: Source) -> None:
        who = await self.authenticate(req, txn, source)
        if who is None:
            return
        tenant, username = who
        to_uri = req.to.uri
        if not isinstance(to_uri, SipUri) or to_uri.user != username:
            await self.respond(txn, make_response(req, 403, "Not allowed to register this address"))
            return
        aor = f"{tenant.tenant_id}/{username}"
        result = process_register(
            req, aor, self.location, self.clock, peer=source, policy=self.policy
        )
        await self.respond(
            txn, make_response(req, result.status, result.reason, headers=result.headers)
        )
        await self._publish(result.events)

    async def _publish(self, events: Sequence[LocationEvent[Source]]) -> None:
        for e in events:
            tenant_id, _, extension = e.binding.aor.partition("/")
            user = self.directory.user(tenant_id, extension)
            await self.bus.publish(
                PhoneRegistration(
                    tenant_id=tenant_id,
                    at=self.clock.now(),
                    user_id=user.user_id if user else "",
                    extension=extension,
                    contact=e.binding.contact,
                    change=e.change,
                    reachable=e.aor_reachable,
                )
            )

    # --- keep-alive ----------------------------------------------------------------

    async def keepalive_round(self) -> None:
        """OPTIONS to every binding and trunk; marks them reachable or not."""
        jobs: list[Awaitable[None]] = []
        for binding in list(self.location.all_bindings()):
            if binding.peer is not None:
                jobs.append(self._ping_binding(binding.aor, binding.contact, binding.peer))
        for trunk in self.directory.trunks():
            if trunk.keepalive:
                jobs.append(self._ping_trunk(trunk))
        await asyncio.gather(*jobs)

    async def _ping_binding(self, aor: str, contact: str, peer: Source) -> None:
        ok = await self.ping(contact, peer)
        event = self.location.set_reachable(aor, contact, ok)
        if event is not None:
            await self._publish([event])

    async def _ping_trunk(self, trunk: SipTrunk) -> None:
        status = self.trunk_status.setdefault(trunk.trunk_id, TrunkStatus(trunk))
        transport = Transport(trunk.transport)
        target = f"sip:{_trunk_hostport(trunk)}{_transport_param(transport)}"
        try:
            servers = await self.locate(trunk.host, trunk.port, transport)
        except NoRoute as exc:
            log.info("trunk %s: %s", trunk.name, exc)
            status.reachable = False
            return
        # Up while one of its first servers answers; asked together, so that a dead
        # one costs one timeout, not one each. One that answers is no longer down.
        pinged = servers[:_PINGED_SERVERS]
        answers = await asyncio.gather(*(self.ping(target, server) for server in pinged))
        for server, answered in zip(pinged, answers, strict=True):
            if answered:
                self.server_up(server)
        status.reachable = any(answers)

    async def ping(self, target: str, destination: Address) -> bool:
        """Whether `target` answers an OPTIONS at all (any final response counts)."""
        try:
            await self.request(self.options_request(target, destination), destination)
        except (RequestTimeout, TransportError, ConnectionGone, OSError):
            return False
        return True

    def options_request(self, target: str, destination: Address) -> Request:
        via_token, sent_by = destination.transport.via_token, self.sent_by(destination)
        headers = Headers()
        headers.add("Via", f"SIP/2.0/{via_token} {sent_by};branch={new_branch()};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", f"<sip:telportal@{sent_by}>;tag={new_tag()}")
        headers.add("To", f"<{target}>")
        headers.add("Call-ID", new_call_id())
        headers.add("CSeq", "1 OPTIONS")
        headers.add("User-Agent", SERVER)
        return Request("OPTIONS", parse_uri(target), headers, b"")

    def sent_by(self, destination: Address) -> str:
        """Our host:port as seen from `destination` (the listener's, or the route's)."""
        key = (destination.transport, destination.host)
        found = self._sent_by.get(key)
        if found is None:
            if len(self._sent_by) >= MAX_SENT_BY_CACHED:
                self._sent_by.clear()
            found = self._sent_by[key] = self._find_sent_by(destination)
        return found

    def _find_sent_by(self, destination: Address) -> str:
        listener = next(
            (x for x in self.listeners if x.transport is destination.transport), self.listeners[0]
        )
        host = listener.host
        if host in ("0.0.0.0", "::"):  # noqa: S104 - resolving the wildcard, not binding it
            host = _route_address(destination.host)
        return f"[{host}]:{listener.port}" if ":" in host else f"{host}:{listener.port}"


def _route_address(remote: str) -> str:
    """The local address the kernel would use to reach `remote` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in remote else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((remote, 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _trunk_hostport(trunk: SipTrunk) -> str:
    """The trunk's host (an IPv6 address bracketed) and its port, if it has one."""
    host = f"[{trunk.host}]" if ":" in trunk.host else trunk.host
    return host if trunk.port is None else f"{host}:{trunk.port}"


def _transport_param(transport: Transport) -> str:
    return "" if transport is Transport.UDP else f";transport={transport}"


def _hangup_by(bridge_outcome: str) -> str:
    """Who ended a bridged call, from `bridge()`'s account of it."""
    if bridge_outcome in ("caller hung up", "caller gone"):
        return "caller"
    if bridge_outcome == "callee hung up":
        return "callee"
    return "system"
