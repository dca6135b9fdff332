"""The email outbox in the store: notices are stored, claimed one at a time, and settled.

Storing is idempotent: the unique key (case, kind, person) makes a second store of the
same notice a no-op on both SQLite and PostgreSQL (INSERT ... ON CONFLICT DO NOTHING),
so the bus event and the start-up catch-up may both store an alarm's emails. A claim
counts the try and hides the row for the lease, and on PostgreSQL skips rows another
process holds, so two senders on one database never send one row at the same time.
"""

import email
import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.notify.delivery import AfterAttempt, OutboxState, RetryPolicy
from telportal.notify.messages import Notice
from telportal.store.database import Database
from telportal.store.ids import new_id
from telportal.store.schema import EmailOutbox
from telportal.tenancy.roles import Scope

SCOPE = Scope.system("email")


@dataclass(frozen=True, slots=True)
class Claimed:
    id: str
    tenant_id: str
    user_id: str
    attempts: int
    message: EmailMessage


async def store(session: AsyncSession, notices: list[Notice], now: datetime) -> int:
    """Add the notices not stored yet; how many were new."""
    if not notices:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(EmailOutbox)
        .values(
            [
                {
                    "id": new_id(),
                    "tenant_id": n.tenant_id,
                    "case_id": n.case_id,
                    "kind": n.kind,
                    "user_id": n.user_id,
                    "to_address": n.to_address,
                    "language": n.language,
                    "subject": n.subject,
                    "message": n.message.as_string(),
                    "state": OutboxState.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for n in notices
            ]
        )
        .on_conflict_do_nothing(index_elements=["case_id", "kind", "user_id"])
        .returning(EmailOutbox.id)
    )
    return len((await session.execute(stmt)).all())


def parse(text: str) -> EmailMessage:
    msg = email.message_from_string(text, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)  # the default policy's factory
    return msg


class Outbox:
    def __init__(self, db: Database, policy: RetryPolicy) -> None:
        self.db = db
        self.policy = policy

    async def claim(self) -> Claimed | None:
        """The pending row due soonest, with its try counted; None when nothing is due."""
        async with self.db.write(SCOPE) as uow:
            now = uow.clock.now()
            row = (
                await uow.session.execute(
                    select(EmailOutbox)
                    .where(
                        EmailOutbox.state == OutboxState.PENDING.value,
                        EmailOutbox.next_attempt_at <= now,
                    )
                    .order_by(EmailOutbox.next_attempt_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            row.attempts += 1
            row.next_attempt_at = now + self.policy.lease
            return Claimed(row.id, row.tenant_id, row.user_id, row.attempts, parse(row.message))

    async def settle(self, row_id: str, result: AfterAttempt) -> None:
        async with self.db.write(SCOPE) as uow:
            row = await uow.session.get(EmailOutbox, row_id)
            if row is None:  # its case or person was deleted meanwhile
                return
            row.state = result.state.value
            row.last_error = result.last_error
            row.sent_at = result.sent_at
            if result.next_attempt_at is not None:
                row.next_attempt_at = result.next_attempt_at

    async def counts(self) -> dict[str, int]:
        """Rows by state, for health checks and tests."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(EmailOutbox.state, func.count()).group_by(EmailOutbox.state)
            )
            return {state: int(n) for state, n in rows.all()}
