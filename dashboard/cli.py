"""The ``upscope`` command line: one typer app, one module per command family."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="upscope",
    help=(
        "Monitoring and serviceability for the SIP trunk between an OpenScape Business and the "
        "Unify Phone telephony connector. Exit codes: 0 = nothing found, 1 = findings (or partial "
        "input), 2 = unusable input."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # A callback keeps `upscope <command>` a command group even while only one command exists
    # (typer otherwise collapses a single command into the root).
    pass


# Each module defines ``register(app)``; the list keeps start-up imports explicit.
COMMAND_MODULES = [
    "dashboard.cli_site",
    "dashboard.cli_analyze",
    "dashboard.cli_dashboard",
    "dashboard.cli_lab",
    "dashboard.cli_diagnose",
    "dashboard.cli_serve",
    "dashboard.cli_bundle",
]

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    app()
