"""``upscope check-site``: validate a site file (minimal placeholder until the site model lands)."""

from __future__ import annotations

from pathlib import Path

import typer


def check_site(site: Path = typer.Argument(..., help="the site YAML file")) -> None:
    """Validate a site file, derive Unify Phone call numbers, list findings."""
    if not site.is_file():
        typer.echo(f"{site}: not a readable file", err=True)
        raise typer.Exit(2)
    typer.echo(f"{site}: site model not implemented yet")


def register(app: typer.Typer) -> None:
    app.command("check-site")(check_site)
