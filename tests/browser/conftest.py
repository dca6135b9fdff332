"""Browser tests: Debian's Chromium, driven by Playwright, against a real `telportal demo`.

One server and one browser for the whole session (each test opens its own browser
context, so sessionStorage and localStorage start empty). A missing Chromium or
Playwright is a failure naming `make setup`, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.test_server import PW, _free_port, running

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("TELPORTAL_CHROMIUM", "/usr/bin/chromium")
SETUP_HINT = (
    "`make setup` installs them (playwright from the dev dependencies, Debian's "
    "`chromium` package through scripts/install-system-tools.sh, as root on Debian)"
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}


class Server:
    def __init__(self, base: str, data_dir: Path) -> None:
        self.base = base
        self.data_dir = data_dir
        self.db_url = f"sqlite+aiosqlite:///{(data_dir / 'telportal.db').resolve()}"

    def token(self, username: str) -> dict[str, Any]:
        r = httpx.post(
            f"{self.base}/api/v1/auth/token", json={"username": username, "password": PW}
        )
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)['access_token']}"}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser-server")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        "demo",
        "--password",
        PW,
        "--data-dir",
        str(tmp / "data"),
        "--http-listen",
        f"127.0.0.1:{port}",
        "--sip-listen",
        f"127.0.0.1:{_free_port()}",
    ]
    with running(args, tmp / "server.log", f"{base}/healthz"):
        yield Server(base, tmp / "data")


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, and later test modules call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the browser tests need the `playwright` Python package: {SETUP_HINT}")
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: {SETUP_HINT}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, locale="en-US", base_url=server.base)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield pg
    context.close()
    assert not errors, f"the page reported errors: {errors}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
