"""A real DNS server for tests: Debian's dnsmasq, serving only the records a test gives.

    async with dnsmasq(
        "--host-record=sip1.example.test,192.0.2.1",
        "--srv-host=_sip._udp.example.test,sip1.example.test,5060,10,0",
    ) as server:
        resolver = DnsResolver([server.nameserver])

The records are dnsmasq's own options (`--host-record`, `--srv-host`, `--naptr-record`,
see dnsmasq(8)). dnsmasq runs in the foreground on 127.0.0.1 at a port of its own,
reads no configuration, hosts file or upstream resolver, and is the authority for
`domain`: any other name there is NXDOMAIN, and names outside it are REFUSED. Its
records carry `ttl` so that answers can be cached.

As root, dnsmasq drops to the user `nobody` once its port is bound, which is all it
needs; no pid file is written (`--pid-file=` with no path).
"""

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.message
import pytest

from tests.ports import HOST, free_port

SBIN_DNSMASQ = "/usr/sbin/dnsmasq"
INSTALL_HINT = "apt-get install dnsmasq-base (scripts/install-system-tools.sh does it)"
START_WAIT = 10.0


def dnsmasq_binary() -> str:
    """The dnsmasq to run; a test without it fails, naming the package."""
    found = shutil.which("dnsmasq")
    if found is None and os.access(SBIN_DNSMASQ, os.X_OK):
        found = SBIN_DNSMASQ
    if found is None:
        pytest.fail(f"the DNS tests need Debian's dnsmasq as a real DNS server: {INSTALL_HINT}")
    return found


@dataclass
class Dnsmasq:
    host: str
    port: int
    process: asyncio.subprocess.Process

    @property
    def nameserver(self) -> str:
        """The server as DnsResolver takes it."""
        return f"{self.host}:{self.port}"

    async def stop(self) -> str:
        """Stop the server (once; later calls do nothing) and return what it logged."""
        if self.process.returncode is None:
            self.process.terminate()
        try:
            async with asyncio.timeout(START_WAIT):
                _, log = await self.process.communicate()
        except TimeoutError:
            self.process.kill()
            _, log = await self.process.communicate()
        return log.decode(errors="replace") if log else ""


@contextlib.asynccontextmanager
async def dnsmasq(
    *records: str, domain: str = "example.test", ttl: int = 300
) -> AsyncIterator[Dnsmasq]:
    """dnsmasq serving records for domain, stopped on exit."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        dnsmasq_binary(),
        "--no-daemon",
        f"--port={port}",
        f"--listen-address={HOST}",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file=",
        f"--local=/{domain}/",
        f"--local-ttl={ttl}",
        *records,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    server = Dnsmasq(HOST, port, process)
    try:
        await _answering(server, domain)
        yield server
    finally:
        await server.stop()


async def _answering(server: Dnsmasq, domain: str) -> None:
    """Return once the server answers a query; fail with its log if it exits or
    never does."""
    query = dns.message.make_query(domain, "SOA")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_WAIT
    while loop.time() < deadline:
        if server.process.returncode is not None:
            break
        try:
            await dns.asyncquery.udp(query, server.host, timeout=0.05, port=server.port)
        except dns.exception.Timeout:
            pass  # sent before the port was bound: ask again
        except OSError:
            await asyncio.sleep(0.05)
        else:
            return
    log = await server.stop()
    pytest.fail(f"dnsmasq did not answer on {server.nameserver}:\n{log}")
