"""Sans-IO SIP message parser (RFC 3261 §7, §20) and the stream framer for SIP over TCP/TLS.

Theory of operation
-------------------
``parse_message`` turns the bytes of one whole message (a UDP datagram, an OSBiz trace entry, a
message cut out by the framer) into a frozen ``SipMessage``. Header names are normalised to lower
case with compact forms expanded (RFC 3261 §7.3.3, table below), folded lines are joined
(§7.3.1), a header repeated on several lines keeps every value in order.

``SipStreamFramer`` is fed the in-order bytes of one TCP direction. ``next_event()`` returns a
``SipFrame`` (a whole message, framed by Content-Length as §18.3 requires on streams), a
``CrlfPing``/``CrlfPong`` keepalive (RFC 5626 §3.5.1: the client sends CRLFCRLF, the server answers
CRLF) or ``NEED_DATA``. The events do not depend on how the bytes were chunked, with one
exception made explicit: a lone CRLF at the end of the buffer could be a pong or the first half of
a ping, so it is held back until more bytes arrive or the caller says a segment ended there
(``segment_boundary()``), which is what a pong on the wire looks like.

Damaged input raises ``ParseError`` (the only exception) with the stream offset; the framer has
then already dropped the bad bytes up to the next plausible start line, so the caller can keep
calling ``next_event()``. Header count, header section size and body size are capped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import ParseError
from core.native import load
from core.wire.digits import decimal
from core.wire.stream import NEED_DATA as NEED_DATA  # re-exported: callers test next_event() against it
from core.wire.stream import NeedData, StreamBuffer

# Caps against hostile input. Real headers with long Via/Record-Route paths reach ~19 KB
# (zeek sip-long-request-response-paths); big SDP bodies reach ~64 KB (suricata sip-body-large).
MAX_HEADERS = 512
MAX_HEADER_BYTES = 128 * 1024
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_LINE = 8 * 1024  # a start line longer than this is not waited for while resynchronising
# What a stream framer may hold between feeds: one incomplete message at most.
MAX_BUFFERED = MAX_HEADER_BYTES + 4 + MAX_BODY_BYTES

# RFC 3261 §7.3.3 and the IANA SIP header registry ("compact" column).
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",  # RFC 3841
    "b": "referred-by",  # RFC 3892
    "c": "content-type",
    "d": "request-disposition",  # RFC 3841
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",  # RFC 3841
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",  # RFC 4474
    "o": "event",  # RFC 6665
    "r": "refer-to",  # RFC 3515
    "s": "subject",
    "t": "to",
    "u": "allow-events",  # RFC 6665
    "v": "via",
    "x": "session-expires",  # RFC 4028
    "y": "identity",  # RFC 8224
}

# Headers whose values are comma-separated lists (RFC 3261 §7.3.1); others (Authorization,
# WWW-Authenticate, Date, …) contain commas that are not list separators.
LIST_HEADERS = frozenset(
    {"via", "contact", "route", "record-route", "allow", "supported", "require", "proxy-require",
     "unsupported", "accept", "accept-encoding", "accept-language", "allow-events", "path",
     "service-route", "reason", "p-asserted-identity"}
)

# The header sections of plain messages in one compiled pass, or None (a tree not built).
_sipscan = load("core.wire._sipscan", Path(__file__).with_name("_sipscan.c"))

# RFC 3261 §25.1 token characters: a method is a token.
_TOKEN = rb"[A-Za-z0-9\-.!%*_+`'~]+"
# Start lines, matched once decoded (UTF-8 with replacement; re.ASCII: \d is 0-9 only).
_REQUEST_LINE = re.compile(r"(" + _TOKEN.decode("ascii") + r") +([^ \r\n]+) +SIP/(\d+\.\d+) *\Z", re.ASCII)
_STATUS_LINE = re.compile(r"SIP/(\d+\.\d+) +(\d{3})(?: (.*))?\Z", re.ASCII)
# What a start line looks like, for recognising SIP in a datagram and for resynchronising a
# stream after damage.
_START_LINE_HINT = re.compile(rb"(?:SIP/2\.0 \d{3}|" + _TOKEN + rb" [^ \r\n]+ SIP/2\.0\r?\n)")
_HEADER_NAME = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


@dataclass(frozen=True, slots=True)
class SipMessage:
    """One parsed SIP message. ``headers`` are (lower-case long name, value) in wire order."""

    method: str | None  # request method (as sent, upper case by convention) or None
    uri: str | None
    status: int | None  # response code or None
    reason: str
    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    warnings: tuple[str, ...] = ()  # tolerated defects (e.g. invalid Content-Length on UDP)

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str) -> str | None:
        """First value of a header (long or compact name, any case), or None."""
        key = _canonical(name)
        for k, v in self.headers:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, list headers split at top-level commas."""
        key = _canonical(name)
        out: list[str] = []
        for k, v in self.headers:
            if k == key:
                out.extend(split_list(v) if key in LIST_HEADERS else [v])
        return out

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str] | None:
        """(sequence number, method) of the CSeq header (RFC 3261 §20.16), None when invalid."""
        parts = (self.get("cseq") or "").split()
        if len(parts) < 2 or len(parts[0]) > 10:  # the number is below 2**31
            return None
        number = decimal(parts[0])
        return None if number is None else (number, parts[1])


