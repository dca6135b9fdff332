"""Fixtures shared by the integration tests (the platform and client are in tests/conftest.py)."""

import httpx
import pytest

from telportal.app import Platform
from tests.integration.api_helpers import login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@pytest.fixture
async def tenants(platform: Platform, client: httpx.AsyncClient) -> tuple[TenantWorld, TenantWorld]:
    """Two tenants built through the API, each with one of every object."""
    await make_operator(platform)
    op = await login(client, "root")
    return (
        await build_tenant(client, op, "acme", "4008001000"),
        await build_tenant(client, op, "bravo", "4008002000"),
    )
