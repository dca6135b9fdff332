"""The real command line and server, as a newcomer runs them."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port

PW = "demo-pass-123"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telportal", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@contextlib.contextmanager
def running(args: list[str], log: Path, ready_url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start `telportal ARGS`, wait until `ready_url` answers, stop it on the way out."""
    with (
        log.open("wb") as out,
        subprocess.Popen(
            [sys.executable, "-m", "telportal", *args], stdout=out, stderr=subprocess.STDOUT
        ) as proc,
    ):
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(ready_url, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"server did not come up:\n{log.read_text()}")
                time.sleep(0.2)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    raise


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        "demo",
        "--password",
        PW,
        "--data-dir",
        str(tmp_path / "data"),
        "--http-listen",
        f"127.0.0.1:{port}",
        "--sip-listen",
        f"127.0.0.1:{free_port()}",
    ]
    with running(args, tmp_path / "server.log", f"{base}/healthz") as proc:
        yield base, proc


def test_demo_serves_api_with_seeded_tenant(
    demo_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, proc = demo_server
    health = httpx.get(f"{base}/healthz").json()
    assert health == {
        "status": "ok",
        "version": health["version"],
        "site": "local",
        "database": "ok",
    }
    doc = httpx.get(f"{base}/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/api/v1/auth/token" in doc["paths"]

    admin = httpx.post(f"{base}/api/v1/auth/token", json={"username": "admin", "password": PW})
    assert admin.status_code == 200, admin.text
    op = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    tenants = httpx.get(f"{base}/api/v1/tenants", headers=op).json()["items"]
    assert [t["slug"] for t in tenants] == ["acme"]
    numbers = httpx.get(f"{base}/api/v1/numbers", headers=op).json()["items"]
    assert [n["number"] for n in numbers] == ["4008001000"]

    agent = httpx.post(f"{base}/api/v1/auth/token", data={"username": "1001@acme", "password": PW})
    assert agent.status_code == 200
    h = {"Authorization": f"Bearer {agent.json()['access_token']}"}
    queues = httpx.get(f"{base}/api/v1/queues", headers=h).json()["items"]
    assert sorted(q["name"] for q in queues) == ["sales", "support"]
    me = httpx.get(f"{base}/api/v1/users", headers=h).json()["items"][0]
    assert all(me["id"] in q["member_ids"] for q in queues)
    assert me["extension"] == "1001" and me["has_sip_password"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_http_access_log_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = []
    for asked in ("false", ""):
        if asked:
            monkeypatch.setenv("TELPORTAL_HTTP_ACCESS_LOG", asked)
        else:
            monkeypatch.delenv("TELPORTAL_HTTP_ACCESS_LOG")
        port = free_port()
        log = tmp_path / f"server-{asked or 'default'}.log"
        args = ["demo", "--password", PW, "--data-dir", str(tmp_path / "data"),
                "--http-listen", f"127.0.0.1:{port}",
                "--sip-listen", f"127.0.0.1:{free_port()}"]  # fmt: skip
        with running(args, log, f"http://127.0.0.1:{port}/healthz"):
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json").status_code == 200
        logs.append(log.read_text())
    line = '"GET /api/v1/openapi.json HTTP/1.1" 200'
    assert line not in logs[0]  # turned off
    assert line in logs[1]  # the default


def test_demo_twice_keeps_one_tenant_and_resets_password(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    assert (
        _cli("demo", "--password", "first-pass-1", "--data-dir", data, "--seed-only").returncode
        == 0
    )
    r = _cli("demo", "--password", "second-pass-2", "--data-dir", data, "--seed-only")
    assert r.returncode == 0, r.stderr
    assert "second-pass-2" in r.stdout and "4008001000" in r.stdout
    r = _cli("tenant", "list", "--data-dir", data)
    assert r.stdout.count("acme") == 1
    r = _cli("demo", "--data-dir", data, "--seed-only")
    assert r.returncode == 0 and "generated" in r.stdout


def test_admin_commands(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    r = _cli("db", "upgrade", "--data-dir", data)
    assert r.returncode == 0 and "database at revision" in r.stdout
    assert (
        _cli("tenant", "create", "globex", "--name", "Globex", "--data-dir", data).returncode == 0
    )
    r = _cli("tenant", "create", "globex", "--name", "Again", "--data-dir", data)
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = _cli("tenant", "create", "Bad Slug", "--name", "X", "--data-dir", data)
    assert r.returncode == 2 and "slug" in r.stderr
    r = _cli("number", "create", "4008002000", "--tenant", "globex", "--data-dir", data)
    assert r.returncode == 0, r.stderr
    r = _cli("number", "create", "4008002000", "--tenant", "nobody", "--data-dir", data)
    assert r.returncode == 1 and "no tenant 'nobody'" in r.stderr
    r = _cli(
        "user",
        "create",
        "chief",
        "--role",
        "tenant_admin",
        "--tenant",
        "globex",
        "--password",
        "chief-pass-1",
        "--data-dir",
        data,
    )
    assert r.returncode == 0, r.stderr
    r = _cli("user", "create", "x", "--role", "agent", "--tenant", "globex", "--data-dir", data)
    assert r.returncode == 2 and "--password is required" in r.stderr
    r = _cli("db", "current", "--data-dir", data)
    head = r.stdout.split("head: ")[1].strip()
    assert f"current: {head}" in r.stdout


@pytest.mark.postgres
def test_serve_on_postgresql(postgres_server: object, tmp_path: Path) -> None:
    from tests.conftest import _pg_url

    url = _pg_url(postgres_server)
    port = free_port()
    assert _cli("demo", "--password", PW, "--database-url", url, "--seed-only").returncode == 0
    args = [
        "serve",
        "--database-url",
        url,
        "--http-listen",
        f"127.0.0.1:{port}",
        "--data-dir",
        str(tmp_path),
    ]
    base = f"http://127.0.0.1:{port}"
    with running(args, tmp_path / "server.log", f"{base}/healthz") as proc:
        r = httpx.post(f"{base}/api/v1/auth/token", json={"username": "admin", "password": PW})
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "telportal",
                "serve",
                "--data-dir",
                str(tmp_path),
                "--http-listen",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert r.returncode != 0
    assert "address already in use" in (r.stdout + r.stderr).lower()
    assert "Traceback" not in r.stdout + r.stderr


async def test_events_websocket_delivers_own_tenant_changes(
    demo_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    import json

    import websockets

    base, _ = demo_server
    ws_base = base.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=base) as client:
        op = (
            await client.post("/api/v1/auth/token", json={"username": "admin", "password": PW})
        ).json()
        oph = {"Authorization": f"Bearer {op['access_token']}"}
        agent = (
            await client.post("/api/v1/auth/token", json={"username": "1001@acme", "password": PW})
        ).json()
        other = (
            await client.post("/api/v1/tenants", json={"slug": "other", "name": "O"}, headers=oph)
        ).json()

        # Without credentials the socket is closed with 4401.
        async with websockets.connect(f"{ws_base}/api/v1/events") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

        async with websockets.connect(
            f"{ws_base}/api/v1/events?token={agent['access_token']}"
        ) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello" and hello["role"] == "agent"
            tid = hello["tenant_id"]
            # A change in another tenant, then one in the agent's own.
            await client.post(
                "/api/v1/skills", json={"tenant_id": other["id"], "name": "x"}, headers=oph
            )
            r = await client.post(
                "/api/v1/skills", json={"tenant_id": tid, "name": "new"}, headers=oph
            )
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert event["type"] == "config" and event["action"] == "created"
            assert event["entity"] == "skill" and event["entity_id"] == r.json()["id"]
            assert event["tenant_id"] == tid and event["subject"] == f"config.{tid}.skill"
            rev = (
                await client.get(
                    "/api/v1/config/revision",
                    headers={"Authorization": f"Bearer {agent['access_token']}"},
                )
            ).json()
            assert event["revision"] == rev["revision"]
