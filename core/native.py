"""Compiled accelerators (C extensions built by ``make setup``), loaded only when current.

Each has a Python twin that gives the same results, so a tree without them still works. In a
checkout an extension is built by ``make setup``, not by ``git pull``: a build older than its
source could read other layouts than the Python side hands it and crash the process, so it is
not used — the Python path takes over and one warning says to rebuild.
"""

from __future__ import annotations

import importlib
import logging
import types
from pathlib import Path

log = logging.getLogger(__name__)


def stale(source: Path, built: Path) -> bool:
    """Whether ``built`` is older than ``source`` (an installed package ships no source: not stale)."""
    try:
        return source.stat().st_mtime > built.stat().st_mtime
    except OSError:
        return False


def load(name: str, source: Path) -> types.ModuleType | None:
    """The extension module ``name`` built from ``source``, or None (not built, or stale)."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    built = Path(module.__file__ or "")
    if stale(source, built):
        log.warning("%s is newer than its build %s: the compiled code is not used "
                    "(run `make setup` to rebuild it)", source.name, built.name)
        return None
    return module
