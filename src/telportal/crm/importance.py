"""Customers' importance in the store: the tenant's rules applied to each customer's facts.

The rule is pure (`telportal.cases.customers.importance`: the highest matching rule
wins, a level set by hand is a floor). This adapter gathers each customer's facts
(the hand-set level, the tags, and the yearly spend: `data.amount` of the `purchase`
interactions of the last 365 days by the injected clock, those of records merged into
the customer included), stores the effective level in `customers.importance` with
what gave it (`importance_rule`: a rule's id, "manual" or ""), and records each change
of level as any change to a customer is recorded: an audit entry and a `data` event;
and, for people reading the customer's history, an `importance` entry on the timeline.

It runs inside the write that changed the facts or the rules, never after it, so no
commit ever leaves a level stale (decision 0012):
- `refresh`: one customer, when it is created or changed (its hand-set level or
  tags), looked up from the enterprise's system (that is a creation), merged, or
  when a purchase is recorded for it;
- `refresh_tenant`: every customer of one tenant, when one of its rules is created,
  changed or deleted.

Only a tenant's own rules and customers are ever read or written: every query names
the tenant, and the pure rule refuses facts and rules of another tenant.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.cases import customers as core
from telportal.clock import Clock
from telportal.errors import Invalid
from telportal.store.database import Database
from telportal.store.schema import Customer, CustomerInteraction, ImportanceRule
from telportal.store.unit_of_work import UnitOfWork
from telportal.tasks import stop_task
from telportal.tenancy.roles import Scope

log = logging.getLogger(__name__)

# Customers read, computed and written per round of a tenant-wide refresh. Small
# enough that a round (~10-20 ms of SQLite and Python on the loop's thread, decision
# 0011) stalls calls' media no longer than a packet or two, and that memory stays flat
# however many customers the tenant has; the loop runs other tasks between rounds.
BATCH = 100
# Ids per `IN (...)`: under the 999 host parameters old SQLite builds allow.
MAX_IN = 900
# Merges are followed this deep, as `crm.store` follows them for lookups.
MAX_MERGE_CHAIN = 10
TIMELINE_KIND = "importance"
# How often purchases that left the yearly window are looked for (`ImportanceSweeper`),
# and how far back the first look after a start reaches.
SWEEP_SECONDS = 3600.0
FIRST_SWEEP_LOOKBACK = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class Rules:
    """A tenant's enabled rules, in the order they were made (the first of equals wins)."""

    tenant_id: str
    rules: tuple[core.ImportanceRule, ...]
    names: Mapping[str, str]

    @property
    def need_spend(self) -> bool:
        """Whether any rule looks at spend: if none does, purchases are never read."""
        return any(r.min_yearly_spend is not None for r in self.rules)


async def load_rules(session: AsyncSession, tenant_id: str) -> Rules:
    rows = (
        await session.execute(
            select(ImportanceRule)
            .where(ImportanceRule.tenant_id == tenant_id, ImportanceRule.enabled.is_(True))
            .order_by(ImportanceRule.created_at, ImportanceRule.id)
        )
    ).scalars()
    rules, names = [], {}
    for row in rows:
        rules.append(
            core.ImportanceRule(
                tenant_id, row.id, row.level, row.min_yearly_spend, frozenset(row.any_tags)
            )
        )
        names[row.id] = row.name
    return Rules(tenant_id, tuple(rules), names)


@dataclass(frozen=True, slots=True)
class Stored:
    """What a customer's row holds about importance, and the facts it keeps itself."""

    customer_id: str
    level: int
    rule_id: str
    manual: int | None
    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class LevelChange:
    customer_id: str
    before: int
    after: int
    rule_id: str


async def refresh(uow: UnitOfWork, tenant_id: str, customer: Customer) -> LevelChange | None:
    """Recompute one customer (a loaded row, changed in place); the change of level, if any."""
    if customer.tenant_id != tenant_id:
        raise Invalid("customer", "the customer belongs to another tenant")
    # The row locked before the rules are read (PostgreSQL; SQLite has one writer): a
    # rule change walking the tenant locks its batches too, so whichever commits
    # second computes with what the first committed.
    await uow.session.execute(
        select(Customer.id).where(Customer.id == customer.id).with_for_update()
    )
    rules = await load_rules(uow.session, tenant_id)
    stored = _stored(customer.id, customer.importance, customer.importance_rule,
                     customer.importance_manual, customer.tags)  # fmt: skip
    new = (await _compute(uow.session, rules, [stored], uow.clock.now()))[customer.id]
    if (new.level, new.rule_id) == (stored.level, stored.rule_id):
        return None
    customer.importance, customer.importance_rule = new.level, new.rule_id
    customer.updated_at = uow.clock.now()
    if new.level == stored.level:  # another rule gives the same level: nothing to tell
        return None
    return _record(uow, rules, stored, new)


