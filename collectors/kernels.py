"""The compiled kernels of the capture analysis (``collectors/_kernels.c``), or None.

Without them the same walks run in numpy and Python (a source tree that was not installed). In a
checkout the extension is built by ``make setup``, not by ``git pull``: a build older than its
source would read other state layouts than the Python side hands it and could crash the process,
so it is not used — the Python lanes take over and one warning says to rebuild.
"""

from __future__ import annotations

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


def _load() -> types.ModuleType | None:
    try:
        from collectors import _kernels
    except ImportError:
        return None
    built = Path(_kernels.__file__ or "")
    if stale(Path(__file__).with_name("_kernels.c"), built):
        log.warning("collectors/_kernels.c is newer than its build %s: the compiled kernels are not used "
                    "(run `make setup` to rebuild them)", built.name)
        return None
    return _kernels


kernels = _load()
