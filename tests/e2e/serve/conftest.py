"""A separately running `telportal serve`, as an operator starts it, for SIP and IVR tests.

Each test module gets one server process (`server`, module scope):

- a data folder and a YAML configuration of its own: SQLite in the folder, HTTP and
  SIP (UDP and TCP on one port) on free 127.0.0.1 ports, an RTP port range, the demo
  tenant as `sip.default_tenant` (phones register to an IP address), and whatever the
  module asks for in `SERVER_SETTINGS` (merged into the YAML);
- the demo data (tenant `acme`, number 4008001000 running the demo flow, agents
  1001-1003, platform admin `admin`, every password `PASSWORD`) and one more phone
  (SPARE_PHONE), seeded once per session by the seeding of `telportal demo` and
  copied into each data folder;
- `telportal serve --config FILE` as a subprocess, ready once `GET /healthz` answers
  200 and the SIP port answers OPTIONS over UDP and over TCP;
- on teardown SIGTERM, and the process must exit with status 0 within 20 s.

When a test fails, the tail of every running server's log is attached to its report.
"""

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from telportal.app import build_platform
from telportal.auth.credentials import Passwords
from telportal.config import Config
from telportal.demo import seed_demo
from telportal.sip import MessageFramer, Response, parse_message
from telportal.tenancy.roles import Role, Scope
from telportal.tenancy.schemas import UserCreate
from tests.integration.signaling.test_sipp_register import sipp
from tests.ports import bindable, free_media_port, free_port

HOST = "127.0.0.1"
PASSWORD = "e2e-pass-123"
DEMO_NUMBER = "4008001000"
SPARE_PHONE = "1004"  # an agent's phone beside the demo's 1001-1003, in no queue
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
LOG_TAIL = 200  # lines of the server log shown with a failure


# --- ports ----------------------------------------------------------------------------


def free_port_range(size: int) -> tuple[int, int]:
    """`size` consecutive free UDP ports for the server's RTP, in 30000-32767 (below the
    ephemeral ports, apart from SIPp's media ports and the media engine's default)."""
    for _ in range(200):
        first = 30000 + 2 * secrets.randbelow((32768 - 30000 - size) // 2)
        if all(bindable(socket.SOCK_DGRAM, p) for p in range(first, first + size)):
            return first, first + size - 1
    raise RuntimeError("no free RTP port range")


# --- SIP from Python ------------------------------------------------------------------


def options(port: int, transport: str = "UDP", timeout: float = 2.0) -> Response:
    """Send one OPTIONS to the server and return its final response."""
    kind = socket.SOCK_DGRAM if transport == "UDP" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        if transport == "UDP":
            sock.bind((HOST, 0))
        else:
            sock.connect((HOST, port))
        local = sock.getsockname()[1]
        call_id = secrets.token_hex(10)
        data = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {HOST}:{local}"
            f";branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        if transport == "UDP":
            sock.sendto(data, (HOST, port))
        else:
            sock.sendall(data)
        framer = MessageFramer()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65535)
            if not chunk:
                break
            messages = [parse_message(chunk)] if transport == "UDP" else framer.feed(chunk)
            for message in messages:
                if (
                    isinstance(message, Response)
                    and message.call_id == call_id
                    and message.status >= 200
                ):
                    return message
    raise TimeoutError(f"no answer to OPTIONS over {transport} on port {port}")


# --- the server -----------------------------------------------------------------------


