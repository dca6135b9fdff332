"""Request dependencies: the platform, and who is asking."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from telportal.app import Platform
from telportal.tenancy.roles import Scope

_bearer = HTTPBearer(auto_error=False, description="A token from /auth/token or an API key")


async def get_platform(request: Request) -> Platform:
    # async although it never awaits: FastAPI runs a plain `def` dependency in a
    # worker thread, a hand-off per request for one attribute read.
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_scope(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Scope:
    # The platform straight from the app, not as a dependency of its own: every
    # dependency FastAPI solves costs a request some microseconds.
    platform: Platform = request.app.state.platform
    return await platform.auth.authenticate(creds.credentials if creds else None)


ScopeDep = Annotated[Scope, Depends(get_scope)]
