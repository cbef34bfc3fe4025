"""``upscope analyze`` straight from ``sys.argv``, without typer, for the plain invocations scripts
use.

Why a second entry: typer coerces every parameter through pydantic, and with rich that is about
0.2 s of imports per run — a tenth of analysing a million packets, paid again for every capture a
script analyses. ``fast_main`` accepts only the unambiguous spellings of the options and returns
None for anything else (``--help``, unknown or repeated options, ``--``, a missing value), so typer
still produces every usage message and error.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
from pathlib import Path
from typing import Any

from dashboard.analyze_run import Format, analyze

_VALUE_OPTIONS = {"--keylog": "keylog", "--site": "site", "--format": "format", "-f": "format", "--out": "out",
                  "--call": "call", "--export-pcap": "export_pcap", "--connector": "connector"}
_FLAGS = {"--progress": True, "--no-progress": False}


def parse_argv(argv: list[str]) -> dict[str, Any] | None:
    """``analyze``'s keyword arguments from the words after ``analyze``, or None when typer should
    handle them (anything but the plain spellings: help, unknown or repeated options, ``--``,
    a missing or empty value, an unknown format, no file)."""
    kw: dict[str, Any] = {"files": []}
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            kw["files"].append(Path(word))
            continue
        name, eq, value = word.partition("=")
        if name in _FLAGS and not eq:
            if "progress" in kw:
                return None
            kw["progress"] = _FLAGS[name]
            continue
        key = _VALUE_OPTIONS.get(name)
        if key is None or key in kw or (eq and name == "-f"):
            return None
        if not eq:
            value = next(words, "")
        if not value or value.startswith("-"):
            return None
        if key == "format":
            if value not in Format._value2member_map_:
                return None
            kw[key] = Format(value)
        else:
            kw[key] = value if key in ("call", "connector") else Path(value)
    return kw if kw["files"] else None


def fast_main(argv: list[str]) -> int | None:
    """Run ``upscope analyze ARGV`` without typer when ``parse_argv`` accepts the words; the exit
    code, or None to let typer handle them. An interrupt ends with 130, a closed stdout quietly
    with 0 (as ``dashboard.cli.main``)."""
    if any(k.startswith("_UPSCOPE_COMPLETE") for k in os.environ):  # shell completion is typer's
        return None
    kw = parse_argv(argv)
    if kw is None:
        return None
    # The modules are loaded: move their objects out of the collector's sight. Its full
    # collections re-scanned them again and again (~0.03 s of a million-packet run). A young
    # generation of 10 000 objects instead of 700: 11 collections instead of ~190 on the
    # 1 M-packet benchmark (GC 43 -> 17 ms) and no older-generation passes, with the same peak
    # RSS on 1 M and 10 M packets (larger thresholds held more garbage: +5 MiB).
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    try:
        code = analyze(**kw)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        # the reader went away (`| head`): no traceback, and no second error when Python
        # flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0  # the reader had what it wanted (`| head -1`): a quiet success
    return code