@dataclass
class Server:
    proc: "subprocess.Popen[bytes]"
    workdir: Path
    config_path: Path
    log_path: Path
    http_port: int
    sip_port: int
    media_ports: tuple[int, int]
    _token: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def sip_target(self) -> str:
        return f"{HOST}:{self.sip_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = LOG_TAIL) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def token(self) -> str:
        if self._token is None:
            r = httpx.post(
                f"{self.base_url}/api/v1/auth/token",
                json={"username": "admin", "password": PASSWORD},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            self._token = str(r.json()["access_token"])
        return self._token

    def api(self) -> httpx.Client:
        """An API client signed in as the platform administrator."""
        return httpx.Client(
            base_url=f"{self.base_url}/api/v1",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
        )

    def calls(self, **params: str) -> list[dict[str, Any]]:
        with self.api() as api:
            r = api.get("/calls", params={"limit": 200, **params})
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def call(self, call_id: str, *, ended: bool = True, timeout: float = 5.0) -> dict[str, Any]:
        """The record of the call with this SIP Call-ID (once ended, unless told otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls() if c["call_id"] == call_id]
            if found and (found[0]["ended_at"] is not None or not ended):
                return found[0]
            if time.monotonic() > deadline:
                pytest.fail(f"no {'finished ' if ended else ''}record of call {call_id}: {found}")
            time.sleep(0.1)


_RUNNING: list[Server] = []


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def telportal_command() -> list[str]:
    """The installed `telportal` command of this virtualenv."""
    script = Path(sys.executable).with_name("telportal")
    return [str(script)] if script.exists() else [sys.executable, "-m", "telportal"]


def _ready(server: Server) -> str | None:
    """None once HTTP and SIP (UDP and TCP) answer, else what is still missing."""
    try:
        r = httpx.get(f"{server.base_url}/healthz", timeout=2)
    except httpx.TransportError as exc:
        return f"healthz: {exc!r}"
    if r.status_code != 200:
        return f"healthz: {r.status_code}"
    for transport in ("UDP", "TCP"):
        try:
            status = options(server.sip_port, transport, timeout=1.0).status
        except OSError as exc:
            return f"OPTIONS over {transport}: {exc!r}"
        if status != 200:
            return f"OPTIONS over {transport}: {status}"
    return None


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite database in WAL mode (the write-ahead log too)."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def _launch(workdir: Path, settings: dict[str, Any]) -> Server:
    """Write a configuration with fresh ports and start `telportal serve` on it."""
    data = workdir / "data"
    http_port, sip_port = free_port(), free_port()
    media = free_port_range(200)
    config = _merge(
        {
            "data_dir": str(data),
            "database_url": f"sqlite+aiosqlite:///{data / 'telportal.db'}",
            "http_listen": f"{HOST}:{http_port}",
            "sip_listen": f"{HOST}:{sip_port}",
            "log_level": "info",
            "sip": {"default_tenant": "acme"},
            "media": {"port_min": media[0], "port_max": media[1]},
        },
        settings,
    )
    config_path = workdir / "telportal.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = workdir / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELPORTAL_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*telportal_command(), "serve", "--config", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
        )
    return Server(proc, workdir, config_path, log_path, http_port, sip_port, media)


def _wait_ready(server: Server) -> bool:
    """True once the server serves; False if it could not bind a port (another process
    took one of the free ports we picked: the machine is shared); fails otherwise."""
    deadline = time.monotonic() + START_TIMEOUT
    while (missing := _ready(server)) is not None:
        if server.proc.poll() is not None:
            if "address already in use" in server.log().lower():
                return False
            pytest.fail(f"telportal serve exited with {server.proc.returncode}:\n{server.log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"telportal serve not ready ({missing}):\n{server.log()}")
        time.sleep(0.2)
    return True


@contextlib.contextmanager
def running_server(workdir: Path, database: Path, settings: dict[str, Any]) -> Iterator[Server]:
    (workdir / "data").mkdir(parents=True)
    copy_database(database, workdir / "data" / "telportal.db")
    for _ in range(3):
        server = _launch(workdir, settings)
        try:
            ready = _wait_ready(server)
        except BaseException:
            _kill(server)
            raise
        if ready:
            break
        _kill(server)
    else:
        pytest.fail(f"no free ports for telportal serve after 3 tries:\n{server.log()}")
    _RUNNING.append(server)
    try:
        yield server
    finally:
        _RUNNING.remove(server)
        _stop(server)


def _kill(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.kill()
    server.proc.wait()


def _stop(server: Server) -> None:
    """SIGTERM; the server must exit with status 0, in time, with no exception logged."""
    proc = server.proc
    if proc.poll() is not None:
        pytest.fail(f"telportal serve died during the tests ({proc.returncode}):\n{server.log()}")
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill(server)
        pytest.fail(f"telportal serve ignored SIGTERM for {STOP_TIMEOUT} s:\n{server.log()}")
    assert code == 0, f"telportal serve exited with {code} on SIGTERM:\n{server.log()}"
    assert "Traceback" not in server.log(), f"the server logged an exception:\n{server.log()}"


@pytest.fixture(scope="session")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo seed (`telportal demo`'s `seed_demo`), made once, copied for each server.

    One phone more than the demo has: SPARE_PHONE, a member of no queue, so that no IVR
    call's queue step ever rings it.

    Password hashing is the cheap test setting here; the server checks the hashes with
    whatever parameters they carry, so sign-in works the same.
    """
    data = tmp_path_factory.mktemp("seed")
    config = Config(data_dir=data, database_url=f"sqlite+aiosqlite:///{data / 'telportal.db'}")

    async def seed() -> None:
        platform = build_platform(config, passwords=Passwords.fast_for_tests())
        try:
            await platform.start()  # migrations
            info = await seed_demo(platform, PASSWORD)
            async with platform.db.write(Scope.cli("e2e")) as uow:
                await platform.resources["users"].create(
                    uow,
                    UserCreate(
                        tenant_id=info.tenant_id,
                        username=SPARE_PHONE,
                        role=Role.AGENT,
                        extension=SPARE_PHONE,
                        password=PASSWORD,
                        sip_password=PASSWORD,
                    ),
                )
        finally:
            await platform.close()

    asyncio.run(seed())
    with contextlib.closing(sqlite3.connect(data / "telportal.db")) as db:
        found = db.execute(
            "SELECT username FROM users WHERE username IN ('admin', '1001', ?)", (SPARE_PHONE,)
        ).fetchall()
    assert len(found) == 3, f"the seed is incomplete: {found}"
    return data / "telportal.db"


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    seeded_database: Path,
) -> Iterator[Server]:
    """One `telportal serve` per test module; `SERVER_SETTINGS` in the module adds to its YAML."""
    settings: dict[str, Any] = getattr(request.module, "SERVER_SETTINGS", {})
    workdir = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with running_server(workdir, seeded_database, settings) as running:
        yield running


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for running in _RUNNING:
            report.sections.append(
                (f"telportal serve log (last {LOG_TAIL} lines)", running.log_tail())
            )


