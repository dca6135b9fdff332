"""The `telportal` command line."""

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from telportal import __version__
from telportal.app import Platform, build_platform
from telportal.config import Config, ConfigError, load_config
from telportal.demo import (
    DEMO_ADMIN,
    DEMO_AGENTS,
    DEMO_NUMBER,
    DEMO_SUPERVISOR,
    DEMO_TENANT,
    seed_demo,
)
from telportal.errors import DomainError
from telportal.ivr.commands import flow_app
from telportal.server import raise_open_files_limit
from telportal.server import serve as run_server
from telportal.store import migrate
from telportal.store.schema import Service, ServiceNumber, Tenant
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import AgentKind, Role, Scope

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Telportal contact center.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenants (enterprises).")
number_app = typer.Typer(no_args_is_help=True, help="Service numbers.")
user_app = typer.Typer(no_args_is_help=True, help="Users: operators, admins, supervisors, agents.")
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(number_app, name="number")
app.add_typer(user_app, name="user")
app.add_typer(flow_app, name="flow")

out = Console()
T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML configuration file.", show_default=False)
]
DataDirOpt = Annotated[
    Path | None, typer.Option(help="Folder for the SQLite file, recordings, prompt cache.")
]
DbUrlOpt = Annotated[
    str | None, typer.Option(help="Database URL (default: SQLite in the data folder).")
]
SipOpt = Annotated[str | None, typer.Option(help="SIP listen address HOST:PORT.")]
HttpOpt = Annotated[str | None, typer.Option(help="HTTP listen address HOST:PORT.")]


def _complain(message: str) -> None:
    # Plain text, never wrapped: people paste these lines into searches and tickets.
    typer.echo(f"telportal: {message}", err=True)


def _config(config: Path | None, **flags: Any) -> Config:
    try:
        return load_config(config, env=os.environ, overrides=flags)
    except ConfigError as exc:
        _complain(f"{exc}")
        raise typer.Exit(2) from None


