"""Run one benchmark alternately on two trees of the code and compare a figure.

    .venv/bin/python bench/ab.py --base 61833a4 --pairs 6 --figure 'server ([0-9.]+) ms' -- \\
        bench/sip_calls.py --in-process 3000 --concurrency 20 --gc-freeze

This machine is noisy: the same run reads 15% apart from one minute to the next, so
two trees are only compared in the same minutes, one run of each in turn, and by
their medians and minimums. `--base` is a git revision: its `src/` is exported to a
temporary directory and put first on PYTHONPATH for its runs; the other runs use the
working tree. Each run's figure is the first match of `--figure` (a regular
expression with one group) in its output. The order within a pair alternates too,
so that neither tree always runs second.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(revision: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run(command: list[str], pythonpath: Path | None, figure: re.Pattern[str]) -> float:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(pythonpath), *filter(None, [env.get("PYTHONPATH")])]
        )
    done = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    found = figure.search(done.stdout)
    if done.returncode != 0 or found is None:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return float(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="git revision to compare the working tree with")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--figure", required=True, help="regular expression, one group: the figure")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the benchmark, options")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no benchmark given")
    figure = re.compile(args.figure)
    results: dict[str, list[float]] = {"working tree": [], args.base: []}
    with tempfile.TemporaryDirectory() as tmp:
        base = export(args.base, Path(tmp))
        trees: list[tuple[str, Path | None]] = [("working tree", None), (args.base, base)]
        for pair in range(args.pairs):
            for name, path in trees if pair % 2 == 0 else trees[::-1]:
                value = run(command, path, figure)
                results[name].append(value)
                print(f"pair {pair + 1}: {name}: {value:g}", flush=True)
    for name, values in results.items():
        print(
            f"{name}: median {statistics.median(values):g}, min {min(values):g},"
            f" max {max(values):g} ({len(values)} runs)"
        )


if __name__ == "__main__":
    main()
