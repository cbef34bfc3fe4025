"""Follow a growing log file (the OSBiz SIP trace) across rotation and truncation.

Theory of operation: remember (inode, offset). Each ``read_new()`` stats the path: a new inode means
the file was rotated (read the rest of the old handle first, then start the new file at 0); a size
below our offset means it was truncated in place (start again at 0). Only complete lines are
returned; a partial last line stays buffered until its newline arrives. ``max_bytes`` bounds one
read so a huge backlog cannot stall the service.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import UpscopeError


@dataclass(frozen=True, slots=True)
class TailEvent:
    kind: str  # "data" | "rotated" | "truncated" | "missing"
    data: bytes = b""


class LogTail:
    def __init__(self, path: str | Path, max_bytes: int = 8 << 20, from_start: bool = True) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._fh: BinaryIO | None = None
        self._inode: int | None = None
        self._pending = b""
        self._from_start = from_start

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _open(self) -> None:
        # non-blocking: a FIFO in place of the log would otherwise wait for a writer for ever
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise UpscopeError(f"trace log {self.path} is not a regular file (a FIFO or device)")
        self._fh = os.fdopen(fd, "rb")
        self._inode = st.st_ino
        if not self._from_start:
            self._fh.seek(st.st_size)
            self._from_start = True  # only the very first open may skip history

    def _take_lines(self, chunk: bytes) -> bytes:
        buf = self._pending + chunk
        cut = buf.rfind(b"\n") + 1
        self._pending = buf[cut:]
        return buf[:cut]

    def read_new(self) -> list[TailEvent]:
        events: list[TailEvent] = []
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self._fh is not None:
                # Rotated away without a successor yet: drain the old handle, keep waiting.
                rest = self._fh.read(self.max_bytes)
                if rest:
                    events.append(TailEvent("data", self._take_lines(rest)))
                self.close()
            events.append(TailEvent("missing"))
            return events
        if self._fh is None:
            self._open()
        elif st.st_ino != self._inode:
            assert self._fh is not None
            rest = self._fh.read(self.max_bytes)
            if rest:
                events.append(TailEvent("data", self._take_lines(rest)))
            self.close()
            self._pending = b""
            self._open()
            events.append(TailEvent("rotated"))
        else:
            assert self._fh is not None
            if st.st_size < self._fh.tell():
                self._fh.seek(0)
                self._pending = b""
                events.append(TailEvent("truncated"))
        assert self._fh is not None
        chunk = self._fh.read(self.max_bytes)
        if chunk:
            lines = self._take_lines(chunk)
            if lines:
                events.append(TailEvent("data", lines))
        return events
