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
    rows = [re.match(r"^([* ]) +(\d+) .* (\S*)$", line) for line in r.stdout.splitlines()[1:]]
    return [(m[1] == "*", int(m[2]), m[3]) for m in rows if m]


def test_publish_versions_and_rollback(tmp_path: Path) -> None:
    r = _cli(
        "demo", "--seed-only", "--password", "demo-pass-123", "--data-dir", "data", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    where = ("--tenant", "acme", "--service", "hotline", "--data-dir", "data")
    (tmp_path / "v1.yaml").write_text(demo_flow_text())
    (tmp_path / "v2.yaml").write_text(demo_flow_text().replace("Welcome to Acme.", "Hello."))
    (tmp_path / "bad.yaml").write_text(demo_flow_text().replace("next: goodbye", "next: gone"))

    r = _cli("flow", "publish", "v1.yaml", *where, "--note", "first", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "version 1 is in service" in r.stdout
    r = _cli("flow", "publish", "bad.yaml", *where, cwd=tmp_path)
    assert r.returncode == 1
    assert re.search(r"^bad\.yaml:\d+:\d+: error: no step named 'gone'$", r.stdout, re.M), r.stdout
    assert "was not published" in r.stderr
    r = _cli("flow", "publish", "v2.yaml", *where, "--note", "second", cwd=tmp_path)
    assert r.returncode == 0 and "version 2 is in service" in r.stdout, r.stderr
    assert _versions(tmp_path) == [(True, 2, "second"), (False, 1, "first")]

    r = _cli("flow", "rollback", "1", *where, cwd=tmp_path)
    assert r.returncode == 0 and "version 1 is in service again" in r.stdout, r.stderr
    assert _versions(tmp_path) == [(False, 2, "second"), (True, 1, "first")]
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
