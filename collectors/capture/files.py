"""Capture files on disk → ``RecordBatch``es, with gzip detection and one-line errors.

The only I/O around the sans-IO ``CaptureParser``: reads fixed-size chunks (memory does not grow
with the file), transparently inflates gzip (``.pcap.gz`` / ``.pcapng.gz``, detected by magic
rather than name), and turns every failure into a ``CaptureProblem`` the caller reports.
For gzip input the byte offsets are offsets in the decompressed stream (said in the message).

Hostile input is bounded: only regular files are opened (a FIFO or a device would block or never
end), and gzip is inflated at most ``CHUNK`` bytes at a time, stopping when the inflated stream
grows past ``MAX_GZIP_RATIO`` times the compressed bytes read (beyond a small allowance) or past
``MAX_INFLATED_BYTES`` — a decompression bomb ends as one clear problem, not gigabytes of RAM.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from collectors.capture.reader import CaptureParser, RecordBatch
from core.errors import ParseError

# 4 MiB: per-chunk numpy work amortised (≈ 18 000 RTP frames), while the transient arrays of a
# chunk stay small enough that peak memory does not depend on how long the capture is.
CHUNK = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"
# Real captures compress 2-60x with gzip -9 (the most compressible of ../shared/pcaps: 59x, a
# capture of large SIP bodies); deflate itself tops out near 1032x. 200x leaves real captures
# room while a bomb stops after a few hundred MB at most.
MAX_GZIP_RATIO = 200
GZIP_RATIO_ALLOWANCE = 32 << 20  # small files may inflate further: a few MB are no danger
MAX_INFLATED_BYTES = 64 << 30
PROBE_BYTES = 1 << 20  # compressed head inflated up front (at most ~230 MB out, ~0.5 s)  # 64 GiB: more than any capture upscope would be handed whole


class _Inflater:
    """gzip → bytes, at most ``CHUNK`` out per step, with the bomb bounds; concatenated members too."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=31)
        self.read = 0  # compressed bytes taken
        self.out = 0  # inflated bytes given

    @property
    def done(self) -> bool:
        return self._z.eof and not self._z.unused_data

    def pieces(self, raw: bytes) -> Iterator[bytes]:
        data = raw
        while data:
            try:
                piece = self._z.decompress(data, CHUNK)
            except zlib.error as exc:
                raise ParseError(f"gzip data damaged ({exc})", self.out) from None
            # the ratio is taken against the compressed bytes inflated so far, not those read:
            # a bomb read in one chunk must not earn its whole allowance up front
            self.read += len(data) - len(self._z.unconsumed_tail)
            data = self._z.unconsumed_tail
            if self._z.eof and self._z.unused_data:
                # concatenated gzip members, as `cat a.gz b.gz` makes
                self.read -= len(self._z.unused_data)
                data = self._z.unused_data + data
                self._z = zlib.decompressobj(wbits=31)
            self.out += len(piece)
            self._check()
            if piece:
                yield piece

    @classmethod
    def probe(cls, fh: BinaryIO) -> None:
        """Inflate (and drop) the head of the stream: a bomb is refused before any record of it
        is analysed — most show their ratio at once; one that hides it later is still stopped,
        partway, by the reading itself."""
        inflater = cls()
        for _ in inflater.pieces(fh.read(PROBE_BYTES)):
            pass

    def _check(self) -> None:
        if self.out > MAX_INFLATED_BYTES:
            raise BombError(f"gzip data inflates beyond {MAX_INFLATED_BYTES >> 30} GiB: refused "
                            "(decompress it yourself if it is genuine)", self.out)
        if self.out > GZIP_RATIO_ALLOWANCE + MAX_GZIP_RATIO * self.read:
            raise BombError(f"gzip data inflates more than {MAX_GZIP_RATIO} times its size "
                            f"({self.out >> 20} MiB from {max(self.read >> 10, 1)} KiB): a decompression "
                            "bomb, not a capture; refused", self.out)


