"""Browser tests: Debian's Chromium, driven by Playwright, against a real `telportal demo`.

One server and one browser for the whole session (each test opens its own browser
context, so sessionStorage and localStorage start empty). A missing Chromium or
Playwright is a failure naming `make setup`, never a skip.
"""

from __future__ import annotations

import contextlib
import math
import os
import pty
import secrets
import shutil
import socket
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.e2e.test_server import PW, running
from tests.ports import free_port

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
    port = free_port()
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
        f"127.0.0.1:{free_port()}",
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


# --- real SIP peers: a demo server they can use, baresip as a phone, SIPp as a caller ---

PHONE_PASSWORD = PW  # `telportal demo` gives every account, web and SIP, the one password
DEMO_NUMBER = "4008001000"
DTMF_PCAPS = Path("/usr/share/sip-tester")  # SIPp's RFC 4733 key presses (dtmf_2833_1.pcap...)


def _bindable_udp(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_udp_range(low: int, high: int, size: int, step: int = 2) -> int:
    """The first of `size` consecutive free UDP ports, somewhere in [low, high)."""
    for _ in range(200):
        first = low + step * secrets.randbelow((high - low - size) // step)
        if all(_bindable_udp(p) for p in range(first, first + size)):
            return first
    raise RuntimeError(f"no {size} free UDP ports in {low}-{high}")


class LiveServer(Server):
    """A `telportal demo` for calls with real peers: its SIP port, and acme's carrier trunk
    (calls from 127.0.0.1 come in as from the network, so SIPp calls as a customer)."""

    def __init__(self, base: str, data_dir: Path, sip_port: int, log_path: Path) -> None:
        super().__init__(base, data_dir)
        self.sip_port = sip_port
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def agent(self, username: str) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/api/v1/agents/me", headers=self.headers(username))
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A second demo server, for the tests with SIP peers.

    Its own, because baresip 1.0 refuses a challenge that offers SHA-256 beside MD5
    (decision 0007): here `sip.digest_algorithms` is MD5 only. No keep-alive OPTIONS to
    the phones during a test, and RTP ports of its own.
    """
    tmp = tmp_path_factory.mktemp("browser-live-server")
    port, sip_port = free_port(), free_port()
    media = free_udp_range(30000, 32700, 200)
    config = tmp / "telportal.yaml"
    config.write_text(
        "sip:\n"
        "  digest_algorithms: [MD5]\n"
        "  keepalive_seconds: 3600\n"
        "media:\n"
        f"  port_min: {media}\n"
        f"  port_max: {media + 199}\n"
    )
    base = f"http://127.0.0.1:{port}"
    args = [
        "demo",
        "--password",
        PW,
        "--config",
        str(config),
        "--data-dir",
        str(tmp / "data"),
        "--http-listen",
        f"127.0.0.1:{port}",
        "--sip-listen",
        f"127.0.0.1:{sip_port}",
    ]
    with running(args, tmp / "server.log", f"{base}/healthz"):
        server = LiveServer(base, tmp / "data", sip_port, tmp / "server.log")
        admin = server.headers("admin")
        tenants = httpx.get(f"{base}/api/v1/tenants", headers=admin).json()["items"]
        acme = next(t["id"] for t in tenants if t["slug"] == "acme")
        r = httpx.post(
            f"{base}/api/v1/trunks",
            headers=admin,
            json={
                "tenant_id": acme,
                "name": "carrier",
                "host": "127.0.0.1",
                "port": free_port(),
                "inbound_addresses": ["127.0.0.1/32"],
                "keepalive": False,
            },
        )
        assert r.status_code == 201, r.text
        yield server


class Baresip:
    """baresip (Debian's baresip-core) as an agent's phone: registers, answers at once.

    It runs on a pseudo-terminal so that it writes each line as it happens, with its SIP
    trace (`-s`); a thread reads the lines and notes the wall-clock time of each, so the
    time the phone received an INVITE can be compared with times taken in the browser
    (one machine, one clock).
    """

    def __init__(self, folder: Path, extension: str, server_port: int) -> None:
        self.folder = folder
        self.extension = extension
        folder.mkdir(parents=True, exist_ok=True)
        # What the phone says: a tone at 8 kHz (G.711), 10 minutes of it, since baresip
        # hangs up when its audio file ends.
        second = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
            for i in range(8000)
        )
        with wave.open(str(folder / "tone.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(second * 600)
        modules = "\n".join(f"module\t\t{m}.so" for m in ("g711", "aufile", "account", "menu"))
        # Port 0: baresip binds ports of its own choosing (UDP and TCP each), so no port
        # chosen here can be taken by another socket before baresip binds it.
        (folder / "config").write_text(
            "sip_listen\t\t127.0.0.1:0\n"
            "module_path\t\t/usr/lib/baresip/modules\n"
            f"{modules}\n"
            f"audio_player\t\taufile,{folder / 'heard.wav'}\n"
            f"audio_source\t\taufile,{folder / 'tone.wav'}\n"
            "audio_alert\t\taufile,/dev/null\n"
        )
        (folder / "accounts").write_text(
            f"<sip:{extension}@127.0.0.1:{server_port};transport=udp>"
            f";auth_pass={PHONE_PASSWORD};answermode=auto;regint=300\n"
        )
        self.lines: list[tuple[float, str]] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._master = -1

    def start(self) -> Baresip:
        binary = shutil.which("baresip")
        if binary is None:
            pytest.fail("baresip is not installed: `make setup` installs Debian's baresip-core")
        self._master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [binary, "-f", str(self.folder), "-n", "127.0.0.1", "-s", "-t", "900"],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            cwd=self.folder,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        partial, started = "", 0.0  # a line is stamped with the read that brought its start
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the phone is gone
                break
            now = time.time()
            if not chunk:
                break
            if not partial:
                started = now
            *complete, partial = (partial + chunk.decode(errors="replace")).split("\n")
            for line in complete:
                self.lines.append((started, line.rstrip("\r")))
                started = now

    def log(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def invites(self) -> list[float]:
        """When the phone received each INVITE (its SIP trace prints it on arrival)."""
        return [at for at, line in self.lines if line.startswith("INVITE sip:")]

    def wait_for(self, text: str, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if text in line:
                    return at
            time.sleep(0.05)
        pytest.fail(f"baresip {self.extension} never said {text!r}:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(5)
        if self._master >= 0:
            os.close(self._master)
            self._master = -1
        (self.folder / "baresip.log").write_text(self.log())


@pytest.fixture
def phones(tmp_path: Path) -> Iterator[Callable[[LiveServer, str], Baresip]]:
    """Start baresip phones (`phones(server, "1001")`, registered once it returns; an
    extension that is no agent's, like the supervisor's 1009: `phones(server, "1009", "")`);
    all stop at the end of the test."""
    started: list[Baresip] = []

    def start(server: LiveServer, extension: str, username: str | None = None) -> Baresip:
        phone = Baresip(tmp_path / f"phone-{extension}", extension, server.sip_port).start()
        started.append(phone)
        if username == "":  # not an agent: registered once baresip says so
            phone.wait_for("[1 binding]")
            return phone
        who = username or f"{extension}@acme"
        deadline = time.monotonic() + 30
        while not server.agent(who)["reachable"]:
            exited = phone.proc is not None and phone.proc.poll() is not None
            if time.monotonic() > deadline or exited:
                pytest.fail(f"baresip {extension} did not register:\n{phone.log()[-3000:]}")
            time.sleep(0.2)
        return phone

    yield start
    for phone in started:
        phone.stop()


def caller_scenario(number: str, key: str) -> str:
    """A customer calls the demo number through the carrier, presses `key` (RFC 4733,
    2.5 s after the answer, during the menu) and stays until the server hangs up."""
    from tests.integration.signaling.test_ivr_call import CALLER

    pcap = DTMF_PCAPS / f"dtmf_2833_{key}.pcap"
    assert pcap.is_file(), f"{pcap} is missing: `make setup` installs sip-tester"
    return (
        CALLER.replace("13800138000", number)
        .replace("PCAP", str(pcap))
        .replace('<recv request="BYE" timeout="40000"/>', '<recv request="BYE" timeout="300000"/>')
    )


class Caller:
    """SIPp calling the demo number as a customer; `call_id` is the call's SIP Call-ID."""

    def __init__(self, server: LiveServer, folder: Path, number: str, key: str) -> None:
        from tests.integration.signaling.test_sipp_register import sipp

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.call_id = f"browser-{secrets.token_hex(6)}@127.0.0.1"
        (folder / "caller.xml").write_text(caller_scenario(number, key))
        self.proc = subprocess.Popen(
            [
                sipp(), f"127.0.0.1:{server.sip_port}", "-sf", "caller.xml", "-m", "1",
                "-i", "127.0.0.1", "-p", str(free_port()),
                "-mp", str(free_udp_range(12000, 20000, 4, step=4)),
                "-cid_str", self.call_id, "-nostdin", "-timeout", "300s", "-timeout_error",
                "-trace_err", "-error_file", "errors.log",
            ],
            cwd=folder, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip

    def finished(self, timeout: float = 60) -> None:
        """SIPp ended its call as scripted (the server hung up, SIPp said 200)."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"the SIPp caller did not finish in {timeout} s")
        errors = self.folder / "errors.log"
        assert self.proc.returncode == 0, (
            f"SIPp caller: {err.decode()}\n{errors.read_text() if errors.exists() else ''}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def callers(tmp_path: Path) -> Iterator[Callable[[LiveServer, str, str], Caller]]:
    """Start SIPp callers (`callers(server, "13800138123", "1")`); any still running at the
    end of the test are hung up through the API first (a killed SIPp would leave its call
    waiting in the queue), then stopped."""
    started: list[tuple[LiveServer, Caller]] = []

    def start(server: LiveServer, number: str, key: str) -> Caller:
        caller = Caller(server, tmp_path / f"caller-{len(started)}", number, key)
        started.append((server, caller))
        return caller

    yield start
    for server, caller in started:
        if caller.proc.poll() is None:
            httpx.post(
                f"{server.base}/api/v1/live-calls/{caller.call_id}/hangup",
                headers=server.headers("supervisor@acme"),
            )
            with contextlib.suppress(subprocess.TimeoutExpired):
                caller.proc.wait(10)
        caller.stop()


class Pages:
    """Browser contexts of one test, each with its own session; page errors fail the test."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def open(self, server: Server) -> Page:
        context = self.browser.new_context(viewport=VIEWPORT, locale="en-US", base_url=server.base)
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        pg = context.new_page()
        pg.on("pageerror", lambda exc: self.errors.append(str(exc)))
        pg.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )
        return pg

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    opened = Pages(browser)
    yield opened
    opened.close()
    assert not opened.errors, f"a page reported errors: {opened.errors}"
