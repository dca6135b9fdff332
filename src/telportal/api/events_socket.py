"""Live events over the WebSocket `/api/v1/events`.

A client authenticates with `Authorization: Bearer ...` or, since browsers cannot
set headers on a WebSocket, `?token=...`. It then receives, as JSON text frames,
every event of its own tenant (platform operators: of every tenant), optionally
narrowed with `?topics=config,call`. When the client reads too slowly and events
are dropped, it receives `{"type": "gap", "dropped": N}` and should reload what
it shows from the REST API.
"""

import asyncio
import dataclasses
import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from telportal.app import Platform
from telportal.errors import Unauthorized
from telportal.events import Event, Subscription

router = APIRouter()

CLOSE_UNAUTHORIZED = 4401  # HTTP 401, in the private range of close codes


def event_json(event: Event) -> dict[str, Any]:
    body: dict[str, Any] = {"type": event.family, "subject": event.subject}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        body[f.name] = value.isoformat() if isinstance(value, datetime) else value
    return body


@router.websocket("/events")
async def events(ws: WebSocket) -> None:
    platform: Platform = ws.app.state.platform
    header = ws.headers.get("authorization", "")
    bearer = header[7:] if header.lower().startswith("bearer ") else ws.query_params.get("token")
    await ws.accept()
    try:
        scope = await platform.auth.authenticate(bearer)
    except Unauthorized as exc:
        await ws.close(CLOSE_UNAUTHORIZED, exc.message)
        return
    topics = {t for t in ws.query_params.get("topics", "").split(",") if t}
    await ws.send_json({"type": "hello", "tenant_id": scope.tenant_id, "role": scope.role})
    with platform.bus.subscribe() as sub:
        sender = asyncio.create_task(_forward(ws, sub, scope.tenant_id, topics))
        # Reading is how a disconnect is noticed while no events flow.
        reader = asyncio.create_task(_until_closed(ws))
        _, pending = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _until_closed(ws: WebSocket) -> None:
    while (await ws.receive())["type"] != "websocket.disconnect":
        pass


async def _forward(
    ws: WebSocket, sub: Subscription, tenant_id: str | None, topics: set[str]
) -> None:
    seen_dropped = 0
    try:
        while True:
            event = await sub.get()
            if sub.dropped != seen_dropped:
                await ws.send_json({"type": "gap", "dropped": sub.dropped - seen_dropped})
                seen_dropped = sub.dropped
            if tenant_id is not None and event.tenant_id != tenant_id:
                continue
            if topics and event.family not in topics:
                continue
            await ws.send_text(json.dumps(event_json(event)))
    except WebSocketDisconnect:
        return
