"""Configuration writes through the real HTTP API on SQLite (or PostgreSQL).

Starts `telportal demo` as a separate process on a free port, signs in as the
demo admin, then creates N skills over C keep-alive connections and prints the
throughput, latency percentiles and the server's CPU per write (`harness.py`).
Bounded in count and time; loopback only.

    .venv/bin/python bench/api_writes.py [--n 2000] [--concurrency 16] [--postgres]
"""

import argparse

import httpx
from harness import DemoServer, add_arguments, drive, report


def main() -> None:
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    args = ap.parse_args()
    with DemoServer().running(args.database_url, args.postgres, args.cprofile) as server:
        token = server.sign_in("admin")
        tenants = httpx.get(
            f"{server.url}/api/v1/tenants", headers={"Authorization": f"Bearer {token}"}
        ).json()
        tid = tenants["items"][0]["id"]
        result = drive(
            server,
            token,
            args,
            lambda i: ("POST", "/api/v1/skills", {"tenant_id": tid, "name": f"skill-{i}"}),
        )
    report("creates", result)


if __name__ == "__main__":
    main()
