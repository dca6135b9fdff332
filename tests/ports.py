"""Ports for the servers and peers a test starts, drawn where nothing else takes them.

A port the kernel hands out for `bind(("127.0.0.1", 0))` comes from its ephemeral
range, the range every outgoing TCP connection and UDP client also draws its local port
from. Between a probe and the server's own bind, another socket can take that port. A
probe of one protocol also says nothing about the other. CI once failed this way: a
UDP probe found 42441 free, and uvicorn then could not bind TCP 42441.

So ports are drawn at random above the ephemeral range (the kernel never assigns them on
its own) and must be free for both UDP and TCP, since SIP listens on both. SIPp's media
ports come from 12000-19999: below the ephemeral range, and apart from the media
engine's default RTP range (20000-29999) and the ranges `tests/e2e/serve` gives servers
(30000-32767).
"""

import secrets
import socket
from pathlib import Path

HOST = "127.0.0.1"
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def bindable(kind: socket.SocketKind, port: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _above_ephemeral() -> range:
    try:
        high = int(_EPHEMERAL.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        high = 60999  # Linux's default
    return range(high + 1, 65536)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1, outside the ephemeral range."""
    pool = _above_ephemeral()
    if len(pool) >= 1000:
        for _ in range(200):
            port = pool[secrets.randbelow(len(pool))]
            if bindable(socket.SOCK_DGRAM, port) and bindable(socket.SOCK_STREAM, port):
                return port
    # An ephemeral range reaching up to 65535 leaves nothing above it: take the
    # kernel's choice, still checked for both protocols.
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if bindable(socket.SOCK_STREAM, port):
            return port
    raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")


def free_media_port() -> int:
    """An even UDP port for SIPp's media with the three above it free: SIPp binds the
    port and port+2 (audio and video), the server sends RTCP to port+1."""
    for _ in range(200):
        port = 12000 + 4 * secrets.randbelow(2000)
        if all(bindable(socket.SOCK_DGRAM, p) for p in range(port, port + 4)):
            return port
    raise RuntimeError("no free media port in 12000-19999")


def listening_socket() -> socket.socket:
    """A TCP socket bound and listening on 127.0.0.1, for a server started in this
    process (uvicorn's `serve(sockets=...)`): the port is held from the start, so no
    other socket can take it in between."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(128)
    return sock
