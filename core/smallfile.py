"""Read a small input file (a JWT, a cloud.json) without ever blocking on it.

``open()`` on a FIFO waits for a writer, and a device never ends: a path in a site file or on the
command line must not be able to hang upscope. The file is opened non-blocking, must be a regular
file, and is read up to a bound.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.errors import UpscopeError


class UnreadableFile(UpscopeError):
    """The file is missing, not a regular file, unreadable or too large; the message says which."""


def read_small_file(path: str | os.PathLike[str], limit: int, what: str, *, head: bool = False,
                    shown_as: str | None = None) -> bytes:
    """The bytes of ``path`` (a regular file of at most ``limit`` bytes); ``UnreadableFile`` naming
    ``what``, the path (or ``shown_as`` in its place) and the problem otherwise. ``head``: a larger
    file is no error, its first ``limit + 1`` bytes are returned (the caller judges an over-long
    content itself)."""
    name = f"{what} {path if shown_as is None else shown_as}"
    try:
        fd = os.open(Path(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UnreadableFile(f"{name}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile(f"{name}: not a regular file (a directory, FIFO or device)")
        if info.st_size > limit and not head:
            raise UnreadableFile(f"{name}: larger than {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UnreadableFile(f"{name}: cannot read ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)
    if len(data) > limit and not head:
        raise UnreadableFile(f"{name}: larger than {limit} bytes")
    return data
