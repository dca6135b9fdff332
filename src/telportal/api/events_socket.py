"""Live events over the WebSocket `/api/v1/events`.

A client authenticates with `Authorization: Bearer ...` or, since browsers cannot
set headers on a WebSocket, `?token=...`. It then receives, as JSON text frames,
every event of its own tenant (platform operators: of every tenant), optionally
narrowed with `?topics=config,call`. Events addressed to one user (a screen pop)
go to that user's sockets only, written directly by `AgentDesktops` so the call
layer knows they arrived before the agent's phone rings. With `?ack=1` the client
acknowledges each frame that carries a `delivery` id by sending
`{"type": "ack", "delivery": ...}` once it shows it; the phone then rings only after
that (or after 1 s at most). When the client reads too slowly and events are
dropped, it receives `{"type": "gap", "dropped": N}` and should reload what it
shows from the REST API.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from telportal.api.paths import API_PREFIX
from telportal.app import Platform
from telportal.errors import Unauthorized
from telportal.events import Subscription
from telportal.events.wire import event_json

router = APIRouter(prefix=API_PREFIX)

CLOSE_UNAUTHORIZED = 4401  # HTTP 401, in the private range of close codes


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
    lock = asyncio.Lock()  # one frame at a time, whichever task writes it

    async def send(text: str) -> None:
        async with lock:
            await ws.send_text(text)

    acks = ws.query_params.get("ack") == "1"
    detach = (
        platform.desktops.attach(scope.tenant_id, scope.actor_id, send, acks=acks)
        if scope.actor_kind == "user" and scope.actor_id and scope.tenant_id
        else None
    )
    try:
        with platform.bus.subscribe() as sub:
            sender = asyncio.create_task(_forward(send, sub, scope.tenant_id, topics))
            # Reading is how a disconnect is noticed while no events flow.
            reader = asyncio.create_task(_read(ws, platform))
            _, pending = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        if detach is not None:
            detach()


async def _read(ws: WebSocket, platform: Platform) -> None:
    """Until the socket closes: the client's acknowledgements of screen pops
    (`{"type": "ack", "delivery": "..."}`); anything else it sends is ignored."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if not text or len(text) > 200:
            continue
        try:
            frame = json.loads(text)
        except ValueError:
            continue
        if isinstance(frame, dict) and frame.get("type") == "ack":
            delivery = frame.get("delivery")
            if isinstance(delivery, str):
                platform.desktops.acked(delivery)


async def _forward(
    send: Callable[[str], Awaitable[None]],
    sub: Subscription,
    tenant_id: str | None,
    topics: set[str],
) -> None:
    seen_dropped = 0
    try:
        while True:
            event = await sub.get()
            if sub.dropped != seen_dropped:
                await send(json.dumps({"type": "gap", "dropped": sub.dropped - seen_dropped}))
                seen_dropped = sub.dropped
            if tenant_id is not None and event.tenant_id != tenant_id:
                continue
            if event.recipient is not None:
                continue  # delivered to its one user by AgentDesktops, never broadcast
            if topics and event.family not in topics:
                continue
            await send(json.dumps(event_json(event), default=str))
    except WebSocketDisconnect:
        return