# --- SIPp -----------------------------------------------------------------------------


@dataclass
class SipMessage:
    at: datetime
    received: bool
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    def header(self, name: str) -> str | None:
        match = re.search(rf"^{name}:\s*(.*?)\s*$", self.text, re.MULTILINE | re.IGNORECASE)
        return match.group(1) if match else None


_BLOCK = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n", re.MULTILINE)


def parse_message_log(text: str) -> list[SipMessage]:
    """SIPp's -trace_msg file: a dashed line with a time, what happened, the message."""
    parts = _BLOCK.split(text)
    messages = []
    for stamp, block in zip(parts[1::2], parts[2::2], strict=True):
        what, _, body = block.partition("\n")
        messages.append(
            SipMessage(
                datetime.fromisoformat(stamp),
                "received" in what,
                body.lstrip("\n"),
            )
        )
    return messages


@dataclass
class SippResult:
    name: str
    returncode: int
    stderr: str
    errors: str
    screen: str
    messages: list[SipMessage] = field(default_factory=list)

    def _count(self, row: str) -> int | None:
        found = re.findall(rf"{row}\s*\|\s*\d+\s*\|\s*(\d+)", self.screen)
        return int(found[-1]) if found else None

    @property
    def successful(self) -> int | None:
        return self._count("Successful call")

    @property
    def failed(self) -> int | None:
        return self._count("Failed call")

    def describe(self) -> str:
        return (
            f"sipp {self.name}: exit {self.returncode}, successful {self.successful}, "
            f"failed {self.failed}\nstderr: {self.stderr}\nerrors:\n{self.errors}\n"
            f"screen:\n{self.screen}"
        )

    def responses(self) -> list[tuple[str, str | None]]:
        """(status line, CSeq) of every response SIPp received, in order."""
        return [
            (m.first_line, m.header("CSeq"))
            for m in self.messages
            if m.received and m.first_line.startswith("SIP/")
        ]

    def requests(self) -> list[str]:
        """The methods of the requests SIPp received, in order."""
        return [
            m.first_line.split()[0]
            for m in self.messages
            if m.received and not m.first_line.startswith("SIP/")
        ]

    def check(self) -> "SippResult":
        """SIPp finished its one call: exit 0, 1 successful call, 0 failed calls."""
        assert (self.returncode, self.successful, self.failed) == (0, 1, 0), self.describe()
        assert "Aborting call" not in self.errors, self.describe()
        return self


