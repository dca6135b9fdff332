"""Publishing IVR flows: numbered versions per service, the one in service, rollback.

Rules:
- A service's versions count 1, 2, 3, ... and are never changed or reused, so the
  `flow_version` of a call record names one exact text.
- Publishing checks the text with the flow checker (and that the flow names the
  service's tenant). A flow with problems is refused with every problem, and the
  version in service stays. A clean flow becomes the next version and is put in
  service at once.
- Rollback puts an earlier (or any other) version back in service: no new version
  is made, only the pointer moves, so equal texts keep one number.
- Every publish and rollback goes through the one write path: an audit entry, a
  revision bump and a `ConfigChanged` with entity "flow" and the service's id, so
  every site learns of it.
- New calls ask `current()`; a call keeps the `Flow` it started with, so a publish
  never changes a call already in the flow. Parsed flows are cached per
  (service, version): a call costs one indexed read, not a parse.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.errors import Conflict, Invalid, NotFound
from telportal.ivr.checker import load_flow
from telportal.ivr.flow import Flow
from telportal.ivr.problems import FlowInvalid, Problem
from telportal.ivr.yamlsource import load_yaml
from telportal.store.database import Database
from telportal.store.schema import CurrentFlow, FlowVersion, Service, Tenant
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.resources import Flows, Services
from telportal.tenancy.roles import Scope

ENTITY = "flow"
CACHE_SIZE = 256
# What a change to any of these may change the flow in service of.
FLOW_ENTITIES = frozenset({ENTITY, "service", "tenant"})


class FlowRefused(Invalid):
    """The flow has problems and was not published; `problems` lists every one."""

    code = "invalid_flow"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        first = f" (first: {self.problems[0]})" if self.problems else ""
        super().__init__(
            "yaml",
            f"the flow has {count} problem{'s' if count != 1 else ''} and was not published; "
            f"the version in service stays{first}",
        )


@dataclass(frozen=True, slots=True)
class PublishedFlow:
    """The version of a service's flow that new calls run, ready to run."""

    tenant_id: str
    service_id: str
    version: int
    sha256: str
    flow: Flow


