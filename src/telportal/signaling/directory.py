"""What the SIP side needs to know about tenants, kept in memory and hot-reloaded.

SIP requests arrive far more often than configuration changes, so the SIP edge
never asks the database on its hot path: it reads a snapshot of tenants (slug,
SIP domain), their phone users (extension, HA1 values) and trunks (trusted
source networks), and reloads it whenever a `ConfigChanged` event says one of
those moved (MISSION M4/M14: changes take effect at once). The whole snapshot is
reloaded: it is a few rows per phone, and one code path is easier to trust than
a per-tenant patch.
"""

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import select

from telportal.events import ConfigChanged, EventBus
from telportal.sip import SipParseError, SipUri, parse_uri
from telportal.store.database import Database
from telportal.store.schema import (
    NumberLink,
    Queue,
    QueueMember,
    ServiceNumber,
    Site,
    Tenant,
    Trunk,
    User,
)

log = logging.getLogger(__name__)

# Source addresses whose trunk (or none) is remembered; past this the memory starts again.
MAX_SOURCES_CACHED = 10_000

# Entities whose changes alter what the SIP side sees.
SIP_ENTITIES = frozenset(
    {"tenant", "user", "trunk", "service_number", "number_link", "service", "queue", "site"}
)

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SipUser:
    user_id: str
    tenant_id: str
    extension: str
    ha1_md5: str
    ha1_sha256: str


@dataclass(frozen=True)
class SipTrunk:
    trunk_id: str
    tenant_id: str | None
    name: str
    host: str
    port: int | None  # None: located by DNS, SRV records first (RFC 3263)
    transport: str
    networks: tuple[IpNetwork, ...]
    keepalive: bool
    username: str | None = None
    auth_realm: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None
    max_channels: int | None = None


@dataclass(frozen=True)
class SitePeer:
    """Another site of the platform, reached (and trusted) at its `sip_uri`.

    Sites hand calls to each other over SIP (MISSION M3: access sites forward to
    centers). A call from a peer's address is taken like a trunk's: the service
    number names the tenant, and no digest is asked.
    """

    name: str
    host: str
    port: int
    transport: str
    networks: tuple[IpNetwork, ...]

    def as_trunk(self) -> SipTrunk:
        return SipTrunk(
            f"site:{self.name}", None, f"site:{self.name}", self.host, self.port,
            self.transport, self.networks, keepalive=False,
        )  # fmt: skip


@dataclass(frozen=True)
class NumberRoute:
    """Where a call to a service number goes: a tenant's service."""

    number: str
    tenant_id: str
    service_id: str | None
    caller_prefix: str | None
    ivr_digit: str | None


@dataclass
class TenantEntry:
    tenant_id: str
    slug: str
    sip_domain: str | None
    enabled: bool
    name: str = ""
    users: dict[str, SipUser] = field(default_factory=dict)  # by extension


