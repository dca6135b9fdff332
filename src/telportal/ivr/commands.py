"""`telportal flow`: check flow files and simulate calls through them.

The root CLI registers this app with `app.add_typer(flow_app, name="flow")`.

    telportal flow check FILE...          problems as FILE:LINE:COL: error: message
    telportal flow run FILE --digits "1 2#" [--caller N] [--called N] [--at ISO-TIME]
                            [--http-fixture FILE] [--calendars FILE] [--json]

Exit codes: 0 clean (check) or simulated (run); 1 the flow has problems; 2 bad options
(an unreadable fixture, a bad time or key script).
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from telportal.clock import SystemClock
from telportal.ivr.calendar import Calendar, zone
from telportal.ivr.checker import check_flow, load_calendars, load_flow
from telportal.ivr.fixtures import FixtureError, HttpFixture
from telportal.ivr.problems import FlowInvalid
from telportal.ivr.report import render_json, render_text
from telportal.ivr.simulator import ScriptError, simulate

flow_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="IVR flows: check flow files and simulate calls through them.",
)

CalendarsOpt = Annotated[
    Path | None,
    typer.Option(
        "--calendars",
        help="YAML file of calendars (name: calendar) that hours steps may use by name.",
        show_default=False,
    ),
]


def _fail(message: str, code: int) -> typer.Exit:
    # Plain lines, never wrapped, so they can be pasted into searches and tickets.
    typer.echo(f"telportal flow: {message}", err=True)
    return typer.Exit(code)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _fail(f"cannot read {path}: {reason}", 2) from None


def _calendars(path: Path | None, default_timezone: str = "UTC") -> dict[str, Calendar]:
    if path is None:
        return {}
    try:
        return load_calendars(_read(path), str(path), default_timezone)
    except FlowInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        raise _fail(f"{path} has problems", 1) from None


@flow_app.command("check")
def check_command(
    files: Annotated[list[Path], typer.Argument(help="Flow files to check.", show_default=False)],
    calendars: CalendarsOpt = None,
) -> None:
    """Check flow files; print every problem and exit 1 if there is any."""
    names = set(_calendars(calendars))
    count = 0
    troubled = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            typer.echo(f"{path}:1:1: error: cannot read the file: {reason}")
            count, troubled = count + 1, troubled + 1
            continue
        problems = check_flow(text, str(path), calendars=names)
        for problem in problems:
            typer.echo(str(problem))
        count += len(problems)
        troubled += bool(problems)
    if count:
        plural = "s" if count != 1 else ""
        raise _fail(f"{count} problem{plural} in {troubled} of {len(files)} files", 1)
    typer.echo(f"{len(files)} flow file{'s' if len(files) != 1 else ''} ok")


@flow_app.command("run")
def run_command(
    file: Annotated[Path, typer.Argument(help="The flow file.", show_default=False)],
    digits: Annotated[
        str,
        typer.Option(help="Keys the caller presses; space: a pause, T: silence, H: hang up."),
    ] = "",
    caller: Annotated[str, typer.Option(help="The calling number.")] = "13800000000",
    called: Annotated[
        str | None, typer.Option(help="The called number (default: the flow's first).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="When the call happens, ISO 8601; without an offset, in the flow's zone."
        ),
    ] = None,
    http_fixture: Annotated[
        Path | None,
        typer.Option(
            help="YAML/JSON file: URL or 'METHOD URL' -> status and json.", show_default=False
        ),
    ] = None,
    calendars: CalendarsOpt = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON instead of text.")
    ] = False,
) -> None:
    """Simulate one call through a flow and print its actions, path and outcome."""
    text = _read(file)
    names = set(_calendars(calendars))
    try:
        flow = load_flow(text, str(file), calendars=names)
    except FlowInvalid as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        raise _fail(f"{file} has problems; fix them before running it", 1) from None
    supplied = _calendars(calendars, flow.spec.timezone)
    try:
        fixture = HttpFixture.from_text(_read(http_fixture)) if http_fixture else HttpFixture()
    except FixtureError as exc:
        raise _fail(f"{http_fixture}: {exc}", 2) from None
    when = _when(at, flow.spec.timezone)
    try:
        result = simulate(flow, digits, caller, when, fixture, called=called, calendars=supplied)
    except ScriptError as exc:
        raise _fail(f"--digits: {exc}", 2) from None
    if json_output:
        typer.echo(json.dumps(render_json(result), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_text(result))


def _when(at: str | None, timezone: str) -> datetime:
    if at is None:
        return SystemClock().now().astimezone(zone(timezone))
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise _fail(f"--at: {at!r} is not an ISO 8601 time (e.g. 2026-03-02T10:00)", 2) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=zone(timezone))