@dataclass(frozen=True, slots=True)
class FlowHistory:
    """One page of a service's versions, newest first, and which one is in service."""

    items: Sequence[FlowVersion]
    total: int
    current: int | None


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class FlowRepository:
    def __init__(
        self,
        db: Database,
        *,
        cache_size: int = CACHE_SIZE,
        recheck_seconds: float | None = None,
    ) -> None:
        """`recheck_seconds`: remember the flow in service of each service for the call
        layer, and read it again after that long (a publish by another process shows
        within it) or at once after a commit of this process that touches flows,
        services or tenants. None: read it for every call (`current`)."""
        self.db = db
        self.flows = Flows()
        self.services = Services()
        self._cache_size = cache_size
        # (service id, version) -> (sha256, parsed flow); least recently used first.
        self._parsed: OrderedDict[tuple[str, int], tuple[str, Flow]] = OrderedDict()
        self._recheck = recheck_seconds
        # (tenant id, service id) -> (read again after, the flow in service or None).
        self._current: dict[tuple[str, str], tuple[float, PublishedFlow | None]] = {}
        self._changes = 0  # commits that touched flows: a read older than one is not kept
        if recheck_seconds is not None:
            db.on_commit(self._committed)

    def _committed(self, uow: UnitOfWork) -> None:
        if not uow.audited.isdisjoint(FLOW_ENTITIES):
            self._current.clear()
            self._changes += 1

    # --- writes ---------------------------------------------------------------

    async def publish(
        self,
        uow: UnitOfWork,
        service_id: str,
        text: str,
        note: str = "",
        *,
        filename: str | None = None,
    ) -> FlowVersion:
        """Check `text`, store it as the service's next version and put it in service.

        `filename` names the text in problems (default: `<service code>.yaml`).
        """
        self.flows.require(uow.scope, "create")
        service = await self._locked_service(uow, service_id)
        flow = await self._checked(uow.session, service, text, filename)
        latest = await uow.session.scalar(
            select(func.max(FlowVersion.version)).where(FlowVersion.service_id == service.id)
        )
        row = FlowVersion(
            tenant_id=service.tenant_id,
            service_id=service.id,
            version=(latest or 0) + 1,
            yaml=text,
            sha256=text_sha256(text),
            published_at=uow.clock.now(),
            published_by=uow.scope.actor_name,
            note=note,
        )
        uow.session.add(row)
        await self._flush(uow)
        await self._put_in_service(uow, service, row.version)
        await uow.config_changed(
            service.tenant_id,
            ENTITY,
            service.id,
            "created",
            {"version": row.version, "flow": flow.name, "sha256": row.sha256, "note": note},
        )
        return row

    async def rollback(self, uow: UnitOfWork, service_id: str, version: int) -> FlowVersion:
        """Put an existing version back in service; no new version is made.

        The text is checked again, since a newer release may check more strictly.
        """
        self.flows.require(uow.scope, "update")
        service = await self._locked_service(uow, service_id)
        row = await self._version(uow.session, uow.scope, service.id, version)
        pointer = await uow.session.get(CurrentFlow, service.id)
        previous = pointer.version if pointer is not None else None
        if previous == version:
            raise Conflict(f"version {version} is already in service")
        await self._checked(uow.session, service, row.yaml, None)
        await self._put_in_service(uow, service, version)
        await uow.config_changed(
            service.tenant_id,
            ENTITY,
            service.id,
            "updated",
            {"version": version, "previous": previous, "rollback": True},
        )
        return row

    # --- reads ----------------------------------------------------------------

    async def versions(
        self,
        session: AsyncSession,
        scope: Scope,
        service_id: str,
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> FlowHistory:
        self.flows.require(scope, "read")
        service = await self.services.get(session, scope, service_id)
        q = self.flows.query(scope).where(FlowVersion.service_id == service.id)
        total = await session.scalar(select(func.count()).select_from(q.subquery()))
        rows = await session.execute(
            q.order_by(FlowVersion.version.desc()).limit(limit).offset(offset)
        )
        current = await session.scalar(
            select(CurrentFlow.version).where(CurrentFlow.service_id == service.id)
        )
        return FlowHistory(rows.scalars().all(), int(total or 0), current)

    async def version(
        self, session: AsyncSession, scope: Scope, service_id: str, version: int
    ) -> tuple[FlowVersion, bool]:
        """One version and whether it is in service."""
        self.flows.require(scope, "read")
        service = await self.services.get(session, scope, service_id)
        row = await self._version(session, scope, service.id, version)
        current = await session.scalar(
            select(CurrentFlow.version).where(CurrentFlow.service_id == service.id)
        )
        return row, current == version

    async def in_service(
        self, session: AsyncSession, scope: Scope, service_id: str
    ) -> tuple[FlowVersion, CurrentFlow]:
        """The version in service and since when; NotFound when none was published."""
        self.flows.require(scope, "read")
        service = await self.services.get(session, scope, service_id)
        pointer = await session.get(CurrentFlow, service.id)
        if pointer is None:
            raise NotFound(ENTITY)
        return await self._version(session, scope, service.id, pointer.version), pointer

    async def current(self, tenant_id: str, service_id: str | None) -> PublishedFlow | None:
        """The flow a new call to the service runs, or None when none is published.

        For the call layer (it acts for the tenant of the number called). Raises
        FlowInvalid if the stored text no longer passes this release's checker.
        Remembered for `recheck_seconds` when the repository was made with it: a
        database read for every call cost an IVR call more than its SIP did.
        """
        if service_id is None:
            return None
        if self._recheck is None:
            return await self._read_current(tenant_id, service_id)
        key = (tenant_id, service_id)
        now = self.db.clock.monotonic()
        known = self._current.get(key)
        if known is not None and now < known[0]:
            return known[1]
        changes = self._changes
        found = await self._read_current(tenant_id, service_id)
        if changes == self._changes:  # no commit changed flows while this one was read
            if len(self._current) >= self._cache_size:
                self._current.clear()
            self._current[key] = (now + self._recheck, found)
        return found

    async def _read_current(self, tenant_id: str, service_id: str) -> PublishedFlow | None:
        async with self.db.read() as session:
            found = (
                await session.execute(
                    select(CurrentFlow.version, FlowVersion.sha256, Service.code)
                    .join(
                        FlowVersion,
                        (FlowVersion.service_id == CurrentFlow.service_id)
                        & (FlowVersion.version == CurrentFlow.version),
                    )
                    .join(Service, Service.id == CurrentFlow.service_id)
                    .where(CurrentFlow.service_id == service_id, CurrentFlow.tenant_id == tenant_id)
                )
            ).first()
            if found is None:
                return None
            version, sha256, code = found
            key = (service_id, version)
            cached = self._parsed.get(key)
            if cached is not None and cached[0] == sha256:
                self._parsed.move_to_end(key)
                return PublishedFlow(tenant_id, service_id, version, sha256, cached[1])
            text = await session.scalar(
                select(FlowVersion.yaml).where(
                    FlowVersion.service_id == service_id, FlowVersion.version == version
                )
            )
        flow = load_flow(text or "", f"{code}.yaml")
        self._parsed[key] = (sha256, flow)
        self._parsed.move_to_end(key)
        while len(self._parsed) > self._cache_size:
            self._parsed.popitem(last=False)
        return PublishedFlow(tenant_id, service_id, version, sha256, flow)

    # --- parts ----------------------------------------------------------------

    async def _locked_service(self, uow: UnitOfWork, service_id: str) -> Service:
        # The row lock makes concurrent publishes of one service take turns on
        # PostgreSQL, so each gets its own number (SQLite writers queue anyway).
        q = self.services.query(uow.scope).where(Service.id == service_id).with_for_update()
        service = (await uow.session.execute(q)).scalar_one_or_none()
        if service is None:
            raise NotFound("service")
        return service

    async def _version(
        self, session: AsyncSession, scope: Scope, service_id: str, version: int
    ) -> FlowVersion:
        q = self.flows.query(scope).where(
            FlowVersion.service_id == service_id, FlowVersion.version == version
        )
        row = (await session.execute(q)).scalar_one_or_none()
        if row is None:
            raise NotFound("flow_version")
        return row

    async def _checked(
        self, session: AsyncSession, service: Service, text: str, filename: str | None
    ) -> Flow:
        name = filename or f"{service.code}.yaml"
        try:
            flow = load_flow(text, name)
        except FlowInvalid as exc:
            raise FlowRefused(exc.problems) from None
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == service.tenant_id))
        if flow.tenant != slug:
            _, source, _ = load_yaml(text, name)
            raise FlowRefused(
                [
                    source.problem(
                        ("tenant",),
                        f"the flow names tenant '{flow.tenant}', "
                        f"but service '{service.code}' belongs to '{slug}'",
                    )
                ]
            )
        return flow

    async def _put_in_service(self, uow: UnitOfWork, service: Service, version: int) -> None:
        pointer = await uow.session.get(CurrentFlow, service.id)
        if pointer is None:
            pointer = CurrentFlow(service_id=service.id, tenant_id=service.tenant_id)
            uow.session.add(pointer)
        pointer.version = version
        pointer.since = uow.clock.now()
        pointer.made_by = uow.scope.actor_name
        await self._flush(uow)

    @staticmethod
    async def _flush(uow: UnitOfWork) -> None:
        try:
            await uow.session.flush()
        except IntegrityError:
            raise Conflict("another change to this service's flow came first; try again") from None
