"""Where the CLI's text goes: a rich console as wide as the terminal, and never wrapped elsewhere.

At a terminal, rich follows its width (tables shrink, sentences wrap at word boundaries). Piped
or written to a file, a reader (``grep``, ``less -S``, a script, a ticket) wants each line whole:
no wrapping at 80 columns in the middle of a sentence (an inherited ``COLUMNS`` does not count).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

#: Width of "unwrapped" output: tables render at their natural width below this.
UNWRAPPED_WIDTH = 10_000


def console(file: TextIO | None = None, *, soft_wrap: bool = False) -> Console:
    """A console on ``file`` (stdout by default) that wraps only at a terminal (``soft_wrap``:
    not even there, for text copied as it stands)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here; the reader closing the pipe (`| head`) had what it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(0)

    stream = file if file is not None else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        return _Console(file=stream, highlight=False, soft_wrap=soft_wrap)  # rich reads the size (or COLUMNS) itself
    return _Console(file=stream, highlight=False, width=UNWRAPPED_WIDTH, soft_wrap=True, no_color=True)


def cell(value: object, empty: str = "—") -> str:
    """A table cell: never Python's ``None`` (a dash), the text of anything else."""
    return empty if value is None or value == "" else str(value)
