"""Sans-IO reader of OSBiz SIP trace logs (docs/analysis-capture.md) → whole SIP messages with addresses.

A block starts with a line ``(SIP_SA [ldh:<local IPv4>] <id> "MM/DD/YYYY hh:mm:ss.ffffff" …``;
the next line holds ``from [localAddr=]<ip>:<port>`` and ``to [localAddr=]<ip>:<port>``; the raw
SIP message follows; a line containing ``<<OUT-END>>`` (sent) or ``>>IN-END<<`` (received) ends
it. The format is third-party knowledge, not a vendor spec, so the reader is lenient: CRLF or
LF, other trace lines between blocks are skipped, a block that runs more than ``MAX_BLOCK_LINES``
lines without an end marker (as the public converter does) or is interrupted by the next block
start becomes an error item, and a block cut off by the end of the file is reported as truncated.
The block id is not used and its spelling is not confirmed (plain hex, ``0x3a71``, decimal have
all been seen or are plausible), so any token without blanks or quotes is accepted there, and a
``(SIP_SA`` line that still does not parse is reported, never dropped silently.
Timestamps are taken as UTC (the OSBiz writes local time; the lab writes UTC).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from pathlib import Path

from core.analysis import ErrorItem

MAX_BLOCK_LINES = 100
MAX_LINE = 1 << 20  # a longer "line" is not a trace line; drop it rather than buffer it
MAX_ERRORS = 1000  # error items kept per reader; ``error_count`` counts them all
_START = re.compile(
    rb'^\(SIP_SA\s+\[ldh:(?P<ldh>[^\]]*)\]\s+(?:(?P<id>[^\s"]+)\s+)?'
    rb'"(?P<mo>\d\d)/(?P<d>\d\d)/(?P<y>\d{4}) (?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d{1,9}))?"'
)
_FROM = re.compile(rb"\bfrom\s+\[?(?:localAddr=)?(?P<ip>\d{1,3}(?:\.\d{1,3}){3}):(?P<port>\d{1,5})")
_TO = re.compile(rb"\bto\s+\[?(?:localAddr=)?(?P<ip>\d{1,3}(?:\.\d{1,3}){3}):(?P<port>\d{1,5})")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d{1,19})[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)
_START_MARK = b"(SIP_SA"
OUT_END, IN_END = b"<<OUT-END>>", b">>IN-END<<"
SNIFF_BYTES = 65536


@dataclass(frozen=True, slots=True)
class TraceMessage:
    index: int  # 1-based block number (the frame number of ``upscope convert`` output)
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    outgoing: bool
    data: bytes
    offset: int  # byte offset of the block's first line in the log


@dataclass(slots=True)
class _Block:
    offset: int
    ldh: str
    ts: float
    src: tuple[str, int] | None
    dst: tuple[str, int] | None
    lines: list[bytes]
    count: int


def looks_like_trace_log(path: Path) -> bool:
    """True for a text file with OSBiz SIP trace markers in its first 64 KiB."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False
    if head[:2] == b"\x1f\x8b" or head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                                              b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"):
        return False
    return b"(SIP_SA" in head or OUT_END in head or IN_END in head


def _message_bytes(lines: list[bytes]) -> bytes:
    raw = b"".join(lines)
    # The writer ends the message with a newline before the marker; cut the body back to its
    # Content-Length so that newline does not become part of the body.
    sep = raw.find(b"\r\n\r\n")
    head_end = sep + 4 if sep >= 0 else -1
    if sep < 0:
        sep = raw.find(b"\n\n")
        head_end = sep + 2 if sep >= 0 else -1
    if head_end < 0:
        return raw
    m = _CONTENT_LENGTH.search(raw, 0, head_end)
    if m is not None:
        length = int(m.group(1))
        if head_end + length <= len(raw):
            return raw[:head_end + length]
    return raw


