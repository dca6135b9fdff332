"""The FastAPI application, built around a Platform from the composition root."""

from fastapi import APIRouter, FastAPI

from telportal import __version__
from telportal.api import errors, events_socket
from telportal.api.agent_routes import agent_router
from telportal.api.attachment_routes import attachment_router
from telportal.api.call_routes import call_router
from telportal.api.case_routes import case_router
from telportal.api.customer_routes import crm_settings_router, customer_router
from telportal.api.flow_routes import flow_router
from telportal.api.live_call_routes import live_call_router
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import resource_router
from telportal.api.route_index import RouteIndex
from telportal.api.routes import health, router
from telportal.app import Platform
from telportal.crm.cases import CaseDesk
from telportal.ivr.publishing import FlowRepository
from telportal.tenancy.resources import Calls, Customers
from telportal.web import mount_web

__all__ = ["API_PREFIX", "create_api"]


def create_api(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="Telportal API",
        version=__version__,
        description=(
            "Configuration, call control and data of the Telportal contact center. "
            "Authenticate with a bearer token from `POST /api/v1/auth/token` or an API key. "
            "Errors are JSON objects with `code` and `message`. Writes accept an "
            "`Idempotency-Key` header: a retry with the same key returns the first answer."
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.platform = platform
    errors.install(app)
    routers: list[APIRouter] = [
        health,
        router,
        events_socket.router,
        # Before the generic routes, so /customers/lookup is not read as an id.
        customer_router(Customers()),
        crm_settings_router(),
        attachment_router(),
        *(resource_router(res) for res in platform.resources.values()),
        flow_router(FlowRepository(platform.db)),
        call_router(Calls()),
        agent_router(),
        live_call_router(),
        case_router(platform.cases or CaseDesk(platform.db, platform.clock, platform.bus)),
    ]
    for sub in routers:
        _add_flat(app, sub)
    app.router.routes.insert(0, RouteIndex(API_PREFIX, app.router.routes))
    mount_web(app)  # the pages (`/`, `/wallboard`), after the API routes
    return app


def _add_flat(app: FastAPI, sub: APIRouter) -> None:
    """Put `sub`'s routes straight into the app's route list.

    Every router builds its full paths itself (`API_PREFIX`), so nothing needs
    `include_router`. Since FastAPI 0.140 an included router stays a nested
    router that is matched twice per request with per-route bookkeeping: with
    about 130 routes that cost ~2 ms of CPU on every request to the last ones
    (a case creation), more than the transaction itself. Flat, the routes are
    plain Starlette routes that `RouteIndex` can pick from by first segment.
    """
    app.router.routes.extend(sub.routes)