async def refresh_tenant(uow: UnitOfWork, tenant_id: str) -> list[LevelChange]:
    """Recompute every customer of the tenant (merged duplicates are left as they are:
    lookups lead to the record they went into). In the caller's transaction, in
    batches of `BATCH` by id; only customers whose level or rule moves are written."""
    rules = await load_rules(uow.session, tenant_id)
    now = uow.clock.now()
    changes: list[LevelChange] = []
    after = ""
    while True:
        rows = (
            await uow.session.execute(
                _facts_of(tenant_id, Customer.id > after).order_by(Customer.id).limit(BATCH)
            )
        ).all()
        if not rows:
            return changes
        batch = [_stored(*row) for row in rows]
        changes.extend(await _apply(uow, rules, batch, now))
        after = batch[-1].customer_id
        # SQLite statements never yield (they run inline): let calls and requests run.
        await asyncio.sleep(0)


def _facts_of(
    tenant_id: str, *where: ColumnElement[bool]
) -> Select[str, int, str, int | None, list[str]]:
    """What the rows of the tenant's customers (merged duplicates left out) matching
    `where` hold about importance, locked (see `refresh`). Plain columns, not ORM
    objects: nothing piles up in the session's identity map, however many customers
    the tenant has."""
    return (
        select(
            Customer.id,
            Customer.importance,
            Customer.importance_rule,
            Customer.importance_manual,
            Customer.tags,
        )
        .where(Customer.tenant_id == tenant_id, Customer.merged_into.is_(None), *where)
        .with_for_update()
    )


async def _apply(
    uow: UnitOfWork, rules: Rules, batch: Sequence[Stored], now: datetime
) -> list[LevelChange]:
    """Compute a batch of customers and write those whose level or rule moves."""
    computed = await _compute(uow.session, rules, batch, now)
    changes: list[LevelChange] = []
    writes: list[dict[str, Any]] = []
    for stored in batch:
        new = computed[stored.customer_id]
        if (new.level, new.rule_id) == (stored.level, stored.rule_id):
            continue
        writes.append({"id": stored.customer_id, "importance": new.level,
                       "importance_rule": new.rule_id, "updated_at": now})  # fmt: skip
        if new.level != stored.level:
            changes.append(_record(uow, rules, stored, new))
    if writes:  # one UPDATE by primary key for the batch, executed as executemany
        await uow.session.execute(update(Customer), writes)
    return changes


async def refresh_aged(
    uow: UnitOfWork, tenant_id: str, since: datetime, until: datetime
) -> list[LevelChange]:
    """Recompute the customers one of whose purchases left the yearly window between
    `since` and `until` (spend only ever falls by time passing: a purchase ageing out).
    Nothing when none of the tenant's rules looks at spend."""
    rules = await load_rules(uow.session, tenant_id)
    if not rules.need_spend or until <= since:
        return []
    aged = (
        await uow.session.execute(
            select(CustomerInteraction.customer_id)
            .where(
                CustomerInteraction.tenant_id == tenant_id,
                CustomerInteraction.kind == core.PURCHASE,
                CustomerInteraction.at > since - core.SPEND_WINDOW,
                CustomerInteraction.at <= until - core.SPEND_WINDOW,
            )
            .distinct()
        )
    ).scalars()
    ids = sorted(await _survivors(uow.session, tenant_id, list(aged)))
    changes: list[LevelChange] = []
    for chunk in _chunks(ids):
        for start in range(0, len(chunk), BATCH):
            facts = _facts_of(tenant_id, Customer.id.in_(chunk[start : start + BATCH]))
            rows = (await uow.session.execute(facts)).all()
            batch = [_stored(*row) for row in rows]
            changes.extend(await _apply(uow, rules, batch, until))
            await asyncio.sleep(0)  # as in `refresh_tenant`
    return changes


async def _survivors(session: AsyncSession, tenant_id: str, customer_ids: list[str]) -> set[str]:
    """The records the given customers live on: a duplicate's purchases count for the
    record it was merged into (followed up to `MAX_MERGE_CHAIN` merges)."""
    survivors: set[str] = set()
    frontier = customer_ids
    for _ in range(MAX_MERGE_CHAIN):
        merged: list[str] = []
        for chunk in _chunks(frontier):
            rows = await session.execute(
                select(Customer.id, Customer.merged_into).where(
                    Customer.tenant_id == tenant_id, Customer.id.in_(chunk)
                )
            )
            for customer_id, into in rows:
                if into is None:
                    survivors.add(customer_id)
                else:
                    merged.append(into)
        if not merged:
            break
        frontier = merged
    return survivors


