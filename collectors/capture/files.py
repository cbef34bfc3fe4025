"""Capture files on disk → ``RecordBatch``es, with gzip detection and one-line errors.

The only I/O around the sans-IO ``CaptureParser``: reads fixed-size chunks (memory does not grow
with the file), transparently inflates gzip (``.pcap.gz`` / ``.pcapng.gz``, detected by magic
rather than name), and turns every failure into a ``CaptureProblem`` the caller reports.
For gzip input the byte offsets are offsets in the decompressed stream (said in the message).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from collectors.capture.reader import CaptureParser, RecordBatch
from core.errors import ParseError

# 4 MiB: per-chunk numpy work amortised (≈ 18 000 RTP frames), while the transient arrays of a
# chunk stay small enough that peak memory does not depend on how long the capture is.
CHUNK = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class CaptureProblem:
    message: str
    offset: int | None
    fatal_before_any_record: bool


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

    def batches(self) -> Iterator[RecordBatch]:
        try:
            fh = self.path.open("rb")
        except IsADirectoryError:
            self._fail(f"{self.path} is a directory, not a capture file", None)
            return
        except OSError as exc:
            self._fail(f"{self.path} cannot be read: {exc.strerror or exc}", None)
            return
        with fh:
            try:
                self.size = self.path.stat().st_size
                head = fh.read(2)
                fh.seek(0)
            except OSError as exc:
                self._fail(f"{self.path} cannot be read: {exc.strerror or exc}", None)
                return
            self.gzip = head == GZIP_MAGIC
            inflate = zlib.decompressobj(wbits=31) if self.gzip else None
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
                        if inflate is not None and not inflate.eof:
                            raise ParseError("gzip stream cut short", self.parser.offset)
                        break
                    data = raw
                    if inflate is not None:
                        try:
                            data = inflate.decompress(raw)
                        except zlib.error as exc:
                            raise ParseError(f"gzip data damaged ({exc})", self.parser.offset) from None
                        if inflate.eof and inflate.unused_data:
                            # concatenated gzip members, as `cat a.gz b.gz` makes
                            rest = inflate.unused_data
                            inflate = zlib.decompressobj(wbits=31)
                            data += inflate.decompress(rest)
                    yield from self.parser.feed(data, resume=reread)
                self.parser.close()
            except ParseError as exc:
                where = " (offset in the decompressed data)" if self.gzip else ""
                self._fail(f"{self.path.name}: {exc}{where}", exc.offset)

    def _fail(self, message: str, offset: int | None) -> None:
        self.problem = CaptureProblem(message, offset, self.parser.frames == 0)