@dataclass
class Sipp:
    name: str
    proc: "subprocess.Popen[bytes]"
    files: dict[str, Path]

    def wait(self, timeout: float = 90.0) -> SippResult:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()

        def read(key: str) -> str:
            path = self.files.get(key)
            return path.read_text(errors="replace") if path and path.exists() else ""

        return SippResult(
            self.name,
            self.proc.returncode,
            err.decode(errors="replace"),
            read("errors"),
            read("screen"),
            parse_message_log(read("messages")),
        )

    def messages(self) -> list[SipMessage]:
        path = self.files["messages"]
        return parse_message_log(path.read_text(errors="replace")) if path.exists() else []

    def wait_for(
        self, first_line: str, cseq: str, *, received: bool = True, timeout: float = 15.0
    ) -> SipMessage:
        """Until SIPp has received (or sent) a message: `SIP/2.0 200 OK`, `2 REGISTER`."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages():
                if (
                    message.received == received
                    and message.first_line.startswith(first_line)
                    and message.header("CSeq") == cseq
                ):
                    return message
            if self.proc.poll() is not None or time.monotonic() > deadline:
                what = "received" if received else "sent"
                pytest.fail(f"SIPp never {what} {first_line} ({cseq}):\n{self.wait().describe()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@contextlib.contextmanager
def sipp_process(
    workdir: Path,
    name: str,
    server: Server,
    scenario: str,
    *,
    transport: str = "u1",
    ooc: str | None = None,
    timeout: int = 30,
    call_id: str | None = None,
    media_port: int | None = None,
    extra: tuple[str, ...] = (),
) -> Iterator[Sipp]:
    """Start SIPp with one call of `scenario` (and `ooc` for out-of-call requests)."""
    files = {
        "scenario": workdir / f"{name}.xml",
        "errors": workdir / f"{name}.errors.log",
        "screen": workdir / f"{name}.screen.log",
        "messages": workdir / f"{name}.messages.log",
    }
    workdir.mkdir(parents=True, exist_ok=True)
    for path in files.values():
        path.unlink(missing_ok=True)
    files["scenario"].write_text(scenario)
    args = [
        sipp(),
        server.sip_target,
        "-sf",
        str(files["scenario"]),
        "-m",
        "1",
        "-i",
        HOST,
        "-p",
        str(free_port()),
        "-mp",
        str(media_port or free_media_port()),
        "-t",
        transport,
        "-timeout",
        f"{timeout}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(files["errors"]),
        "-trace_screen",
        "-screen_file",
        str(files["screen"]),
        "-trace_msg",
        "-message_file",
        str(files["messages"]),
        *extra,
    ]
    if ooc is not None:
        files["ooc"] = workdir / f"{name}.ooc.xml"
        files["ooc"].write_text(ooc)
        args += ["-oocsf", str(files["ooc"])]
    if call_id is not None:
        args += ["-cid_str", call_id]
    proc = subprocess.Popen(
        args,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    running = Sipp(name, proc, files)
    try:
        yield running
    finally:
        running.stop()
