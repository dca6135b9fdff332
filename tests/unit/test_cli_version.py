import subprocess
import sys

from telportal import __version__


def test_version_flag_prints_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "telportal", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"telportal {__version__}"
