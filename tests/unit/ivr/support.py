"""Helpers for the IVR tests: flows from inline YAML, fixed call times, example files."""

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telportal.ivr import Flow, Problem, check_flow, load_flow, simulate
from telportal.ivr.simulator import SimulationResult

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "flows"
# A Monday, 10:00 in Shanghai.
MONDAY_10 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
CALLER = "13800000000"


def flow_text(body: str, *, header: str = "flow: t\ntenant: acme\n") -> str:
    return header + textwrap.dedent(body).lstrip("\n")


def problems(body: str, **kwargs: Any) -> list[Problem]:
    return check_flow(flow_text(body), "t.yaml", **kwargs)


def messages(body: str, **kwargs: Any) -> list[str]:
    return [str(p) for p in problems(body, **kwargs)]


def make_flow(body: str, *, header: str = "flow: t\ntenant: acme\n") -> Flow:
    return load_flow(flow_text(body, header=header), "t.yaml")


def run(
    body: str, digits: str = "", *, at: datetime = MONDAY_10, http: Any = None, **kwargs: Any
) -> SimulationResult:
    return simulate(make_flow(body), digits, CALLER, at, http, **kwargs)


def steps_taken(result: SimulationResult) -> list[str]:
    return [visit.step for visit in result.path]
