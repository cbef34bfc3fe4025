"""The ``upscope`` command line: one typer app, one module per command family."""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typer is imported when the app is built (`analyze` may run without it)
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
    if owner and sys.argv[1] == "analyze":
        # The analysis uses numpy element-wise only, never BLAS: starting OpenBLAS's thread pool
        # would cost ~0.05 s CPU per run for nothing (set before numpy is first imported).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        # the plain spellings run without typer (and its pydantic/rich imports); see analyze_run
        from dashboard.analyze_run import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    (build([owner]) if owner else __getattr__("app"))()