class ImportanceSweeper:
    """Lowers levels that rules gave for spend once the purchases behind them are more
    than a year old: every `interval` seconds, the customers with a purchase that left
    the window since the last sweep are recomputed (`refresh_aged`), tenant by tenant,
    each in a transaction of its own.

    The time of the last sweep is not stored: the first sweep after a start looks back
    `FIRST_SWEEP_LOOKBACK`. A site down for longer leaves such a level until that
    customer's next recompute (any change to them, or to the tenant's rules)."""

    def __init__(self, db: Database, clock: Clock, interval: float = SWEEP_SECONDS) -> None:
        self.db = db
        self.clock = clock
        self.interval = interval
        self._last: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sweep_due()
        self._task = asyncio.create_task(self._run(), name="importance sweep")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    async def sweep_due(self) -> list[LevelChange]:
        """One sweep, from the last one (or the look-back) to now; the changes made."""
        now = self.clock.now()
        since = self._last or now - FIRST_SWEEP_LOOKBACK
        async with self.db.read() as session:
            tenants = (
                await session.execute(
                    select(ImportanceRule.tenant_id)
                    .where(
                        ImportanceRule.enabled.is_(True),
                        ImportanceRule.min_yearly_spend.is_not(None),
                    )
                    .distinct()
                )
            ).scalars()
            tenant_ids = sorted(tenants)
        changes: list[LevelChange] = []
        for tenant_id in tenant_ids:
            async with self.db.write(Scope.system("importance")) as uow:
                changes.extend(await refresh_aged(uow, tenant_id, since, now))
        self._last = now
        return changes

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sweep_due()
            except Exception:
                log.exception("importance sweep")


def _stored(
    customer_id: str, level: int, rule_id: str, manual: int | None, tags: Sequence[str] | None
) -> Stored:
    return Stored(customer_id, level, rule_id, manual, frozenset(tags or ()))


async def _compute(
    session: AsyncSession, rules: Rules, customers: Sequence[Stored], now: datetime
) -> dict[str, core.Importance]:
    tenant_id = rules.tenant_id
    spends: dict[str, Decimal] = {}
    if rules.need_spend:
        spends = await _yearly_spends(session, tenant_id, [c.customer_id for c in customers], now)
    return {
        c.customer_id: core.importance(
            tenant_id,
            core.CustomerFacts(
                tenant_id, c.customer_id, spends.get(c.customer_id, Decimal(0)), c.tags, c.manual
            ),
            rules.rules,
        )
        for c in customers
    }


async def _yearly_spends(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str], now: datetime
) -> dict[str, Decimal]:
    """Each customer's yearly spend, their merged duplicates' purchases included."""
    owner = await _owners(session, tenant_id, customer_ids)
    purchases: dict[str, list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    since = now - core.SPEND_WINDOW
    for chunk in _chunks(list(owner)):
        # The tenant is checked on each row rather than in the WHERE: given both, SQLite
        # picks the index on tenant_id and reads all the tenant's interactions for each
        # batch, where the index on (customer_id, at) reads only these customers'.
        rows = await session.execute(
            select(CustomerInteraction.tenant_id, CustomerInteraction.customer_id,
                   CustomerInteraction.at, CustomerInteraction.data)
            .where(
                CustomerInteraction.customer_id.in_(chunk),
                CustomerInteraction.at > since,
                CustomerInteraction.kind == core.PURCHASE,
            )
        )  # fmt: skip
        for row_tenant, customer_id, at, data in rows:
            if row_tenant == tenant_id:
                purchases[owner[customer_id]].append((at, data))
    return {cid: core.yearly_spend(items, now) for cid, items in purchases.items()}


async def _owners(
    session: AsyncSession, tenant_id: str, customer_ids: Sequence[str]
) -> dict[str, str]:
    """Each customer, and each record merged into one of them (transitively), mapped to
    the customer it belongs to."""
    owner = {cid: cid for cid in customer_ids}
    frontier = list(customer_ids)
    for _ in range(MAX_MERGE_CHAIN):
        found: list[tuple[str, str]] = []
        for chunk in _chunks(frontier):
            # The tenant checked on each row, for the index on merged_into (as above).
            rows = await session.execute(
                select(Customer.tenant_id, Customer.id, Customer.merged_into).where(
                    Customer.merged_into.in_(chunk)
                )
            )
            found.extend(
                (dup, into) for tid, dup, into in rows if tid == tenant_id and into is not None
            )
        if not found:
            break
        for dup, into in found:
            owner[dup] = owner[into]
        frontier = [dup for dup, _ in found]
    return owner


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), MAX_IN):
        yield ids[start : start + MAX_IN]


def _record(uow: UnitOfWork, rules: Rules, stored: Stored, new: core.Importance) -> LevelChange:
    """Audit and announce a change of level, and put it on the customer's timeline."""
    tenant_id, customer_id = rules.tenant_id, stored.customer_id
    uow.data_changed(
        tenant_id,
        "customer",
        customer_id,
        "updated",
        {
            "before": {"importance": stored.level, "importance_rule": stored.rule_id},
            "after": {"importance": new.level, "importance_rule": new.rule_id},
        },
    )
    rule_name = rules.names.get(new.rule_id, "")
    if new.rule_id == "manual":
        why = "set by hand"
    elif rule_name:
        why = f"rule {rule_name}"
    else:
        why = "no rule applies"
    uow.add_row(
        CustomerInteraction,
        tenant_id=tenant_id,
        customer_id=customer_id,
        at=uow.clock.now(),
        kind=TIMELINE_KIND,
        channel="",
        summary=f"importance {stored.level} -> {new.level}: {why}"[:500],
        data={"from": stored.level, "to": new.level, "by": new.rule_id, "rule_name": rule_name},
        source=uow.scope.actor_name[:100],
    )
    return LevelChange(customer_id, stored.level, new.level, new.rule_id)
