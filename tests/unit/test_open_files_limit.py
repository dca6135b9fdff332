"""`telportal serve` raises its soft limit on open files to the hard limit at start."""

import resource
import subprocess
import sys

import pytest

from telportal import server


def test_the_soft_limit_is_raised_to_the_hard_limit_in_a_real_process() -> None:
    code = (
        "import resource; from telportal.server import raise_open_files_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "print(raise_open_files_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    returned, soft, hard = (int(x) for x in done.stdout.split())
    expected = server.OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard
    assert returned == soft == expected > 256


def test_an_unlimited_hard_limit_asks_for_linux_default_cap_and_a_refusal_is_kept(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[tuple[int, int]] = []

    def refuse(_which: int, limits: tuple[int, int]) -> None:
        asked.append(limits)
        raise ValueError("not allowed")

    monkeypatch.setattr(server.resource, "getrlimit", lambda _which: (1024, resource.RLIM_INFINITY))
    monkeypatch.setattr(server.resource, "setrlimit", refuse)
    assert server.raise_open_files_limit() == 1024
    assert asked == [(server.OPEN_FILES_WANTED, resource.RLIM_INFINITY)]
    assert "open-files limit stays at 1024" in caplog.text
    monkeypatch.setattr(server.resource, "getrlimit", lambda _which: (4096, 4096))
    assert server.raise_open_files_limit() == 4096  # already there: nothing asked
    assert len(asked) == 1
