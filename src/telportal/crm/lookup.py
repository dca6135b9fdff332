"""Asking the enterprise's own customer system about a caller the CRM does not know.

Enterprises keep their customers in their own systems; pushing every change to us
(`POST /customers`) is one way, asking on demand is the other (MISSION M9, M15). A
tenant configures one HTTP lookup (`PUT /crm-settings`): a URL template such as
`https://crm.example.com/api/customers?phone={value}` (placeholders `{kind}` and
`{value}`, the value URL-encoded), headers (an API key), and a timeout.

When the CRM has no customer for a caller's number (the queue's screen pop, the
desktop's lookup), the system is asked once. A 200 with a JSON object describes the
customer (`name`, `id` = the enterprise's id, `importance` 0-5, `tags`, `notes`,
`attributes`); 404 means unknown. The answer is stored as a customer with the
identity asked about, so the next call finds them at once and the timeline starts;
its importance is the level set by hand, which the tenant's rules may raise.
Anything else (timeout, 5xx, malformed JSON) counts as unknown and is logged: a slow
enterprise system must never hold a caller longer than the timeout.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from telportal.clock import Clock
from telportal.crm import store as crm_store
from telportal.crm.identities import IdentityKind, normalize
from telportal.errors import Invalid
from telportal.store.database import Database
from telportal.store.schema import CrmSettings, Customer
from telportal.tenancy import schemas as s
from telportal.tenancy.crud import Resource
from telportal.tenancy.roles import Scope

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class LookupSettings:
    url: str
    timeout_seconds: float = 0.8
    headers: Mapping[str, str] = field(default_factory=dict)

    def request_url(self, kind: IdentityKind, value: str) -> str:
        return self.url.replace("{kind}", kind.value).replace("{value}", quote(value, safe=""))


class LookupAnswerError(ValueError):
    """The enterprise system's answer is not a customer."""


def customer_from_answer(
    tenant_id: str, kind: IdentityKind, value: str, answer: object
) -> s.CustomerCreate:
    """The customer to store from a 200 answer; LookupAnswerError naming what is wrong."""
    if not isinstance(answer, dict):
        raise LookupAnswerError("the answer is not a JSON object")
    # A level the enterprise gives is stored as set by hand: the floor for the tenant's
    # importance rules. None (not given) leaves the level to the rules.
    importance = answer.get("importance")
    if importance is not None and (isinstance(importance, bool) or not isinstance(importance, int)):
        raise LookupAnswerError("importance must be a whole number 0-5")
    external = answer.get("id")
    # Asked by the enterprise's id, the identity is that id already.
    external_id = None if kind is IdentityKind.EXTERNAL or external is None else str(external)
    identities = [s.IdentityIn(kind=_API_KIND[kind], value=value)]
    try:
        return s.CustomerCreate(
            tenant_id=tenant_id,
            name=str(answer.get("name") or "")[:200],
            external_id=external_id,
            importance=None if importance is None else max(0, min(5, importance)),
            tags=[str(t)[:50] for t in answer.get("tags") or [] if str(t)][:50],
            notes=str(answer.get("notes") or "")[:10_000],
            attributes=_attributes(answer.get("attributes")),
            identities=identities,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LookupAnswerError(f"{where}: {first['msg']}") from None


_API_KIND = {
    IdentityKind.PHONE: "phone",
    IdentityKind.EMAIL: "email",
    IdentityKind.CHAT: "chat",
    IdentityKind.EXTERNAL: "external",
}


def _attributes(raw: object) -> dict[str, str | int | float | bool | None]:
    if not isinstance(raw, dict):
        return {}
    kept: dict[str, str | int | float | bool | None] = {}
    for key, value in list(raw.items())[:50]:
        if isinstance(value, str | int | float | bool) or value is None:
            kept[str(key)[:100]] = value
    return kept


class CustomerLookup:
    """Finds a customer in the CRM, or else asks the tenant's system and stores them."""

    def __init__(
        self,
        db: Database,
        customers: Resource[Any],  # the `customers` resource: identities, events, audit
        clock: Clock,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.customers = customers
        self.clock = clock
        self._http = http
        self.asked = 0  # lookups sent to enterprise systems, for tests and metrics

    async def settings(self, tenant_id: str) -> LookupSettings | None:
        async with self.db.read() as session:
            row = await session.get(CrmSettings, tenant_id)
        if row is None or not row.lookup_url:
            return None
        return LookupSettings(row.lookup_url, row.lookup_timeout_ms / 1000, row.lookup_headers)

    async def find(self, tenant_id: str, kind: IdentityKind, value: str) -> Customer | None:
        """The CRM's customer with this identity, asking the enterprise on a miss."""
        async with self.db.read() as session:
            found = await crm_store.find(session, tenant_id, kind, value)
        if found is not None:
            return found
        settings = await self.settings(tenant_id)
        if settings is None:
            return None
        try:  # the enterprise's system gets one format: E.164, lower-case emails
            value = normalize(kind, value)
        except Invalid:
            return None
        create = await self.ask(settings, tenant_id, kind, value)
        if create is None:
            return None
        return await self._store(tenant_id, kind, value, create)

    async def ask(
        self, settings: LookupSettings, tenant_id: str, kind: IdentityKind, value: str
    ) -> s.CustomerCreate | None:
        url = settings.request_url(kind, value)
        self.asked += 1
        client = self._http or httpx.AsyncClient()
        try:
            response = await client.get(
                url, headers=dict(settings.headers), timeout=settings.timeout_seconds
            )
        except httpx.HTTPError as exc:
            log.warning("tenant %s: customer lookup failed (%s: %s)", tenant_id,
                        type(exc).__name__, exc)  # fmt: skip
            return None
        finally:
            if self._http is None:
                await client.aclose()
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            log.warning("tenant %s: customer lookup answered %d", tenant_id, response.status_code)
            return None
        if len(response.content) > MAX_ANSWER_BYTES:
            log.warning("tenant %s: customer lookup answer over %d bytes", tenant_id,
                        MAX_ANSWER_BYTES)  # fmt: skip
            return None
        try:
            return customer_from_answer(tenant_id, kind, value, response.json())
        except (ValueError, LookupAnswerError) as exc:
            log.warning("tenant %s: customer lookup answer refused: %s", tenant_id, exc)
            return None

    async def _store(
        self, tenant_id: str, kind: IdentityKind, value: str, create: s.CustomerCreate
    ) -> Customer | None:
        try:
            async with self.db.write(Scope.system("crm-lookup")) as uow:
                await self.customers.create(uow, create)
        except Exception:
            # Another call stored the same customer meanwhile (unique identity), or
            # the enterprise's id is already someone's: the CRM's own record wins.
            log.info("tenant %s: looked-up customer not stored", tenant_id, exc_info=True)
        async with self.db.read() as session:
            return await crm_store.find(session, tenant_id, kind, value)
