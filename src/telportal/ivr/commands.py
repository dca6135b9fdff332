"""`telportal flow`: check flow files, simulate calls through them, publish them.

The root CLI registers this app with `app.add_typer(flow_app, name="flow")`.

    telportal flow check FILE...          problems as FILE:LINE:COL: error: message
    telportal flow run FILE --digits "1 2#" [--caller N] [--called N] [--at ISO-TIME]
                            [--http-fixture FILE] [--calendars FILE] [--json]
    telportal flow publish FILE --tenant SLUG --service CODE [--note TEXT]
    telportal flow versions --tenant SLUG --service CODE
    telportal flow rollback VERSION --tenant SLUG --service CODE

The last three act on the database as the platform (`--config`, `--data-dir`,
`--database-url` as for `telportal serve`), through the same write path as the API.

Exit codes: 0 clean (check), simulated (run) or done; 1 the flow has problems, or the
tenant, service or version does not exist; 2 bad options (an unreadable fixture, a bad
time or key script, a bad setting).
"""

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.app import Platform
from telportal.clock import SystemClock
from telportal.errors import DomainError
from telportal.ivr.calendar import Calendar, zone
from telportal.ivr.checker import check_flow, load_calendars, load_flow
from telportal.ivr.fixtures import FixtureError, HttpFixture
from telportal.ivr.problems import FlowInvalid, Problem
from telportal.ivr.publishing import FlowHistory, FlowRefused, FlowRepository
from telportal.ivr.report import render_json, render_text
from telportal.ivr.simulator import ScriptError, simulate
from telportal.store.schema import FlowVersion, Service, Tenant
from telportal.tenancy.roles import Scope

T = TypeVar("T")

flow_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="IVR flows: check flow files, simulate calls through them, publish them.",
)

CalendarsOpt = Annotated[
    Path | None,
    typer.Option(
        "--calendars",
        help="YAML file of calendars (name: calendar) that hours steps may use by name.",
        show_default=False,
    ),
]


ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML configuration file.", show_default=False)
]
DataDirOpt = Annotated[
    Path | None, typer.Option(help="Folder for the SQLite file, recordings, prompt cache.")
]
DbUrlOpt = Annotated[
    str | None, typer.Option(help="Database URL (default: SQLite in the data folder).")
]
TenantOpt = Annotated[str, typer.Option(help="Tenant slug.", show_default=False)]
ServiceOpt = Annotated[
    str, typer.Option(help="Service code within the tenant.", show_default=False)
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


# --- publishing ------------------------------------------------------------------


def _on_platform(
    config: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    job: Callable[[Platform], Awaitable[T]],
) -> T:
    # telportal.cli imports this module, so its helpers are imported when used.
    from telportal.cli import _config, _run  # noqa: PLC0415

    return _run(_config(config, data_dir=data_dir, database_url=database_url), job)


async def _service_id(session: AsyncSession, tenant: str, service: str) -> str:
    found = await session.scalar(
        select(Service.id)
        .join(Tenant, Tenant.id == Service.tenant_id)
        .where(Tenant.slug == tenant, Service.code == service)
    )
    if found is None:
        raise DomainError(f"no service '{service}' in tenant '{tenant}'")
    return found


def _refused(problems: tuple[Problem, ...], what: str) -> typer.Exit:
    for problem in problems:
        typer.echo(str(problem))
    plural = "s" if len(problems) != 1 else ""
    return _fail(f"{len(problems)} problem{plural}; {what}; the version in service stays", 1)


@flow_app.command("publish")
def publish_command(
    file: Annotated[Path, typer.Argument(help="The flow file.", show_default=False)],
    tenant: TenantOpt,
    service: ServiceOpt,
    note: Annotated[str, typer.Option(help="Why this version (shown by `versions`).")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
) -> None:
    """Check a flow file and put it in service as the service's next version."""
    text = _read(file)

    async def job(p: Platform) -> FlowVersion | FlowRefused:
        try:
            async with p.db.write(Scope.cli()) as uow:
                service_id = await _service_id(uow.session, tenant, service)
                return await FlowRepository(p.db).publish(
                    uow, service_id, text, note, filename=str(file)
                )
        except FlowRefused as exc:
            return exc

    done = _on_platform(config, data_dir, database_url, job)
    if isinstance(done, FlowRefused):
        raise _refused(done.problems, f"{file} was not published")
    typer.echo(f"{tenant}/{service}: version {done.version} is in service ({done.sha256[:12]})")


@flow_app.command("versions")
def versions_command(
    tenant: TenantOpt,
    service: ServiceOpt,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
) -> None:
    """List a service's flow versions, newest first; * marks the one in service."""

    async def job(p: Platform) -> FlowHistory:
        async with p.db.read() as session:
            service_id = await _service_id(session, tenant, service)
            return await FlowRepository(p.db).versions(session, Scope.cli(), service_id, limit=500)

    history = _on_platform(config, data_dir, database_url, job)
    if not history.items:
        typer.echo(f"{tenant}/{service}: no flow published")
        return
    typer.echo(f"  {'version':>7}  {'published (UTC)':<19}  {'sha256':<12}  {'by':<20}  note")
    for row in history.items:
        mark = "*" if row.version == history.current else " "
        when = row.published_at.strftime("%Y-%m-%d %H:%M:%S")
        note = row.note.replace("\n", " ")
        typer.echo(
            f"{mark} {row.version:>7}  {when:<19}  {row.sha256[:12]:<12}  "
            f"{row.published_by:<20}  {note}".rstrip()
        )


@flow_app.command("rollback")
def rollback_command(
    version: Annotated[int, typer.Argument(help="The version to put back in service.")],
    tenant: TenantOpt,
    service: ServiceOpt,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
) -> None:
    """Put an earlier version of a service's flow back in service (no new version)."""

    async def job(p: Platform) -> FlowVersion | FlowRefused:
        try:
            async with p.db.write(Scope.cli()) as uow:
                service_id = await _service_id(uow.session, tenant, service)
                return await FlowRepository(p.db).rollback(uow, service_id, version)
        except FlowRefused as exc:
            return exc

    done = _on_platform(config, data_dir, database_url, job)
    if isinstance(done, FlowRefused):
        raise _refused(done.problems, f"version {version} no longer passes the checker")
    typer.echo(f"{tenant}/{service}: version {done.version} is in service again")
