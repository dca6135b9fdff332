"""Instructions per call: `bench/sip_calls.py --in-process` under callgrind, counting only
the measured calls (not start-up, seeding or warm-up).

    .venv/bin/python bench/instructions.py [--calls 300] [--concurrency 2] [-- SIP_CALLS_OPTIONS]
    .venv/bin/python bench/instructions.py --records [--calls 2000] [-- CALL_RECORDS_OPTIONS]
    .venv/bin/python bench/ab.py --base REV --pairs 2 --figure 'per call: ([0-9]+)' -- \\
        bench/instructions.py -- --answered-here --gc-freeze --no-call-records

CPU time on this VM varies by 15% from one minute to the next, more than most changes
save; instruction counts of the same tree repeat within 3% (docs/benchmarks.md). The
count includes the two simulated peers (about 3% of a call).

Under callgrind a call runs some 50 times slower, so work batched by time (call
records every 50 ms, the group commit) gets far fewer calls per batch and weighs far
more than in a real run: compare changes that are not about the records with
`--no-call-records`.

`--records` counts `bench/call_records.py` instead: the call records alone, written
in the batches a full-speed run makes (`-- --batch 50 --ivr` for the IVR call).

Concurrency is 2 by default: with 20 in progress under callgrind
a call would outlast T1 (500 ms), so the server would retransmit
its 200s, work a normal run does not do. Needs valgrind (Debian's `valgrind`), a
measuring tool that `make setup` does not install.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def instrument(state: str) -> None:
    """Switch callgrind's counting on or off in this process (the benchmarks' part)."""
    subprocess.run(
        ["callgrind_control", f"--instr={state}", str(os.getpid())],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=None, help="measured calls (300; 2000 records)")
    ap.add_argument("--records", action="store_true", help="bench/call_records.py")
    ap.add_argument("--concurrency", type=int, default=2, help="calls in progress at a time")
    ap.add_argument("--keep", type=Path, default=None, help="copy callgrind's output here")
    ap.add_argument("options", nargs=argparse.REMAINDER, help="-- then sip_calls.py options")
    args = ap.parse_args()
    options = args.options[1:] if args.options[:1] == ["--"] else args.options
    calls = args.calls or (2000 if args.records else 300)
    if args.records:
        bench = ["call_records.py", "--calls", str(calls)]
        summary_line = r"^\d+ calls' records.*$"
    else:
        bench = ["sip_calls.py", "--in-process", str(calls), "--concurrency", str(args.concurrency)]
        summary_line = r"^\d+ calls in process.*$"
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={out}",
                sys.executable, str(ROOT / "bench" / bench[0]), *bench[1:],
                "--count-instructions", *options,
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if args.keep is not None and out.exists():
            shutil.copyfile(out, args.keep)
        totals = re.search(r"^totals: (\d+)", out.read_text() if out.exists() else "", re.M)
        summary = re.search(summary_line, done.stdout, re.M)
        if done.returncode != 0 or totals is None or summary is None:
            sys.exit(f"the run failed ({done.returncode}):\n{done.stdout}{done.stderr[-3000:]}")
    instructions = int(totals.group(1))
    print(summary.group())
    print(f"instructions: {instructions} in {calls} calls")
    print(f"per call: {instructions // calls}")


if __name__ == "__main__":
    main()
