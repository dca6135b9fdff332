"""Composition root: builds every part of the platform from the configuration.

Nothing in Telportal is a module-level singleton; whatever a part needs is
handed to it here, so tests build the same graph with a fake clock, cheap
password hashing or another database.
"""

import logging
import socket
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telportal.auth.credentials import Passwords
from telportal.auth.lockout import Lockout
from telportal.auth.service import Authenticator
from telportal.calls_batch import CallRecordWriter
from telportal.calls_store import CallRecords
from telportal.center.acd_service import AcdService
from telportal.center.desktops import AgentDesktops
from telportal.clock import Clock, SystemClock
from telportal.config import Config, ConfigError, SiteRole
from telportal.crm.cases import CaseDesk
from telportal.crm.importance import ImportanceSweeper
from telportal.crm.lookup import CustomerLookup
from telportal.events import EventBus, InProcessBus
from telportal.ivr.publishing import FlowRepository
from telportal.media import EmbeddedMediaEngine, MediaConfig
from telportal.net import UDP_REPEAT_WINDOW, SipTransportLayer, TransportConfig
from telportal.net.dns import DnsResolver
from telportal.net.locate import DnsError
from telportal.notify import (
    CaseNotifier,
    EmailNotifications,
    MailTransport,
    OutboxSender,
    RetryPolicy,
    SmtpTransport,
)
from telportal.signaling.acd_handoff import acd_handoff
from telportal.signaling.callback import CallbackRunner
from telportal.signaling.directory import SipDirectory
from telportal.signaling.service import SipService
from telportal.store import migrate
from telportal.store.database import Database
from telportal.tenancy.crud import Resource
from telportal.tenancy.resources import all_resources

log = logging.getLogger(__name__)

# How long a site's calls may run the flow in service as last read when another
# process (another site, the business center) published a new one; a publish in this
# process takes effect at once.
FLOW_RECHECK_SECONDS = 2.0


@dataclass
class Platform:
    config: Config
    clock: Clock
    bus: EventBus
    db: Database
    passwords: Passwords
    auth: Authenticator
    resources: dict[str, Resource[Any]] = field(default_factory=dict)
    # The SIP edge, on sites with the access role.
    sip: SipService | None = None
    # The ACD, on sites with the center role; agents' open event sockets.
    acd: AcdService | None = None
    desktops: AgentDesktops = field(default_factory=AgentDesktops)
    cases: CaseDesk | None = None
    # Asks the tenant's own customer system about callers the CRM does not know.
    crm_lookup: CustomerLookup | None = None
    # Emails about case alarms, when `email.enabled`.
    email: EmailNotifications | None = None
    # Lowers rule-given importance once the purchases behind it are a year old.
    importance: ImportanceSweeper | None = None

    def resource(self, path: str) -> Resource[Any]:
        return self.resources[path]

    async def start(self) -> None:
        await self.db.start()
        if self.config.auto_migrate:
            await migrate.upgrade(self.db.engine)
        if self.sip is not None and self.sip.records is not None:
            # Calls that were up when this site last stopped cannot still be up.
            closed = await self.sip.records.close_orphans(self.config.site.name)
            if closed:
                log.warning("closed %d call records left open by the last run", closed)
        if self.acd is not None:
            await self.acd.start()
        if self.email is not None:
            await self.email.start()  # before the desk, so its first alarms are emailed
        if self.cases is not None:
            await self.cases.start()  # SLA alerts that came due while down fire now
        if self.importance is not None:
            await self.importance.start()

    async def close(self) -> None:
        # The media engine the composition root made: it holds the port pairs of ended
        # calls open for later ones (media/ports.py), until it is closed here.
        if self.sip is not None and self.sip.media is not None:
            await self.sip.media.aclose()
        if self.importance is not None:
            await self.importance.stop()
        if self.cases is not None:
            await self.cases.stop()
        if self.email is not None:
            await self.email.stop()
        if self.acd is not None:
            await self.acd.stop()
        await self.db.dispose()


