"""Files attached to cases: stored whole and synced before they are acknowledged.

An upload is streamed to a temporary file in the case's folder under the data dir,
hashed as it comes, refused as soon as it passes the size limit, synced, renamed into
place, and only then recorded (with a case history entry) in one transaction. A
failed transaction removes the file again, so a listed attachment always has its
bytes and no file is left without a row.

Names are whatever the user's computer called the file, kept for display and the
download's name only; the stored file is named by the attachment's id, so no name
can reach outside its folder.
"""

import contextlib
import hashlib
import os
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from telportal.errors import Invalid, NotFound, TooLarge
from telportal.store.database import Database
from telportal.store.ids import new_id
from telportal.store.schema import Case, CaseAttachment, CaseHistory
from telportal.tenancy.roles import Scope

MAX_BYTES = 20 * 1024 * 1024
MAX_PER_CASE = 100
# Served as downloads of opaque bytes: a browser must never run them in our origin.
ACTIVE_TYPES = frozenset(
    {"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml",
     "text/javascript", "application/javascript"}
)  # fmt: skip


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


def clean_filename(raw: str) -> str:
    """The name to show: its last path part, printable, at most 255 characters."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:255] or "attachment"


def served_type(content_type: str) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    return "application/octet-stream" if base in ACTIVE_TYPES or not base else base


class CaseAttachments:
    def __init__(self, db: Database, data_dir: Path, max_bytes: int = MAX_BYTES) -> None:
        self.db = db
        self.data_dir = data_dir
        self.max_bytes = max_bytes

    async def add(
        self, scope: Scope, tenant_id: str, case_id: str, upload: Upload
    ) -> CaseAttachment:
        async with self.db.read() as session:
            case = await session.get(Case, case_id)
            if case is None or case.tenant_id != tenant_id:
                raise NotFound("case")
            count = len(
                (
                    await session.execute(
                        select(CaseAttachment.id).where(CaseAttachment.case_id == case_id)
                    )
                ).all()
            )
        if count >= MAX_PER_CASE:
            raise Invalid("file", f"a case holds at most {MAX_PER_CASE} attachments")
        attachment_id = new_id()
        relative = Path("attachments") / tenant_id / case_id / attachment_id
        final = self.data_dir / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_suffix(".part")
        digest = hashlib.sha256()
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in upload.chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise TooLarge(f"the file is over {self.max_bytes // (1024 * 1024)} MB")
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if size == 0:
                raise Invalid("file", "the file is empty")
            partial.rename(final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        try:
            async with self.db.write(scope) as uow:
                row = await uow.session.get(Case, case_id)
                if row is None or row.tenant_id != tenant_id:
                    raise NotFound("case")
                now = uow.clock.now()
                attachment = CaseAttachment(
                    id=attachment_id, tenant_id=tenant_id, case_id=case_id,
                    filename=clean_filename(upload.filename),
                    content_type=(upload.content_type or "application/octet-stream")[:100],
                    size=size, sha256=digest.hexdigest(), stored_as=str(relative),
                    uploaded_by=scope.actor_name or "", created_at=now,
                )  # fmt: skip
                uow.session.add(attachment)
                # Every change is in the case's history; the state stays what it was.
                row.version += 1
                uow.session.add(
                    CaseHistory(
                        tenant_id=tenant_id, case_id=case_id, version=row.version, at=now,
                        actor=scope.actor_name or "", event="attachment",
                        from_state=row.state, to_state=row.state,
                        details={"attachment_id": attachment_id, "filename": attachment.filename,
                                 "size": size},
                    )
                )  # fmt: skip
                uow.data_changed(tenant_id, "case", case_id, "updated",
                                 {"attachment": attachment.filename})  # fmt: skip
                await uow.session.flush()
            return attachment
        except BaseException:
            with contextlib.suppress(OSError):
                final.unlink()
            raise

    async def list(self, tenant_id: str, case_id: str) -> list[CaseAttachment]:
        async with self.db.read() as session:
            case = await session.get(Case, case_id)
            if case is None or case.tenant_id != tenant_id:
                raise NotFound("case")
            rows = await session.execute(
                select(CaseAttachment)
                .where(CaseAttachment.case_id == case_id, CaseAttachment.tenant_id == tenant_id)
                .order_by(CaseAttachment.created_at, CaseAttachment.id)
            )
            return list(rows.scalars())

    async def get(
        self, tenant_id: str, case_id: str, attachment_id: str
    ) -> tuple[CaseAttachment, Path]:
        async with self.db.read() as session:
            row = await session.get(CaseAttachment, attachment_id)
        if row is None or row.tenant_id != tenant_id or row.case_id != case_id:
            raise NotFound("attachment")
        return row, self.data_dir / row.stored_as
