"""The `telportal` command line."""

import typer

from telportal import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Telportal contact center.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"telportal {__version__}")
        raise typer.Exit


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Telportal: one national number, many sites, every request tracked to closure."""


def main() -> None:
    app()
