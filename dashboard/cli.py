"""The ``upscope`` command line: one typer app, one module per command family."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

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
# Commands that start without importing every other command family: scripted runs of
# `upscope analyze` over many captures pay the start-up each time. Command name → its module.
FAST_START = {"analyze": "dashboard.cli_analyze", "convert": "dashboard.cli_analyze"}


def build(modules: list[str]) -> typer.Typer:
    """The typer app with the commands of ``modules``."""
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

    for name in modules:
        importlib.import_module(name).register(app)
    return app


_APP: list[typer.Typer] = []


def __getattr__(name: str) -> Any:
    """``app`` (every command family) is built on first use (PEP 562)."""
    if name == "app":
        if not _APP:
            _APP.append(build(COMMAND_MODULES))
        return _APP[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    owner = FAST_START.get(sys.argv[1]) if len(sys.argv) > 1 else None
    (build([owner]) if owner else __getattr__("app"))()
