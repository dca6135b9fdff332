"""Finding a request's route by its first path segment instead of trying them all.

Starlette and FastAPI try an application's routes one by one; with about 130 API
routes and FastAPI's per-route bookkeeping that cost ~6 us a route, so ~0.8 ms of
CPU for a request to one of the last routes (a case creation), a quarter of that
request's whole cost. `RouteIndex` sits first in the application's route list and
tries only the routes that can match: those whose first segment after the prefix is
the request's, plus those whose first segment is a parameter, in their original
order, so the first match is the same route the full scan would have found.

The routes stay in the application's list after the index as well: the OpenAPI
document and `url_path_for` read them there, and a path the index does not know
(a 404, a trailing-slash redirect) falls through to the ordinary scan.
"""

from collections.abc import Sequence

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

_CHOSEN = "telportal.route"


def _first_segment(path: str, prefix: str) -> str | None:
    """The segment after `prefix` ("cases" of "/api/v1/cases/{id}"), None if outside it."""
    if not path.startswith(prefix):
        return None
    return path[len(prefix) :].partition("/")[0]


def _route_path(scope: Scope) -> str:
    """The path without the application's root path (as Starlette's routes see it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


def _is_parameter(segment: str) -> bool:
    return "{" in segment


class RouteIndex(BaseRoute):
    def __init__(self, prefix: str, routes: Sequence[BaseRoute]) -> None:
        self._prefix = prefix.rstrip("/") + "/"
        indexed: list[tuple[str, BaseRoute]] = []
        for route in routes:
            path = getattr(route, "path", None)
            segment = _first_segment(path, self._prefix) if isinstance(path, str) else None
            if segment is not None:
                indexed.append((segment, route))
        self._wild = [route for segment, route in indexed if _is_parameter(segment)]
        literals = {segment for segment, _ in indexed if not _is_parameter(segment)}
        self._buckets = {
            literal: [r for s, r in indexed if s == literal or _is_parameter(s)]
            for literal in literals
        }

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        segment = _first_segment(_route_path(scope), self._prefix)
        if segment is None:
            return Match.NONE, {}
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self._buckets.get(segment, self._wild):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                child_scope[_CHOSEN] = route
                return match, child_scope
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is None:
            return Match.NONE, {}
        route, child_scope = partial  # a known path, another method: the route answers 405
        child_scope[_CHOSEN] = route
        return Match.PARTIAL, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_CHOSEN)
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        # The routes themselves follow in the application's list and answer this.
        raise NoMatchFound(name, path_params)