@dataclass(frozen=True, slots=True)
class CaptureProblem:
    message: str
    offset: int | None
    fatal_before_any_record: bool
    refused: bool = False  # the whole file is unusable (a decompression bomb), records read or not


class BombError(ParseError):
    """gzip data past the inflation bounds."""


class CaptureFile:
    """Iterate the batches of one capture; ``problem`` is set when the input was damaged."""

    def __init__(self, path: Path, progress: Callable[[int], None] | None = None,
                 chunk_size: int = CHUNK) -> None:
        self.path = path
        self.progress = progress
        self.chunk_size = chunk_size
        self.parser = CaptureParser()
        self.problem: CaptureProblem | None = None
        self.gzip = False
        self.size = 0

    def _open(self) -> int | None:
        """A descriptor of the file when it is a regular file, else None with the problem set."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        except IsADirectoryError:
            self._fail(f"{self.path} is a directory, not a capture file", None)
            return None
        except OSError as exc:
            self._fail(f"{self.path} cannot be read: {exc.strerror or exc}", None)
            return None
        try:
            info = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            self._fail(f"{self.path} cannot be read: {exc.strerror or exc}", None)
            return None
        if stat.S_ISDIR(info.st_mode):
            os.close(fd)
            self._fail(f"{self.path} is a directory, not a capture file", None)
            return None
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            self._fail(f"{self.path} is not a regular file (a FIFO, socket or device): refused; "
                       "write the capture to a file first", None)
            return None
        self.size = info.st_size
        return fd

    def batches(self) -> Iterator[RecordBatch]:
        fd = self._open()
        if fd is None:
            return
        with os.fdopen(fd, "rb") as fh:
            try:
                head = fh.read(2)
                fh.seek(0)
            except OSError as exc:
                self._fail(f"{self.path} cannot be read: {exc.strerror or exc}", None)
                return
            self.gzip = head == GZIP_MAGIC
            if self.gzip:
                try:
                    _Inflater.probe(fh)
                except BombError as exc:
                    self._fail(f"{self.path.name}: {exc} (offset in the decompressed data)", exc.offset,
                               refused=True)
                    return
                except (ParseError, OSError):
                    pass  # damage is reported, with what comes before it, by the real pass
                fh.seek(0)
            inflate = _Inflater() if self.gzip else None
            # A plain file is re-read from the parser's first unconsumed byte: each read then
            # holds the unfinished record and the next chunk, with no copying (``feed(resume=)``).
            reread = inflate is None and fh.seekable()
            read_to = 0  # file offset after the last read
            raw = data = b""
            try:
                while True:
                    # nothing of the previous chunk is needed any more: free it before reading
                    # the next one (see ``CaptureParser.release``)
                    raw = data = b""
                    self.parser.release()
                    try:
                        if reread:
                            start = self.parser.offset
                            fh.seek(start)
                            raw = fh.read(read_to - start + self.chunk_size)
                            new = len(raw) - (read_to - start)
                            read_to = start + len(raw)
                        else:
                            raw = fh.read(self.chunk_size)
                            new = len(raw)
                    except OSError as exc:
                        self._fail(f"{self.path} read error: {exc.strerror or exc}", self.parser.offset)
                        return
                    if self.progress is not None:
                        self.progress(max(new, 0))
                    if new <= 0:
                        if inflate is not None and not inflate.done:
                            raise ParseError("gzip stream cut short", self.parser.offset)
                        break
                    if inflate is None:
                        data = raw
                        yield from self.parser.feed(data, resume=reread)
                        continue
                    for data in inflate.pieces(raw):
                        yield from self.parser.feed(data)
                        data = b""
                        self.parser.release()
                self.parser.close()
            except ParseError as exc:
                where = " (offset in the decompressed data)" if self.gzip else ""
                self._fail(f"{self.path.name}: {exc}{where}", exc.offset, refused=isinstance(exc, BombError))

    def _fail(self, message: str, offset: int | None, refused: bool = False) -> None:
        self.problem = CaptureProblem(message, offset, self.parser.frames == 0, refused)
