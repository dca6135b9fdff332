"""The all-in-one server: every role of a site in one asyncio process."""

import asyncio
import contextlib
import gc
import logging
import resource
import signal
from collections.abc import Generator

import uvicorn

from telportal.api.app import create_api
from telportal.api.http_protocol import CoalescingHttpToolsProtocol
from telportal.app import Platform

log = logging.getLogger(__name__)

# The cyclic collector's thresholds after start-up (CPython's default: 700, 10, 10). A
# SIP call allocates thousands of objects, nearly all freed by reference counting alone;
# at 700 the collector ran every few calls and found next to nothing.
GC_THRESHOLDS = (50_000, 20, 100)


# Open files asked for when the hard limit is unlimited: Linux's default cap (nr_open).
OPEN_FILES_WANTED = 1 << 20


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; the new soft
    limit. Every call holds sockets (SIP over TCP, two per media endpoint, idle port
    pairs kept for later calls): at a common default of 1,024 a site could carry only
    a few hundred calls. The hard limit is the administrator's; it is left alone."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("open-files limit stays at %d (raising it to %d failed: %s)",
                        soft, wanted, exc)  # fmt: skip
            return soft
        log.info("open-files limit raised from %d to %d", soft, wanted)
        return wanted
    return soft


class _HttpServer(uvicorn.Server):
    """uvicorn, minus its signal handling: the platform owns shutdown.

    uvicorn re-raises SIGTERM after its own shutdown, which would kill the
    process before the rest of the platform (calls, media, the store) closes.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def http_config(platform: Platform) -> uvicorn.Config:
    cfg = platform.config
    return uvicorn.Config(
        create_api(platform),
        host=cfg.http_listen.host,
        port=cfg.http_listen.port,
        log_level=cfg.log_level,
        access_log=cfg.http_access_log,
        lifespan="off",
        http=CoalescingHttpToolsProtocol,
        # Every read is bounded: slow or idle clients cannot hold a connection.
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
    )


async def serve(platform: Platform) -> None:
    await platform.start()
    cfg = platform.config
    http = _HttpServer(http_config(platform))
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if http.should_exit:
            http.force_exit = True
        http.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    log.info("HTTP API on http://%s/api/v1 (site %s)", cfg.http_listen, cfg.site.name)
    try:
        if platform.sip is not None:
            await platform.sip.start()
        settle_garbage_collector()
        await http.serve()
        if not http.started:
            raise OSError(f"could not listen on {cfg.http_listen} for HTTP")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if platform.sip is not None:
            await platform.sip.stop()
        await platform.close()  # the media engine too
        log.info("stopped")


def settle_garbage_collector() -> None:
    """After start-up: what exists now (modules, configuration, caches) lives as long as
    the process, so it leaves the collector's generations (`gc.freeze`), and young
    collections run less often. Measured in docs/benchmarks.md (SIP section)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
