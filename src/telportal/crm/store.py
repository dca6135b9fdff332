"""Customer reads and writes beyond plain CRUD: lookup by identity, timeline, merge,
interactions pushed by enterprise systems.

Every function takes the tenant first and touches only that tenant's rows.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.cases.customers import PURCHASE
from telportal.crm import importance
from telportal.crm.identities import IdentityKind, normalize, presentations
from telportal.errors import Conflict, Invalid, NotFound
from telportal.store.schema import (
    CallDetailRecord,
    Case,
    Customer,
    CustomerIdentity,
    CustomerInteraction,
)
from telportal.store.unit_of_work import UnitOfWork

MAX_MERGE_CHAIN = 10


async def find(
    session: AsyncSession, tenant_id: str, kind: IdentityKind, value: str
) -> Customer | None:
    """The customer an identity belongs to (following merges), or None. One indexed read."""
    try:
        key = normalize(kind, value)
    except Invalid:
        return None
    row = (
        await session.execute(
            select(Customer)
            .join(CustomerIdentity, CustomerIdentity.customer_id == Customer.id)
            .where(
                CustomerIdentity.tenant_id == tenant_id,
                CustomerIdentity.kind == kind.value,
                CustomerIdentity.value == key,
            )
        )
    ).scalar_one_or_none()
    if row is None and kind is IdentityKind.EXTERNAL:
        row = (
            await session.execute(
                select(Customer).where(Customer.tenant_id == tenant_id, Customer.external_id == key)
            )
        ).scalar_one_or_none()
    return await _survivor(session, row)


async def _survivor(session: AsyncSession, row: Customer | None) -> Customer | None:
    for _ in range(MAX_MERGE_CHAIN):
        if row is None or row.merged_into is None:
            return row
        row = await session.get(Customer, row.merged_into)
    return row


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # call, case, or the kind of a pushed interaction
    channel: str
    summary: str
    ref: str
    data: dict[str, Any]


async def timeline(
    session: AsyncSession, tenant_id: str, customer: Customer, limit: int = 100
) -> list[TimelineEntry]:
    """Every interaction, newest first: the customer's calls (by any of their phone
    numbers, merged records' included) and what enterprise systems pushed."""
    ids = await _merged_ids(session, tenant_id, customer.id)
    stored = (
        (
            await session.execute(
                select(CustomerIdentity.value).where(
                    CustomerIdentity.tenant_id == tenant_id,
                    CustomerIdentity.customer_id.in_(ids),
                    CustomerIdentity.kind == IdentityKind.PHONE.value,
                )
            )
        )
        .scalars()
        .all()
    )
    phones = [form for number in stored for form in presentations(number)]
    entries: list[TimelineEntry] = []
    if phones:
        calls = (
            await session.execute(
                select(CallDetailRecord)
                .where(
                    CallDetailRecord.tenant_id == tenant_id,
                    or_(CallDetailRecord.caller.in_(phones), CallDetailRecord.called.in_(phones)),
                )
                .order_by(CallDetailRecord.started_at.desc())
                .limit(limit)
            )
        ).scalars()
        for c in calls:
            entries.append(
                TimelineEntry(
                    c.started_at, "call", "voice",
                    f"{c.direction} call {c.caller} -> {c.called}: "
                    f"{c.outcome or c.end_reason or ''}",
                    c.id,
                    {"queue": c.queue, "agent": c.agent_extension, "talk_seconds": c.talk_seconds},
                )
            )  # fmt: skip
    interactions = (
        await session.execute(
            select(CustomerInteraction)
            .where(
                CustomerInteraction.tenant_id == tenant_id,
                CustomerInteraction.customer_id.in_(ids),
            )
            .order_by(CustomerInteraction.at.desc())
            .limit(limit)
        )
    ).scalars()
    for i in interactions:
        entries.append(TimelineEntry(i.at, i.kind, i.channel, i.summary, i.id, dict(i.data)))
    cases = (
        await session.execute(
            select(Case)
            .where(Case.tenant_id == tenant_id, Case.customer_id.in_(ids))
            .order_by(Case.created_at.desc())
            .limit(limit)
        )
    ).scalars()
    for k in cases:
        entries.append(
            TimelineEntry(
                k.created_at, "case", k.channel, f"case {k.number}: {k.subject} ({k.state})",
                k.id,
                {"state": k.state, "assignee": k.assignee, "call_record_id": k.call_record_id},
            )
        )  # fmt: skip
    entries.sort(key=lambda e: e.at, reverse=True)
    return entries[:limit]


async def _merged_ids(session: AsyncSession, tenant_id: str, customer_id: str) -> list[str]:
    """The customer and every record merged into it (transitively)."""
    ids, frontier = [customer_id], [customer_id]
    for _ in range(MAX_MERGE_CHAIN):
        found = (
            (
                await session.execute(
                    select(Customer.id).where(
                        Customer.tenant_id == tenant_id, Customer.merged_into.in_(frontier)
                    )
                )
            )
            .scalars()
            .all()
        )
        if not found:
            break
        ids.extend(found)
        frontier = list(found)
    return ids


async def merge(uow: UnitOfWork, tenant_id: str, survivor_id: str, duplicate_id: str) -> None:
    """Fold a duplicate into a survivor: identities move, both histories stay readable."""
    if survivor_id == duplicate_id:
        raise Invalid("duplicate_id", "a customer cannot be merged into itself")
    survivor = await own(uow.session, tenant_id, survivor_id)
    duplicate = await own(uow.session, tenant_id, duplicate_id)
    if survivor.merged_into is not None or duplicate.merged_into is not None:
        raise Conflict("a merged customer cannot be merged again; use the one it went into")
    await uow.session.execute(
        update(CustomerIdentity)
        .where(CustomerIdentity.customer_id == duplicate.id)
        .values(customer_id=survivor.id)
    )
    duplicate.merged_into = survivor.id
    # The higher floor set by hand; what rules gave either is recomputed below from
    # the joined facts (tags, and purchases of both).
    floors = [f for f in (survivor.importance_manual, duplicate.importance_manual) if f is not None]
    survivor.importance_manual = max(floors, default=None)
    survivor.tags = sorted(set(survivor.tags) | set(duplicate.tags))
    survivor.updated_at = duplicate.updated_at = uow.clock.now()
    uow.data_changed(tenant_id, "customer", survivor.id, "updated", {"merged": duplicate.id})
    await importance.refresh(uow, tenant_id, survivor)


async def add_interaction(
    uow: UnitOfWork,
    tenant_id: str,
    customer_id: str,
    *,
    kind: str,
    channel: str,
    summary: str,
    data: dict[str, Any],
    source: str,
    at: datetime | None,
) -> CustomerInteraction:
    customer = await _survivor(uow.session, await own(uow.session, tenant_id, customer_id))
    assert customer is not None
    row = CustomerInteraction(
        tenant_id=tenant_id, customer_id=customer.id, at=at or uow.clock.now(), kind=kind,
        channel=channel, summary=summary, data=data, source=source,
    )  # fmt: skip
    uow.session.add(row)
    await uow.session.flush()
    uow.data_changed(tenant_id, "customer_interaction", row.id, "created", {"kind": kind})
    if kind == PURCHASE:  # the customer's yearly spend moved; nothing else changes facts
        await importance.refresh(uow, tenant_id, customer)
    return row


async def own(session: AsyncSession, tenant_id: str, customer_id: str) -> Customer:
    row = await session.get(Customer, customer_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("customer")
    return row