@dataclass(frozen=True, slots=True)
class SipFrame:
    """A whole message cut from a stream: ``raw`` bytes at stream ``offset``..``end``."""

    message: SipMessage
    raw: bytes
    offset: int
    end: int


@dataclass(frozen=True, slots=True)
class CrlfPing:
    offset: int
    end: int


@dataclass(frozen=True, slots=True)
class CrlfPong:
    offset: int
    end: int


StreamEvent = SipFrame | CrlfPing | CrlfPong | NeedData


def _canonical(name: str) -> str:
    known = _CANONICAL.get(name)
    if known is not None:
        return known
    low = name.strip().lower()
    key = COMPACT_FORMS.get(low, low)
    if len(_CANONICAL) < _NAMES_MAX:
        _CANONICAL[name] = key
    return key


def split_list(value: str) -> list[str]:
    """Split at commas outside quotes and angle brackets (RFC 3261 §7.3.1)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
        i += 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


# Name-addr and header parameters (RFC 3261 §20.10, §25.1).
_URI_USER = re.compile(r"(?:sips?|tel):([^@;>?]+)", re.IGNORECASE)
_URI = re.compile(r"<([^>]*)>|((?:sips?|tel):[^;\s,]+)", re.IGNORECASE)
_PARAMS: dict[str, re.Pattern[str]] = {}


def uri_of(value: str) -> str:
    """The URI inside a From/To/Contact value (name-addr or addr-spec), without parameters."""
    m = _URI.search(value)
    if not m:
        return value.strip()
    return (m.group(1) or m.group(2) or "").strip()


def user_of(value: str) -> str:
    """User part of the URI in a From/To value or a Request-URI (the number or name), else the host."""
    uri = uri_of(value)
    m = _URI_USER.match(uri)
    if m:
        return m.group(1)
    return uri.split(":", 1)[-1].split(";")[0]


def header_param(value: str, name: str) -> str | None:
    """The value of ``;name=value`` in a header value (``tag``, ``branch``, ``expires`` …)."""
    pattern = _PARAMS.get(name)
    if pattern is None:
        pattern = re.compile(rf";\s*{re.escape(name)}=([^;\s,>]+)", re.IGNORECASE)
        if len(_PARAMS) < 64:  # the names are the callers' constants, but stay bounded
            _PARAMS[name] = pattern
    m = pattern.search(value)
    return m.group(1) if m else None


def looks_like_sip(data: bytes | bytearray, pos: int = 0) -> bool:
    """True if ``data`` has a SIP start line at ``pos`` (how a datagram is recognised as SIP)."""
    nl = data.find(b"\n", pos, pos + MAX_LINE)
    return _START_LINE_HINT.match(data, pos, nl + 1 if nl >= 0 else pos + MAX_LINE) is not None


def _find_header_end(data: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """(end of header section, start of body); CRLFCRLF, tolerating bare LF (RFC 3261 §7.5)."""
    crlf = data.find(b"\r\n\r\n", start)
    # A bare-LF end counts only when it comes first, so it is looked for no further than the
    # CRLFCRLF: a stream of many messages is then searched once, not once per message.
    lf = data.find(b"\n\n", start, crlf + 3 if crlf >= 0 else len(data))
    if crlf < 0 and lf < 0:
        return None
    if crlf >= 0 and lf < 0:
        return crlf, crlf + 4
    return lf, lf + 2


def _parse_head(head: bytes, base: int) -> tuple[str | None, str | None, int | None, str, str,
                                                 list[tuple[str, str]]]:
    if head.isascii():  # the usual case: decoded at once (one character is one byte: same offsets)
        lines = head.decode("ascii").replace("\r\n", "\n").split("\n")
        first = lines[0].rstrip("\r")
        method, uri, status, reason = _start_line(first, base)
        _check_header_count(len(lines) - 1, base)
        return method, uri, status, reason, first, _ascii_headers(lines[1:], base + len(lines[0]) + 1)
    raw = head.replace(b"\r\n", b"\n").split(b"\n")
    first = raw[0].rstrip(b"\r").decode("utf-8", "replace")
    method, uri, status, reason = _start_line(first, base)
    _check_header_count(len(raw) - 1, base)
    return method, uri, status, reason, first, _decoded_headers(raw[1:], base + len(raw[0]) + 1)


def _start_line(first: str, base: int) -> tuple[str | None, str | None, int | None, str]:
    """(method, Request-URI, status code, reason phrase) of a decoded start line."""
    if m := _STATUS_LINE.match(first):
        return None, None, int(m.group(2)), (m.group(3) or "").strip()
    if m := _REQUEST_LINE.match(first):
        return m.group(1), m.group(2), None, ""
    raise ParseError("SIP start line is neither a request nor a status line", base)


def _check_header_count(count: int, base: int) -> None:
    if count > MAX_HEADERS:
        raise ParseError(f"SIP header count exceeds {MAX_HEADERS}", base)


def _fold(headers: list[tuple[str, str]], line: str, pos: int) -> None:
    """RFC 3261 §7.3.1 line folding: ``line`` continues the value of the previous header."""
    if not headers:
        raise ParseError("SIP header continuation line before any header", pos)
    name, value = headers[-1]
    headers[-1] = (name, f"{value} {line.strip()}".strip())


def _decoded_headers(lines: list[bytes], pos: int) -> list[tuple[str, str]]:
    """(canonical name, value) of the header lines; ``pos`` is the byte offset of the first."""
    headers: list[tuple[str, str]] = []
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line[:1] in (" ", "\t"):
            _fold(headers, line, pos)
        elif line:
            name, sep, value = line.partition(":")
            name = name.strip()
            if not sep or not _HEADER_NAME.match(name):
                raise ParseError(f"SIP header line without a valid name: {line[:40]!r}", pos)
            headers.append((_canonical(name), value.strip()))
        pos += len(raw) + 1
    return headers


# Header name as written → canonical name: in ``_ascii_headers`` for names already checked,
# in ``_canonical`` for any (``SipMessage.get`` asks for the same few names for every message).
# The same few dozen names recur in every message; bounded because the names come from the input.
_NAMES: dict[str, str] = {}
_CANONICAL: dict[str, str] = {}
_NAMES_MAX = 1024


def _ascii_headers(lines: list[str], pos: int) -> list[tuple[str, str]]:
    """``_decoded_headers`` for an ASCII header section, faster: str lines and header names
    looked up as written. A line that is not ``Known-Name: value`` (an unknown or misspelt name,
    folding, an empty line) sends the whole section to the careful loop, which gives the same
    headers and errors with their offsets (``pos``: that of the first line)."""
    headers: list[tuple[str, str]] = []
    append = headers.append
    names = _NAMES
    for line in lines:
        # the value of ``line.rstrip("\r")`` is stripped below anyway; the name part precedes
        # the colon, so a trailing CR changes nothing here
        name, sep, value = line.partition(":")
        key = names.get(name)
        if key is None or not sep:
            return _careful_ascii_headers(lines, pos)
        append((key, value.strip()))
    return headers


def _careful_ascii_headers(lines: list[str], pos: int) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    names = _NAMES
    for line in lines:
        size = len(line) + 1
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t"):
            _fold(headers, line, pos)
        elif line:
            name, sep, value = line.partition(":")
            key = names.get(name) if sep else None
            if key is None:
                stripped = name.strip()
                if not sep or not _HEADER_NAME.match(stripped):
                    raise ParseError(f"SIP header line without a valid name: {line[:40]!r}", pos)
                key = _canonical(stripped)
                if len(names) < _NAMES_MAX:
                    names[name] = key
            headers.append((key, value.strip()))
        pos += size
    return headers


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    """Content-Length, None when absent; ValueError when not a number of at most 19 digits."""
    for k, v in headers:
        if k == "content-length":
            length = decimal(v)
            if length is None:
                raise ValueError("Content-Length")
            return length
    return None


def parse_message(data: bytes, *, datagram: bool = True) -> SipMessage:
    """Parse one whole SIP message.

    ``datagram``: the bytes are one UDP datagram (or trace entry). Then a missing or invalid
    Content-Length means "the rest is the body" and a too-large one a truncated body, both
    kept as ``warnings`` (RFC 3261 §18.3: on UDP the datagram bounds the message).
    """
    scanned = _sipscan.scan(data, _NAMES, MAX_HEADERS, MAX_HEADER_BYTES) if _sipscan is not None else None
    if scanned is not None:
        # the plain case (CRLF lines of printable ASCII, names seen before), read in one pass by
        # core/wire/_sipscan.c: the same start line and headers as the lines below would give
        start, body_start, headers = scanned
        method, uri, status, reason = _start_line(start, 0)
    else:
        found = _find_header_end(data)
        if found is None:
            # A message without a body may end right after the last header line.
            if data.endswith(b"\r\n") or data.endswith(b"\n"):
                found = (len(data), len(data))
            else:
                raise ParseError("SIP header section does not end with an empty line", len(data))
        head_end, body_start = found
        if head_end > MAX_HEADER_BYTES:
            raise ParseError(f"SIP header section exceeds {MAX_HEADER_BYTES} bytes", 0)
        method, uri, status, reason, start, headers = _parse_head(data[:head_end], 0)
    rest = data[body_start:]
    warnings: list[str] = []
    try:
        length = _content_length(headers)
    except ValueError:
        if not datagram:
            raise ParseError("SIP Content-Length is not a number", 0) from None
        warnings.append("invalid Content-Length")
        length = None
    if length is None:
        body = rest
    elif length > len(rest):
        if not datagram:
            raise ParseError("SIP body shorter than Content-Length", len(data))
        warnings.append(f"body truncated: Content-Length {length}, {len(rest)} bytes present")
        body = rest
    else:
        body = rest[:length]
    if len(body) > MAX_BODY_BYTES:
        raise ParseError(f"SIP body exceeds {MAX_BODY_BYTES} bytes", body_start)
    return SipMessage(method, uri, status, reason, start, tuple(headers), bytes(body), tuple(warnings))


@dataclass(frozen=True, slots=True)
class _Head:
    """The parsed header section of the message at the start of the framer's buffer."""

    method: str | None
    uri: str | None
    status: int | None
    reason: str
    start_line: str
    headers: tuple[tuple[str, str], ...]
    body_start: int  # bytes from the message start
    length: int  # Content-Length


