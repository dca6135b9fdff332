"""`telportal flow publish / versions / rollback` against the demo's data folder."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from telportal.ivr import demo_flow_text

pytestmark = pytest.mark.slow


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telportal", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith("TELPORTAL_")},
    )


def _versions(cwd: Path) -> list[tuple[bool, int, str]]:
    r = _cli(
        "flow",
        "versions",
        "--tenant",
        "acme",
        "--service",
        "hotline",
        "--data-dir",
        "data",
        cwd=cwd,
    )
    assert r.returncode == 0, r.stderr
    rows = []
    for line in r.stdout.splitlines()[1:]:
        # version, date, time, sha256, by, note
        version, _, _, _, by, *note = line[1:].split(maxsplit=5)
        assert by in ("cli", "demo"), line
        rows.append((line[0] == "*", int(version), "".join(note)))
    return rows


def test_publish_versions_and_rollback(tmp_path: Path) -> None:
    r = _cli(
        "demo", "--seed-only", "--password", "demo-pass-123", "--data-dir", "data", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    where = ("--tenant", "acme", "--service", "hotline", "--data-dir", "data")
    # The demo seeds its flow as version 1 of the hotline.
    assert _versions(tmp_path) == [(True, 1, "demo flow")]
    (tmp_path / "v2.yaml").write_text(demo_flow_text().replace("Welcome to Acme.", "Hello."))
    (tmp_path / "bad.yaml").write_text(demo_flow_text().replace("next: goodbye", "next: gone"))

    r = _cli("flow", "publish", "bad.yaml", *where, cwd=tmp_path)
    assert r.returncode == 1
    assert re.search(r"^bad\.yaml:\d+:\d+: error: no step named 'gone'$", r.stdout, re.M), r.stdout
    assert "was not published" in r.stderr
    r = _cli("flow", "publish", "v2.yaml", *where, "--note", "warmer greeting", cwd=tmp_path)
    assert r.returncode == 0 and "version 2 is in service" in r.stdout, r.stderr
    assert _versions(tmp_path) == [(True, 2, "warmer greeting"), (False, 1, "demo flow")]

    r = _cli("flow", "rollback", "1", *where, cwd=tmp_path)
    assert r.returncode == 0 and "version 1 is in service again" in r.stdout, r.stderr
    assert _versions(tmp_path) == [(False, 2, "warmer greeting"), (True, 1, "demo flow")]
    r = _cli("flow", "rollback", "1", *where, cwd=tmp_path)
    assert r.returncode == 1 and "already in service" in r.stderr
    r = _cli(
        "flow",
        "versions",
        "--tenant",
        "acme",
        "--service",
        "nope",
        "--data-dir",
        "data",
        cwd=tmp_path,
    )
    assert r.returncode == 1 and "no service 'nope' in tenant 'acme'" in r.stderr