def _run(cfg: Config, job: Callable[[Platform], Awaitable[T]], *, migrate_first: bool = True) -> T:
    async def main() -> T:
        platform = build_platform(cfg)
        try:
            if migrate_first:
                await platform.start()
            return await job(platform)
        finally:
            await platform.close()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(main())
    except ConfigError as exc:
        _complain(str(exc))
        raise typer.Exit(2) from None
    except DomainError as exc:
        _complain(f"{exc.message}")
        raise typer.Exit(1) from None
    except OSError as exc:
        _complain(f"{exc}")
        raise typer.Exit(1) from None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed: several times the packet rate of the default loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional at run time
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _logging(cfg: Config) -> None:
    logging.basicConfig(
        level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _version(value: bool) -> None:
    if value:
        typer.echo(f"telportal {__version__}")
        raise typer.Exit


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Telportal: one national number, many sites, every request tracked to closure."""


@app.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
    sip_listen: SipOpt = None,
    http_listen: HttpOpt = None,
) -> None:
    """Run the all-in-one server (every site role in one process)."""
    cfg = _config(
        config,
        data_dir=data_dir,
        database_url=database_url,
        sip_listen=sip_listen,
        http_listen=http_listen,
    )
    _logging(cfg)
    raise_open_files_limit()  # before the media engine sizes its pool of idle ports
    _run(cfg, run_server, migrate_first=False)


@app.command()
def demo(
    password: Annotated[
        str | None, typer.Option(help="Password for every demo account (random if absent).")
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
    sip_listen: SipOpt = None,
    http_listen: HttpOpt = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--seed-only", help="Start the server after seeding.")
    ] = True,
) -> None:
    """Seed the demo tenant `acme` and start the server."""
    if password is not None and len(password) < 8:
        _complain("--password must have at least 8 characters")
        raise typer.Exit(2)
    cfg = _config(
        config,
        data_dir=data_dir,
        database_url=database_url,
        sip_listen=sip_listen,
        http_listen=http_listen,
    )
    if cfg.sip.default_tenant is None:
        # Demo phones register to an IP address: that names the demo tenant.
        cfg = cfg.model_copy(
            update={"sip": cfg.sip.model_copy(update={"default_tenant": DEMO_TENANT})}
        )
    info = _run(cfg, lambda p: seed_demo(p, password))
    base = f"http://{cfg.http_listen}"
    table = Table(title="Telportal demo", show_header=False, title_justify="left")
    table.add_row("API docs", f"{base}/api/v1/docs")
    table.add_row("OpenAPI", f"{base}/api/v1/openapi.json")
    table.add_row("Health", f"{base}/healthz")
    table.add_row("Platform admin", f"{DEMO_ADMIN} / {info.password}")
    table.add_row(
        "Agents (API login)",
        ", ".join(f"{a}@{DEMO_TENANT}" for a in DEMO_AGENTS) + f" / {info.password}",
    )
    table.add_row(
        "Supervisor (wallboard)",
        f"{DEMO_SUPERVISOR}@{DEMO_TENANT} / {info.password}, phone 1009",
    )
    table.add_row(
        "Agents (SIP phones)",
        f"user {DEMO_AGENTS[0]}-{DEMO_AGENTS[-1]}, realm {DEMO_TENANT}, password {info.password}",
    )
    table.add_row("Service number", f"{DEMO_NUMBER} (sip:{DEMO_NUMBER}@{cfg.sip_listen})")
    table.add_row("Data folder", str(cfg.data_dir.resolve()))
    out.print(table)
    if info.generated:
        out.print("The password above was generated; pass --password to choose one.")
    if serve_after:
        _logging(cfg)
        raise_open_files_limit()
        _run(cfg, run_server, migrate_first=False)


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOpt = None, data_dir: DataDirOpt = None, database_url: DbUrlOpt = None
) -> None:
    """Bring the database schema to the newest revision."""
    cfg = _config(config, data_dir=data_dir, database_url=database_url)

    async def job(p: Platform) -> str | None:
        await migrate.upgrade(p.db.engine)
        return await migrate.current_revision(p.db.engine)

    out.print(f"database at revision {_run(cfg, job, migrate_first=False)}")


@db_app.command("current")
def db_current(
    config: ConfigOpt = None, data_dir: DataDirOpt = None, database_url: DbUrlOpt = None
) -> None:
    """Print the schema revision of the database and the newest one known."""
    cfg = _config(config, data_dir=data_dir, database_url=database_url)

    async def job(p: Platform) -> str | None:
        return await migrate.current_revision(p.db.engine)

    current = _run(cfg, job, migrate_first=False)
    out.print(f"current: {current or '(empty)'}  head: {migrate.head_revision()}")


async def _tenant_id(p: Platform, slug: str) -> str:
    async with p.db.read() as session:
        tid = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tid is None:
        raise DomainError(f"no tenant '{slug}'")
    return tid


@tenant_app.command("create")
def tenant_create(
    slug: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
) -> None:
    """Create a tenant (an enterprise)."""
    cfg = _config(config, data_dir=data_dir, database_url=database_url)
    body = _validated(s.TenantCreate, slug=slug, name=name)

    async def job(p: Platform) -> str:
        async with p.db.write(Scope.cli()) as uow:
            tenant_row: Tenant = await p.resource("tenants").create(uow, body)
            return tenant_row.id

    out.print(f"tenant {slug} created: {_run(cfg, job)}")


@tenant_app.command("list")
def tenant_list(
    config: ConfigOpt = None, data_dir: DataDirOpt = None, database_url: DbUrlOpt = None
) -> None:
    """List tenants."""
    cfg = _config(config, data_dir=data_dir, database_url=database_url)

    async def job(p: Platform) -> list[Tenant]:
        async with p.db.read() as session:
            rows, _ = await p.resource("tenants").list(session, Scope.cli(), limit=500)
            return list(rows)

    table = Table("slug", "name", "enabled", "id")
    for t in _run(cfg, job):
        table.add_row(t.slug, t.name, "yes" if t.enabled else "no", t.id)
    out.print(table)


@number_app.command("create")
def number_create(
    number: str,
    tenant: Annotated[str, typer.Option(help="Tenant slug that the number serves.")],
    service: Annotated[str | None, typer.Option(help="Service code within the tenant.")] = None,
    caller_prefix: Annotated[
        str | None, typer.Option(help="Only callers with this prefix.")
    ] = None,
    ivr_digit: Annotated[str | None, typer.Option(help="IVR choice on a shared number.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
) -> None:
    """Create a service number (or reuse it) and link it to a tenant's service."""
    cfg = _config(config, data_dir=data_dir, database_url=database_url)

    async def job(p: Platform) -> str:
        tid = await _tenant_id(p, tenant)
        async with p.db.write(Scope.cli()) as uow:
            row = await uow.session.scalar(
                select(ServiceNumber).where(ServiceNumber.number == number)
            )
            if row is None:
                row = await p.resource("numbers").create(
                    uow, _validated(s.NumberCreate, number=number)
                )
            service_id = None
            if service is not None:
                service_id = await uow.session.scalar(
                    select(Service.id).where(Service.tenant_id == tid, Service.code == service)
                )
                if service_id is None:
                    raise DomainError(f"tenant '{tenant}' has no service '{service}'")
            link = _validated(
                s.NumberLinkCreate,
                number_id=row.id,
                tenant_id=tid,
                service_id=service_id,
                caller_prefix=caller_prefix,
                ivr_digit=ivr_digit,
            )
            await p.resource("number-links").create(uow, link)
            return row.id

    out.print(f"number {number} linked to {tenant}: {_run(cfg, job)}")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[Role, typer.Option(help="Role.")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant slug (none for a platform operator).")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(help="Login password (asked for when absent).", show_default=False),
    ] = None,
    extension: Annotated[str | None, typer.Option(help="Phone extension (SIP user).")] = None,
    sip_password: Annotated[str | None, typer.Option(help="SIP phone password.")] = None,
    kind: Annotated[list[AgentKind] | None, typer.Option(help="Agent kind (repeatable).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbUrlOpt = None,
) -> None:
    """Create a user."""
    cfg = _config(config, data_dir=data_dir, database_url=database_url)
    if password is None:
        if not sys.stdin.isatty():
            _complain("--password is required when not at a terminal")
            raise typer.Exit(2)
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)

    async def job(p: Platform) -> str:
        tid = await _tenant_id(p, tenant) if tenant else None
        body = _validated(
            s.UserCreate,
            tenant_id=tid,
            username=username,
            role=role,
            password=password,
            extension=extension,
            sip_password=sip_password,
            agent_kinds=kind or [],
        )
        async with p.db.write(Scope.cli()) as uow:
            user_id: str = (await p.resource("users").create(uow, body)).id
            return user_id

    out.print(f"user {username} created: {_run(cfg, job)}")


M = TypeVar("M", bound=s.Input)


def _validated(model: type[M], **values: Any) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        for e in exc.errors():
            field = ".".join(str(x) for x in e["loc"])
            _complain(f"{field}: {e['msg']}")
        raise typer.Exit(2) from None


def main() -> None:
    app()
