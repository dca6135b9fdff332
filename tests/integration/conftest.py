"""Fixtures shared by the integration tests (the platform and client are in tests/conftest.py)."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from telportal.app import Platform
from telportal.clock import FakeClock
from telportal.store.schema import Tenant
from telportal.tenancy.roles import Scope
from tests.conftest import make_platform
from tests.integration.api_helpers import login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@pytest.fixture
async def sqlite_platform(
    tmp_path: Path, sqlite_url: str, clock: FakeClock
) -> AsyncIterator[Platform]:
    """A platform on a SQLite file (`tmp_path / "telportal.db"`) with tenant t-1, acme."""
    platform = await make_platform(sqlite_url, tmp_path, clock)
    async with platform.db.write(Scope.cli()) as uow:
        uow.session.add(
            Tenant(
                id="t-1", slug="acme", name="Acme", created_at=clock.now(), updated_at=clock.now()
            )
        )
    yield platform
    await platform.close()


@pytest.fixture
async def tenants(platform: Platform, client: httpx.AsyncClient) -> tuple[TenantWorld, TenantWorld]:
    """Two tenants built through the API, each with one of every object."""
    await make_operator(platform)
    op = await login(client, "root")
    return (
        await build_tenant(client, op, "acme", "4008001000"),
        await build_tenant(client, op, "bravo", "4008002000"),
    )
