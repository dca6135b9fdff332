"""The all-in-one server: every role of a site in one asyncio process."""

import logging

import uvicorn

from telportal.api.app import create_api
from telportal.app import Platform

log = logging.getLogger(__name__)


async def serve(platform: Platform) -> None:
    await platform.start()
    cfg = platform.config
    api = create_api(platform)
    server = uvicorn.Server(
        uvicorn.Config(
            api,
            host=cfg.http_listen.host,
            port=cfg.http_listen.port,
            log_level=cfg.log_level,
            lifespan="off",
            # Every read is bounded: slow or idle clients cannot hold a worker.
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=64 * 1024,
        )
    )
    log.info("HTTP API on http://%s/api/v1 (site %s)", cfg.http_listen, cfg.site.name)
    try:
        await server.serve()
    finally:
        await platform.close()