def build_platform(
    config: Config,
    *,
    clock: Clock | None = None,
    bus: EventBus | None = None,
    passwords: Passwords | None = None,
    mail: MailTransport | None = None,
) -> Platform:
    clock = clock or SystemClock()
    bus = bus or InProcessBus()
    passwords = passwords or Passwords()
    db = Database(config.db_url, clock, bus)
    lockout = Lockout(
        clock,
        max_failures=config.auth.login_max_failures,
        window_seconds=config.auth.login_window_seconds,
        ban_seconds=config.auth.login_ban_seconds,
    )
    auth = Authenticator(db, passwords, clock, lockout, config.auth.token_ttl_seconds)
    resources = {r.path: r for r in all_resources(passwords)}
    sip = None
    if SiteRole.ACCESS in config.site.roles:
        directory = SipDirectory(
            db,
            default_tenant=config.sip.default_tenant,
            domain_suffix=config.sip.domain_suffix,
            site_name=config.site.name,
        )
        sip = SipService(
            config,
            clock,
            bus,
            directory,
            transport=SipTransportLayer(sip_transport_config(config)),
            digest_algorithms=config.sip.digest_algorithms,
        )
        sip.media = EmbeddedMediaEngine(media_config(config), clock=clock)
        sip.flows = FlowRepository(db, recheck_seconds=FLOW_RECHECK_SECONDS).current
        sip.records = CallRecordWriter(CallRecords(db), clock)
        try:
            sip.dns = DnsResolver(config.sip.dns_servers, timeout=config.sip.dns_timeout)
        except DnsError as exc:  # no resolv.conf: names are left to the system's resolver
            log.warning("carriers will not be located by DNS SRV records: %s", exc)
        sip.prompt_dir = config.data_dir / "prompts"
        sip.recording_dir = config.data_dir / "recordings"
    desktops = AgentDesktops()
    cases = CaseDesk(db, clock, bus)
    crm_lookup = CustomerLookup(db, resources["customers"], clock)
    acd = None
    if SiteRole.CENTER in config.site.roles:
        acd = AcdService(
            db,
            clock,
            bus,
            ready_on_register=config.acd.ready_on_register,
            center_id=config.site.name,
        )
        if sip is not None:
            # One process with both roles: queue steps go straight to this ACD.
            sip.handoff = acd_handoff(sip, acd, desktops, cases, crm_lookup)
            acd.on_callback = CallbackRunner(sip, acd)
    platform = Platform(
        config, clock, bus, db, passwords, auth, resources, sip, acd, desktops, cases
    )
    platform.crm_lookup = crm_lookup
    platform.importance = ImportanceSweeper(db, clock)
    if config.email.enabled:
        platform.email = email_notifications(config, clock, bus, db, mail)
    return platform


def email_notifications(
    config: Config, clock: Clock, bus: EventBus, db: Database, mail: MailTransport | None
) -> EmailNotifications:
    settings = config.email
    policy = RetryPolicy(
        max_attempts=settings.max_attempts,
        first_delay=timedelta(seconds=settings.retry_first_seconds),
        max_delay=timedelta(seconds=settings.retry_max_seconds),
        lease=timedelta(seconds=settings.timeout_seconds + 60),
    )
    sender = OutboxSender(
        db, clock, mail or SmtpTransport(settings), policy, poll_seconds=settings.poll_seconds
    )
    notifier = CaseNotifier(
        db,
        clock,
        bus,
        settings,
        desktop_url=settings.desktop_url or f"http://{config.http_listen}/",
        on_stored=sender.wake,
    )
    return EmailNotifications(notifier, sender)


def media_config(config: Config) -> MediaConfig:
    settings = config.media
    bind = settings.bind_address or config.sip_listen.host
    advertised = settings.advertised_address
    if advertised is None and bind in ("0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        advertised = _primary_address()
    try:
        return MediaConfig(
            bind_address=bind,
            advertised_address=advertised,
            port_min=settings.port_min,
            port_max=settings.port_max,
            rtp_timeout=settings.rtp_timeout_seconds,
            idle_port_pairs=settings.idle_port_pairs,
            port_reuse_after=settings.port_reuse_after_seconds,
            cache_dir=config.data_dir / "prompt-cache",
            speech_dir=config.data_dir / "speech-cache",
        )
    except ValueError as exc:
        raise ConfigError(f"setting 'media': {exc}") from None


def _primary_address() -> str:
    """The address this host reaches the world from (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def sip_transport_config(config: Config) -> TransportConfig:
    """TLS contexts from the settings; a certificate that will not load stops the start."""
    server = None
    if config.sip.tls_listen is not None and config.sip.tls_cert and config.sip.tls_key:
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            server.load_cert_chain(config.sip.tls_cert, config.sip.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"setting 'sip.tls_cert' / 'sip.tls_key': cannot load the certificate ({exc})"
            ) from None
    return TransportConfig(
        tls_server_context=server,
        tls_client_context=ssl.create_default_context(),
        udp_repeat_window=UDP_REPEAT_WINDOW,  # the SIP service takes `Repeat`s
    )
