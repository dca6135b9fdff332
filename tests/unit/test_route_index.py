"""The route index picks the route a full scan would pick, and only tries the likely ones."""

import httpx
from fastapi import FastAPI, WebSocket
from starlette.routing import BaseRoute, Match

from telportal.api.route_index import RouteIndex


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/customers/lookup")
    async def lookup() -> str:
        return "lookup"

    @app.get("/api/v1/customers/{customer_id}")
    async def customer(customer_id: str) -> str:
        return f"customer {customer_id}"

    @app.post("/api/v1/cases")
    async def open_case() -> str:
        return "opened"

    @app.get("/api/v1/{resource}/count")
    async def count(resource: str) -> str:
        return f"count of {resource}"

    @app.get("/api/v1/cases/{case_id}")
    async def case(case_id: str) -> str:
        return f"case {case_id}"

    @app.websocket("/api/v1/events")
    async def events(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    @app.get("/health")
    async def health() -> str:
        return "ok"

    app.router.routes.insert(0, RouteIndex("/api/v1", app.router.routes))
    return app


async def _get(app: FastAPI, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t.test") as c:
        return await c.request(method, path)


async def test_the_first_route_in_order_wins_as_in_a_full_scan() -> None:
    app = _app()
    assert (await _get(app, "GET", "/api/v1/customers/lookup")).json() == "lookup"
    assert (await _get(app, "GET", "/api/v1/customers/c-1")).json() == "customer c-1"
    # A parameter in the first segment comes before a later literal route: it wins,
    # as it would in the plain scan.
    assert (await _get(app, "GET", "/api/v1/cases/count")).json() == "count of cases"
    assert (await _get(app, "GET", "/api/v1/cases/7")).json() == "case 7"
    assert (await _get(app, "GET", "/api/v1/queues/count")).json() == "count of queues"


async def test_other_method_is_405_unknown_is_404_and_outside_paths_still_work() -> None:
    app = _app()
    wrong = await _get(app, "DELETE", "/api/v1/cases")
    assert wrong.status_code == 405
    assert (await _get(app, "POST", "/api/v1/cases")).json() == "opened"
    assert (await _get(app, "GET", "/api/v1/nothing/here")).status_code == 404
    assert (await _get(app, "GET", "/health")).json() == "ok"


def test_it_tries_only_the_routes_whose_first_segment_can_match() -> None:
    tried: list[str] = []

    class Spy(BaseRoute):
        def __init__(self, path: str) -> None:
            self.path = path

        def matches(self, scope: dict[str, object]) -> tuple[Match, dict[str, object]]:
            tried.append(self.path)
            return Match.NONE, {}

    routes: list[BaseRoute] = [
        Spy(p) for p in ("/api/v1/a", "/api/v1/{x}/y", "/api/v1/b/c", "/api/v1/b", "/other")
    ]
    index = RouteIndex("/api/v1", routes)
    scope = {"type": "http", "path": "/api/v1/b/c", "method": "GET", "root_path": ""}
    assert index.matches(scope) == (Match.NONE, {})
    assert tried == ["/api/v1/{x}/y", "/api/v1/b/c", "/api/v1/b"]
    tried.clear()
    index.matches({**scope, "path": "/elsewhere"})
    assert tried == []


def test_websocket_routes_are_found_through_the_index() -> None:
    app = _app()
    index = app.router.routes[0]
    assert isinstance(index, RouteIndex)
    scope = {"type": "websocket", "path": "/api/v1/events", "root_path": ""}
    match, child = index.matches(scope)
    assert match is Match.FULL
    assert getattr(child["telportal.route"], "path", None) == "/api/v1/events"
