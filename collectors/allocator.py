"""glibc allocator settings: the long-running service's RSS flat over hours, the analysis's peak low.

Theory of operation: every analysis cycle allocates and frees tens of MB (numpy chunks of the ring
files, parsed SIP); the Python heap stays flat, but glibc keeps freed memory in the arena of the
thread that freed it. Two measures keep the resident size flat:

* ``limit_arenas`` caps glibc at ``SERVICE_ARENAS`` malloc arenas (``mallopt(M_ARENA_MAX)``, the
  same knob as the ``MALLOC_ARENA_MAX`` environment variable, which wins when the user sets it).
  By default glibc creates up to 8 × cores arenas, one per thread that allocates concurrently, and
  each keeps its own freed chunks. It must run before the service's threads start: arenas that
  exist already stay.
* ``release_free_heap`` calls ``malloc_trim(0)`` after an analysis cycle (and once before a
  capture analysis builds its result), returning free pages of every arena to the OS.

On a non-glibc libc both are no-ops.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Any

SERVICE_ARENAS = 2
_M_ARENA_MAX = -8  # glibc <malloc.h>


@functools.cache
def _libc() -> Any:
    """The C library of this process if it is glibc, else None (resolved on first use: no
    ``ctypes.util.find_library``, which runs ldconfig, on the start-up path of ``upscope analyze``)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only: fail here, not at the first call
    except (OSError, AttributeError):
        return None
    return libc


def limit_arenas(arenas: int = SERVICE_ARENAS) -> bool:
    """Cap the number of malloc arenas unless ``MALLOC_ARENA_MAX`` is set; True if applied."""
    libc = _libc()
    if libc is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas))


def release_free_heap() -> None:
    """Hand the free pages of every arena back to the OS (after an analysis cycle)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
