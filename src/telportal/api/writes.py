"""Running a write for a request, with Idempotency-Key support.

A client that retries a write with the same Idempotency-Key gets the first
answer back instead of a second object. The key and the stored answer are
written in the same transaction as the change, so either both exist or
neither does. Only successful answers are stored: a failed request may be
retried with the same key once the problem is fixed.
"""

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from telportal.api.errors import ApiError
from telportal.app import Platform
from telportal.errors import Conflict
from telportal.store.schema import IdempotencyRecord
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
KEEP_FOR = timedelta(hours=24)

WriteFn = Callable[[UnitOfWork], Awaitable[BaseModel | None]]


def _replay(record: IdempotencyRecord) -> Response:
    headers = {REPLAY_HEADER: "true"}
    if record.status_code == 204:
        return Response(status_code=204, headers=headers)
    return JSONResponse(json.loads(record.body), record.status_code, headers=headers)


def _encode(result: BaseModel | None) -> Any:
    """JSON-ready data: what `jsonable_encoder` gives, without its second pass for models."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json", by_alias=True)
    return jsonable_encoder(result)


def _respond(payload: Any, status: int) -> Response:
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(payload, status)


async def run_write(
    request: Request, platform: Platform, scope: Scope, fn: WriteFn, status: int
) -> Response:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        async with platform.db.write(scope) as uow:
            result = await fn(uow)
            if not isinstance(result, BaseModel) or status == 204:
                payload = _encode(result)
            else:  # straight to JSON bytes: one pass in pydantic's core, none in Python
                body = result.model_dump_json(by_alias=True).encode()
                return Response(body, status, media_type="application/json")
        return _respond(payload, status)

    if not KEY_RE.match(key):
        raise ApiError(
            400, "bad_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters"
        )
    body = await request.body()
    digest = hashlib.sha256(
        b"\0".join([request.method.encode(), request.url.path.encode(), body])
    ).hexdigest()
    principal = scope.principal_key
    try:
        async with platform.db.write(scope) as uow:
            stored = await _find(uow, principal, key)
            if stored is not None:
                return _checked_replay(stored, digest)
            payload = _encode(await fn(uow))
            now = uow.clock.now()
            await uow.session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - KEEP_FOR)
            )
            uow.session.add(
                IdempotencyRecord(
                    principal=principal,
                    key=key,
                    method=request.method,
                    path=request.url.path,
                    request_hash=digest,
                    status_code=status,
                    body=json.dumps(payload),
                    created_at=now,
                )
            )
            await uow.session.flush()
    except (IntegrityError, Conflict) as exc:
        # A concurrent request with the same key may have committed first (on
        # PostgreSQL ours then fails on a unique index): answer with theirs.
        async with platform.db.read() as session:
            stored = (
                await session.execute(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
                    )
                )
            ).scalar_one_or_none()
        if stored is not None:
            return _checked_replay(stored, digest)
        if isinstance(exc, Conflict):
            raise
        raise ApiError(
            409, "idempotency_in_progress", "a request with this Idempotency-Key is in progress"
        ) from None
    return _respond(payload, status)


def _checked_replay(stored: IdempotencyRecord, digest: str) -> Response:
    if stored.request_hash != digest:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request",
        )
    return _replay(stored)


async def _find(uow: UnitOfWork, principal: str, key: str) -> IdempotencyRecord | None:
    q = select(IdempotencyRecord).where(
        IdempotencyRecord.principal == principal, IdempotencyRecord.key == key
    )
    return (await uow.session.execute(q)).scalar_one_or_none()
