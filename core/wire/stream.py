"""The byte buffer under every stream framer: fed bytes, a consumed index, stream offsets.

Consumed bytes are skipped by an index and compacted at the next ``feed``, so a framer's work
stays linear in the bytes fed however small the pieces it is given.
"""

from __future__ import annotations

from enum import Enum


class NeedData(Enum):
    """The framers' one "feed me more bytes" event (h11's sentinel): ``next_event() is NEED_DATA``."""

    NEED_DATA = "need-data"


NEED_DATA = NeedData.NEED_DATA


class StreamBuffer:
    """One direction of a byte stream, as a framer sees it."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # index in _buf of the first byte not yet consumed
        self._origin = 0  # stream offset of _buf[0]

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet consumed."""
        return self._origin + self._pos

    @property
    def buffered(self) -> int:
        """Bytes fed and not yet consumed."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._origin += self._pos
            self._pos = 0
        self._buf += data