class TraceLogReader:
    """``feed(bytes) -> [TraceMessage]``, ``close() -> [TraceMessage]``; problems in ``errors``."""

    def __init__(self) -> None:
        self._pending = b""
        self._offset = 0  # file offset of _pending[0]
        self._block: _Block | None = None
        self.messages = 0
        self.errors: list[ErrorItem] = []
        self.error_count = 0

    def feed(self, data: bytes) -> list[TraceMessage]:
        buf = self._pending + data
        out: list[TraceMessage] = []
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            self._line(buf[pos:nl + 1], self._offset + pos, out)
            pos = nl + 1
        self._pending = buf[pos:]
        self._offset += pos
        if len(self._pending) > MAX_LINE:
            self._error("malformed", f"line longer than {MAX_LINE} bytes skipped", self._offset)
            self._offset += len(self._pending)
            self._pending = b""
            self._block = None
        return out

    def close(self) -> list[TraceMessage]:
        out: list[TraceMessage] = []
        if self._pending:
            self._line(self._pending + b"\n", self._offset, out)
            self._offset += len(self._pending)
            self._pending = b""
        if self._block is not None:
            self._error("truncated", "trace log ends inside a SIP message block", self._block.offset)
            self._block = None
        return out

    def _error(self, kind: str, message: str, offset: int) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(ErrorItem(kind, "trace", message, offset=offset))

    def _line(self, line: bytes, offset: int, out: list[TraceMessage]) -> None:
        start = _START.match(line)
        if start is not None:
            if self._block is not None:
                self._error("malformed", "SIP message block without end marker", self._block.offset)
            self._block = self._open(start, line, offset)
            return
        if line.startswith(_START_MARK):
            # A block start whose layout we do not know: say so (its block is lost) rather
            # than read on as if it were part of the previous block.
            if self._block is not None:
                self._error("malformed", "SIP message block without end marker", self._block.offset)
                self._block = None
            self._error("malformed", "SIP message block start line not understood; expected "
                        '(SIP_SA [ldh:<address>] <id> "MM/DD/YYYY hh:mm:ss.ffffff" …', offset)
            return
        b = self._block
        if b is None:
            return  # other trace lines between blocks
        b.count += 1
        if OUT_END in line or IN_END in line:
            self._block = None
            self._close(b, out)
            return
        if b.count > MAX_BLOCK_LINES:
            self._error("malformed", f"SIP message block without end marker after {MAX_BLOCK_LINES} lines",
                        b.offset)
            self._block = None
            return
        if b.src is None or b.dst is None:
            f, t = _FROM.search(line), _TO.search(line)
            if f is not None and t is not None:
                b.src = (f.group("ip").decode(), int(f.group("port")))
                b.dst = (t.group("ip").decode(), int(t.group("port")))
                return
        b.lines.append(line)

    def _open(self, m: re.Match[bytes], line: bytes, offset: int) -> _Block:
        try:
            y, mo, d = int(m.group("y")), int(m.group("mo")), int(m.group("d"))
            h, mi, s = int(m.group("h")), int(m.group("mi")), int(m.group("s"))
            frac = m.group("f") or b"0"
            ts = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) + int(frac) / 10 ** len(frac)
            if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
                raise ValueError("date out of range")
        except (ValueError, OverflowError):
            self._error("malformed", "SIP message block with an invalid timestamp", offset)
            ts = 0.0
        b = _Block(offset, m.group("ldh").decode("ascii", "replace").strip(), ts, None, None, [], 0)
        f, t = _FROM.search(line, m.end()), _TO.search(line, m.end())
        if f is not None and t is not None:
            b.src = (f.group("ip").decode(), int(f.group("port")))
            b.dst = (t.group("ip").decode(), int(t.group("port")))
        return b

    def _close(self, b: _Block, out: list[TraceMessage]) -> None:
        if b.src is None or b.dst is None:
            self._error("malformed", "SIP message block without from/to addresses", b.offset)
            return
        if any(p > 65535 for p in (b.src[1], b.dst[1])) or any(
                int(x) > 255 for a in (b.src[0], b.dst[0]) for x in a.split(".")):
            self._error("malformed", "SIP message block with an invalid address", b.offset)
            return
        data = _message_bytes(b.lines)
        if not data.strip():
            self._error("malformed", "empty SIP message block", b.offset)
            return
        self.messages += 1
        out.append(TraceMessage(self.messages, b.ts, b.src[0], b.src[1], b.dst[0], b.dst[1],
                                b.src[0] == b.ldh, data, b.offset))