class SipStreamFramer(StreamBuffer):
    """Cuts SIP messages and RFC 5626 keepalives out of one direction of a TCP/TLS stream.

    Work is linear in the bytes fed: consumed bytes are skipped by an index (the buffer is
    compacted at the next ``feed``), the searches for the blank line and for a start line after
    damage resume where the previous one stopped, and a header section is parsed once even when
    its body arrives in many pieces. Between ``feed`` calls, once ``next_event`` has returned
    ``NEED_DATA``, the framer holds at most ``MAX_BUFFERED`` bytes.
    """

    def __init__(self) -> None:
        super().__init__()
        self._boundary = -1  # stream offset where the caller said a segment ended
        self._searched = 0  # stream offset: no header section ends before it (but for 3 bytes)
        self._head: _Head | None = None  # the message at _pos, waiting for its body
        self._resyncing = False
        self._line_start = False  # in resync mode: the buffer begins at a line start
        self._line_scanned = 0  # in resync mode: stream offset up to which the held line has no LF

    def segment_boundary(self) -> None:
        """The bytes fed so far ended a transport segment (lets a lone CRLF count as a pong)."""
        self._boundary = self._origin + len(self._buf)

    def _consume(self, n: int) -> None:
        self._pos += n
        self._head = None

    def _resync(self, skip_from: int) -> None:
        """Drop bytes up to the next line that looks like a start line (or a CRLF).

        Candidates are line starts after ``skip_from`` (counted from the first unconsumed byte).
        When none is complete yet, the unfinished last line is kept (it may be a start line
        still arriving) and the framer stays in resync mode; a line longer than ``MAX_LINE``
        cannot be one and is dropped.
        """
        buf, first = self._buf, self._pos
        end = len(buf)
        pos = first + skip_from
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            pos = nl + 1
            if _START_LINE_HINT.match(buf, pos) or buf.startswith(b"\r\n", pos):
                self._consume(pos - first)
                self._resyncing = False
                return
        self._resyncing = True
        self._line_scanned = self._origin + end
        if pos > first + skip_from and end - pos <= MAX_LINE:
            self._consume(pos - first)  # keep the unfinished line, which starts at a line start
            self._line_start = True
        else:
            self._consume(end - first)  # mid-line: the next line starts after the next LF
            self._line_start = False

    def _resync_step(self) -> None:
        """In resync mode: decide on the held line once it is complete, or keep looking."""
        buf, pos = self._buf, self._pos
        if self._line_start:
            nl = buf.find(b"\n", max(pos, self._line_scanned - self._origin))
            if nl < 0:
                self._line_scanned = self._origin + len(buf)
            # Without a LF only a status line can already be recognised, by its first 11 bytes.
            end = len(buf) if nl >= 0 else min(len(buf), pos + len(b"SIP/2.0 200"))
            if _START_LINE_HINT.match(buf, pos, end) or buf.startswith(b"\r\n", pos):
                self._resyncing = False
                return
            if nl < 0 and len(buf) - pos <= MAX_LINE:
                return  # the line is still arriving
        self._resync(0)

    def next_event(self) -> StreamEvent:
        if self._resyncing:
            self._resync_step()
            if self._resyncing:
                return NEED_DATA
        buf, pos = self._buf, self._pos
        size = len(buf) - pos
        if not size:
            return NEED_DATA
        if buf[pos] in (0x0D, 0x0A):
            return self._keepalive()
        head = self._head if self._head is not None else self._parse_head()
        if head is None:
            return NEED_DATA
        end = head.body_start + head.length
        if size < end:
            return NEED_DATA
        start = self.offset
        raw = bytes(buf[pos:pos + end])
        msg = SipMessage(head.method, head.uri, head.status, head.reason, head.start_line,
                         head.headers, raw[head.body_start:])
        self._consume(end)
        return SipFrame(msg, raw, start, start + end)

    def _parse_head(self) -> _Head | None:
        """The header section at the buffer start once it is complete (None: not yet)."""
        buf, pos = self._buf, self._pos
        start = self.offset
        # Resume the search for the blank line where the last call stopped (minus the 3 bytes a
        # CRLFCRLF may straddle), so a header fed in tiny pieces is not rescanned quadratically.
        found = _find_header_end(buf, max(pos, self._searched - self._origin - 3))
        if found is None:
            self._searched = self._origin + len(buf)
            size = len(buf) - pos
            if size > MAX_HEADER_BYTES:
                self._resync(1)
                raise ParseError(f"SIP header section exceeds {MAX_HEADER_BYTES} bytes", start)
            # Fail fast on garbage instead of buffering it up to the cap.
            first_nl = buf.find(b"\n", pos, pos + MAX_LINE)
            if (not _START_LINE_HINT.match(buf, pos, first_nl + 1) if first_nl >= 0
                    else size >= MAX_LINE):
                self._resync(1)
                raise ParseError("SIP stream data is not a start line", start)
            return None
        head_end, body_start = found
        if head_end - pos > MAX_HEADER_BYTES:
            self._resync(1)
            raise ParseError(f"SIP header section exceeds {MAX_HEADER_BYTES} bytes", start)
        try:
            method, uri, status, reason, line, headers = _parse_head(bytes(buf[pos:head_end]), start)
            length = _content_length(headers)
        except ParseError:
            self._resync(1)
            raise
        except ValueError:
            self._resync(1)
            raise ParseError("SIP Content-Length is not a number", start) from None
        if length is None:
            length = 0  # RFC 3261 §18.3 makes it mandatory on streams; absent means no body.
        if length > MAX_BODY_BYTES:
            self._resync(1)
            raise ParseError(f"SIP Content-Length {length} exceeds {MAX_BODY_BYTES}", start)
        self._head = _Head(method, uri, status, reason, line, tuple(headers), body_start - pos, length)
        return self._head

    def _keepalive(self) -> StreamEvent:
        buf, pos = self._buf, self._pos
        end = len(buf)
        # Stray bare CR/LF bytes that cannot begin a CRLF keepalive are tolerated and skipped.
        skip = pos
        while skip < end and buf[skip] in (0x0D, 0x0A) and not (
                buf[skip] == 0x0D and (skip + 1 == end or buf[skip + 1] == 0x0A)):
            skip += 1
        self._consume(skip - pos)
        pos = skip
        if pos == end:
            return NEED_DATA
        if buf[pos] != 0x0D:
            return self.next_event()
        start = self.offset
        size = end - pos
        if buf.startswith(b"\r\n\r\n", pos):
            self._consume(4)
            return CrlfPing(start, start + 4)
        if size < 2 or (size == 3 and buf.startswith(b"\r\n\r", pos)):
            return NEED_DATA  # could still become a ping
        if size > 2 or self._boundary == start + 2:
            self._consume(2)
            return CrlfPong(start, start + 2)
        return NEED_DATA