class SipDirectory:
    def __init__(
        self,
        db: Database,
        *,
        default_tenant: str | None = None,
        domain_suffix: str | None = None,
        site_name: str = "",
    ) -> None:
        self._db = db
        self._site_name = site_name
        self._sites: dict[str, SitePeer] = {}
        self._default_slug = default_tenant
        self._suffix = domain_suffix.lower().lstrip(".") if domain_suffix else None
        self._tenants: dict[str, TenantEntry] = {}
        self._by_domain: dict[str, str] = {}
        self._trunks: dict[str, SipTrunk] = {}
        self._numbers: dict[str, list[NumberRoute]] = {}
        self._queues: dict[tuple[str, str], tuple[str, ...]] = {}
        # trunk_for_source's answers, for the trunks and sites dicts they were found in.
        self._by_source: tuple[
            dict[str, SipTrunk], dict[str, SitePeer], dict[str, SipTrunk | None]
        ] = (self._trunks, self._sites, {})
        self.reloads = 0

    # --- lookups (hot path, no IO) ---------------------------------------------

    def tenant_for_domain(self, host: str) -> TenantEntry | None:
        """The tenant a Request-URI or To domain names, else the default tenant."""
        host = host.lower().strip("[]")
        tid = self._by_domain.get(host)
        if tid is None and self._suffix and host.endswith("." + self._suffix):
            tid = self._by_domain.get(host[: -len(self._suffix) - 1])
        if tid is None and self._default_slug:
            tid = self._by_domain.get(self._default_slug)
        entry = self._tenants.get(tid) if tid else None
        return entry if entry is not None and entry.enabled else None

    def slug_of(self, tenant_id: str) -> str | None:
        entry = self._tenants.get(tenant_id)
        return entry.slug if entry else None

    def users(self, tenant_id: str) -> list[SipUser]:
        entry = self._tenants.get(tenant_id)
        return list(entry.users.values()) if entry else []

    def user(self, tenant_id: str, extension: str) -> SipUser | None:
        entry = self._tenants.get(tenant_id)
        return entry.users.get(extension) if entry else None

    def trunk_for_source(self, ip: str) -> SipTrunk | None:
        """The trunk (or peer site, as a trunk) whose networks hold ip; None if none.

        Remembered per address until the trunks or sites are reloaded: every INVITE
        asks, and parsing the address and testing each network costs microseconds."""
        cache = self._by_source
        if cache[0] is not self._trunks or cache[1] is not self._sites:
            cache = self._by_source = (self._trunks, self._sites, {})
        known = cache[2]
        if ip in known:
            return known[ip]
        if len(known) >= MAX_SOURCES_CACHED:
            known.clear()
        found = known[ip] = self._find_trunk_for_source(ip)
        return found

    def _find_trunk_for_source(self, ip: str) -> SipTrunk | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for trunk in self._trunks.values():
            if any(addr in net for net in trunk.networks):
                return trunk
        for peer in self._sites.values():
            if any(addr in net for net in peer.networks):
                return peer.as_trunk()
        return None

    def site(self, name: str) -> SitePeer | None:
        """Another enabled site with a SIP address; never this site itself."""
        return self._sites.get(name)

    def number_choices(self, number: str, caller: str) -> list[NumberRoute]:
        """When one number serves several tenants told apart by an IVR choice, the links
        the caller chooses among (each with its digit); otherwise empty.

        A caller_prefix match decides without asking.
        """
        routes = self._numbers.get(number.lstrip("+"))
        if not routes or any(
            r.caller_prefix and caller.startswith(r.caller_prefix) for r in routes
        ):
            return []
        choices = [
            r for r in routes if r.caller_prefix is None and r.ivr_digit and self._tenant_enabled(r)
        ]
        return sorted(choices, key=lambda r: r.ivr_digit or "") if len(choices) > 1 else []

    def tenant_name(self, tenant_id: str) -> str:
        entry = self._tenants.get(tenant_id)
        return (entry.name or entry.slug) if entry else tenant_id

    def number_route(self, number: str, caller: str) -> NumberRoute | None:
        """The link of a service number that serves this caller (MISSION M13).

        A link whose caller_prefix matches wins over one without, the longest
        prefix first; links told apart only by an IVR choice are offered as a
        choice (`number_choices`), the first serving until the caller chooses.
        """
        routes = self._numbers.get(number.lstrip("+"))
        if not routes:
            return None
        matching = [r for r in routes if r.caller_prefix and caller.startswith(r.caller_prefix)]
        if matching:
            return max(matching, key=lambda r: len(r.caller_prefix or ""))
        general = [r for r in routes if r.caller_prefix is None and self._tenant_enabled(r)]
        return general[0] if general else None

    def _tenant_enabled(self, route: NumberRoute) -> bool:
        entry = self._tenants.get(route.tenant_id)
        return entry is not None and entry.enabled

    def queue_members(self, tenant_id: str, queue: str) -> tuple[str, ...]:
        """Extensions of the agents who answer a queue, in a stable order."""
        return self._queues.get((tenant_id, queue), ())

    def outbound_trunk(self, tenant_id: str) -> SipTrunk | None:
        """The trunk a tenant's calls to outside numbers leave by.

        The tenant's own trunks come first, then the platform's shared ones; by
        name within each, so the choice is stable and an operator can steer it.
        """
        own = [t for t in self._trunks.values() if t.tenant_id == tenant_id]
        shared = [t for t in self._trunks.values() if t.tenant_id is None]
        for group in (own, shared):
            if group:
                return min(group, key=lambda t: t.name)
        return None

    def trunks(self) -> list[SipTrunk]:
        return list(self._trunks.values())

    # --- loading ----------------------------------------------------------------

    async def load(self) -> None:
        async with self._db.read() as session:
            tenants = (await session.execute(select(Tenant))).scalars().all()
            users = (
                (
                    await session.execute(
                        select(User).where(
                            User.extension.is_not(None),
                            User.sip_ha1_sha256.is_not(None),
                            User.enabled.is_(True),
                        )
                    )
                )
                .scalars()
                .all()
            )
            trunks = (
                (await session.execute(select(Trunk).where(Trunk.enabled.is_(True))))
                .scalars()
                .all()
            )
            members = (
                await session.execute(
                    select(Queue.tenant_id, Queue.name, User.extension)
                    .join(QueueMember, QueueMember.queue_id == Queue.id)
                    .join(User, User.id == QueueMember.user_id)
                    .where(User.enabled.is_(True), User.extension.is_not(None))
                    .order_by(Queue.name, User.extension)
                )
            ).all()
            sites = (
                (await session.execute(select(Site).where(Site.enabled.is_(True)))).scalars().all()
            )
            links = (
                await session.execute(
                    select(ServiceNumber.number, NumberLink)
                    .join(NumberLink, NumberLink.number_id == ServiceNumber.id)
                    .order_by(NumberLink.created_at)
                )
            ).all()
        entries = {
            t.id: TenantEntry(t.id, t.slug, t.sip_domain, t.enabled, t.name) for t in tenants
        }
        for u in users:
            if u.tenant_id in entries and u.extension and u.sip_ha1_md5 and u.sip_ha1_sha256:
                entries[u.tenant_id].users[u.extension] = SipUser(
                    u.id, u.tenant_id, u.extension, u.sip_ha1_md5, u.sip_ha1_sha256
                )
        self._tenants = entries
        self._by_domain = {}
        for e in entries.values():
            self._by_domain[e.slug] = e.tenant_id
            if e.sip_domain:
                self._by_domain[e.sip_domain.lower()] = e.tenant_id
        self._trunks = {t.id: _trunk(t) for t in trunks}
        peers: dict[str, SitePeer] = {}
        for row in sites:
            if row.sip_uri and row.name != self._site_name:
                peer = await _site_peer(row.name, row.sip_uri)
                if peer is not None:
                    peers[row.name] = peer
        self._sites = peers
        numbers: dict[str, list[NumberRoute]] = {}
        # Rows read by index: compiled code checks that a row unpacked as a tuple is
        # one, and SQLAlchemy's Row is not.
        for row in cast(Sequence[Any], links):
            number: str = row[0]
            link: NumberLink = row[1]
            numbers.setdefault(number.lstrip("+"), []).append(
                NumberRoute(
                    number, link.tenant_id, link.service_id, link.caller_prefix, link.ivr_digit
                )
            )
        self._numbers = numbers
        queues: dict[tuple[str, str], list[str]] = {}
        for member in cast(Sequence[Any], members):
            tenant_id: str = member[0]
            name: str = member[1]
            extension: str | None = member[2]
            if extension:
                queues.setdefault((tenant_id, name), []).append(extension)
        self._queues = {key: tuple(value) for key, value in queues.items()}
        self.reloads += 1

    async def follow(self, bus: EventBus) -> None:
        """Reload on every SIP-relevant configuration change, until cancelled."""
        with bus.subscribe("config") as sub:
            while True:
                event = await sub.get()
                if isinstance(event, ConfigChanged) and event.entity in SIP_ENTITIES:
                    # Coalesce a burst of changes (an import, a demo seed) into one reload.
                    await asyncio.sleep(0)
                    while sub.get_nowait() is not None:
                        pass
                    await self.load()
                    log.debug("SIP directory reloaded after %s %s", event.entity, event.action)


