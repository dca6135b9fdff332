"""The FastAPI application, built around a Platform from the composition root."""

from fastapi import FastAPI

from telportal import __version__
from telportal.api import errors, events_socket
from telportal.api.agent_routes import agent_router
from telportal.api.attachment_routes import attachment_router
from telportal.api.call_routes import call_router
from telportal.api.case_routes import case_router
from telportal.api.customer_routes import crm_settings_router, customer_router
from telportal.api.flow_routes import flow_router
from telportal.api.live_call_routes import live_call_router
from telportal.api.resource_routes import resource_router
from telportal.api.routes import health, router
from telportal.app import Platform
from telportal.crm.cases import CaseDesk
from telportal.ivr.publishing import FlowRepository
from telportal.tenancy.resources import Calls, Customers
from telportal.web import mount_web

API_PREFIX = "/api/v1"


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
    app.include_router(health)
    app.include_router(router, prefix=API_PREFIX)
    app.include_router(events_socket.router, prefix=API_PREFIX)
    # Before the generic routes, so /customers/lookup is not read as an id.
    app.include_router(customer_router(Customers()), prefix=API_PREFIX)
    app.include_router(crm_settings_router(), prefix=API_PREFIX)
    app.include_router(attachment_router(), prefix=API_PREFIX)
    for res in platform.resources.values():
        app.include_router(resource_router(res), prefix=API_PREFIX)
    app.include_router(flow_router(FlowRepository(platform.db)), prefix=API_PREFIX)
    app.include_router(call_router(Calls()), prefix=API_PREFIX)
    app.include_router(agent_router(), prefix=API_PREFIX)
    app.include_router(live_call_router(), prefix=API_PREFIX)
    app.include_router(
        case_router(platform.cases or CaseDesk(platform.db, platform.clock, platform.bus)),
        prefix=API_PREFIX,
    )
    mount_web(app)  # the pages (`/`, `/wallboard`), after the API routes
    return app
