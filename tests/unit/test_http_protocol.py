"""A response's head and body, written separately by uvicorn, leave in one send; what
ends or hands over the connection sends what is pending first."""

import asyncio
from typing import Any

import httpx
import uvicorn

from telportal.api.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.events: list[str] = []
        self.closing = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def write_eof(self) -> None:
        self.events.append("eof")

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.events.append("set_protocol")
        self.protocol = protocol

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8080) if name == "sockname" else default


async def test_writes_of_one_turn_leave_together_at_its_end() -> None:
    real = RecordingTransport()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"HTTP/1.1 201 Created\r\n\r\n")
    t.write(b"")  # nothing to send is not a send
    t.write(memoryview(b'{"id":'))
    t.writelines([b"1", b"}"])
    assert real.sent == [] and t.get_write_buffer_size() == 7 + 32
    await asyncio.sleep(0)
    assert real.sent == [b'HTTP/1.1 201 Created\r\n\r\n{"id":1}']
    t.write(b"next")
    await asyncio.sleep(0)
    assert real.sent[1:] == [b"next"]  # a later turn: a send of its own
    assert t.get_extra_info("sockname") == ("127.0.0.1", 8080)  # the rest is the transport's


async def test_close_eof_and_handover_send_first_abort_drops() -> None:
    real = RecordingTransport()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"a")
    t.write_eof()
    t.write(b"b")
    t.set_protocol(asyncio.Protocol())
    t.write(b"c")
    t.close()
    assert real.sent == [b"a", b"b", b"c"]
    assert real.events == ["eof", "set_protocol", "close"]
    await asyncio.sleep(0)
    assert real.sent == [b"a", b"b", b"c"]  # nothing left for the end of the turn

    dropped = RecordingTransport()
    t = CoalescingTransport(dropped, asyncio.get_running_loop())
    t.write(b"never")
    t.abort()
    await asyncio.sleep(0)
    assert dropped.sent == [] and dropped.events == ["abort"]


async def test_a_write_after_the_peer_went_is_dropped() -> None:
    real = RecordingTransport()
    t = CoalescingTransport(real, asyncio.get_running_loop())
    t.write(b"late")
    real.closing = True  # the connection was lost meanwhile
    await asyncio.sleep(0)
    assert real.sent == []


async def test_uvicorn_answers_through_it(unused_tcp_port: int) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await receive()
        body = b'{"ok":true}'
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=unused_tcp_port,
        http=CoalescingHttpToolsProtocol,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):  # up to 5 s to listen
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        async with httpx.AsyncClient() as client:
            for _ in range(3):  # keep-alive: the same connection answers again
                r = await client.post(f"http://127.0.0.1:{unused_tcp_port}/x", content=b"{}")
                assert (r.status_code, r.json()) == (201, {"ok": True})
    finally:
        server.should_exit = True
        await serving
