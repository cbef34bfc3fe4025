"""The ``upscope`` command line: one typer app, one module per command family."""

from __future__ import annotations

import errno
import importlib
import os
import sys
import traceback
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
    "dashboard.cli_trace_profiles",
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
        # -h as well as --help, on the group and (inherited through the context) every command
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    def _version(value: bool) -> None:
        if value:
            sys.stdout.write(f"upscope {version()}\n")
            raise typer.Exit(0)

    @app.callback()
    def _root(
        show_version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_version,
                                          help="Print the version and exit."),
    ) -> None:
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


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("upscope")
    except metadata.PackageNotFoundError:
        return "unknown"


def _quiet_stdout() -> None:
    """The reader of stdout went away: nothing more can be said there, and Python's own flush at
    exit must not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main() -> None:
    """Run the CLI. Whatever goes wrong ends as one line on stderr and a documented exit code:
    a closed stdout (``| head -1``) is a quiet 0 — the reader had what it wanted; an unexpected
    error is 2 with its type and place (never its text, which could quote the input)."""
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    try:
        _main()
    except SystemExit:
        # click met EPIPE on stdout: it wrapped the streams in its PacifyFlushWrapper, then exited 1
        if type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _quiet_stdout()
            raise SystemExit(0) from None
        raise
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:
        _quiet_stdout()
        raise SystemExit(0) from None
    except MemoryError:
        sys.stderr.write(f"upscope {command}: out of memory\n")
        raise SystemExit(2) from None
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _quiet_stdout()
            raise SystemExit(0) from None
        sys.stderr.write(f"upscope {command}: {exc.strerror or type(exc).__name__}"
                         f"{f' ({exc.filename})' if exc.filename else ''}\n")
        raise SystemExit(2) from None
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" in {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
        sys.stderr.write(f"upscope {command}: internal error ({type(exc).__name__}{where}) — the input "
                         f"could not be handled; please report it with the command line\n")
        if os.environ.get("UPSCOPE_DEBUG"):
            traceback.print_exc()
        raise SystemExit(2) from None


def _main() -> None:
    owner = FAST_START.get(sys.argv[1]) if len(sys.argv) > 1 else None
    if owner and sys.argv[1] == "analyze":
        # The analysis uses numpy element-wise only, never BLAS: starting OpenBLAS's thread pool
        # would cost ~0.05 s CPU per run for nothing (set before numpy is first imported).
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        # the plain spellings run without typer (and its pydantic/rich imports); see analyze_fast
        from dashboard.analyze_fast import fast_main

        code = fast_main(sys.argv[2:])
        if code is not None:
            sys.exit(code)
    (build([owner]) if owner else __getattr__("app"))()