def _trunk(t: Trunk) -> SipTrunk:
    return SipTrunk(
        t.id,
        t.tenant_id,
        t.name,
        t.host,
        t.port,
        t.transport,
        tuple(ipaddress.ip_network(n, strict=False) for n in t.inbound_addresses),
        t.keepalive,
        t.username,
        t.auth_realm,
        t.auth_ha1_md5,
        t.auth_ha1_sha256,
        t.max_channels,
    )


async def _site_peer(name: str, sip_uri: str) -> SitePeer | None:
    """The peer at a site's `sip:host[:port][;transport=tcp]`; None (logged) if unusable."""
    try:
        uri = parse_uri(sip_uri)
    except SipParseError as exc:
        log.warning("site %s: sip_uri %r is not a SIP URI (%s)", name, sip_uri, exc)
        return None
    if not isinstance(uri, SipUri):
        log.warning("site %s: sip_uri %r is not a sip: URI", name, sip_uri)
        return None
    transport = (uri.params.get("transport") or "udp").lower()
    host = uri.host.strip("[]")
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            log.warning("site %s: cannot resolve %s (%s)", name, host, exc)
            return None
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    networks = tuple(ipaddress.ip_network(a) for a in sorted(addresses, key=str))
    port = uri.port or (5061 if transport == "tls" else 5060)
    return SitePeer(name, host, port, transport, networks)
