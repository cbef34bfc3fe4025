"""Sans-IO SIP for the OPTIONS probes: build the request, parse the answer.

Theory of operation: the probe sends one OPTIONS (RFC 3261 §11) and waits for the final response
whose Call-ID matches. Over UDP every datagram is one message; over TCP/TLS messages are framed by
Content-Length (RFC 3261 §18.3), one read may hold several messages or part of one, and the peer may
send RFC 5626 CRLF keepalive pongs between them. ``SipStreamParser`` takes bytes with ``feed`` and
hands out whole messages with ``next_message``; it never touches a socket or a clock and raises only
``core.errors.ParseError`` (with the byte offset into the stream).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from core.errors import ParseError

#: Compact header forms (RFC 3261 §7.3.3 and the RFCs that registered the other letters).
COMPACT_FORMS: dict[str, str] = {
    "i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length", "m": "contact",
    "c": "content-type", "k": "supported", "e": "content-encoding", "s": "subject",
    "o": "event", "r": "refer-to", "u": "allow-events", "x": "session-expires", "b": "referred-by",
    "a": "accept-contact", "j": "reject-contact", "d": "request-disposition", "y": "identity",
    "n": "identity-info",
}

MAX_HEADER_BYTES = 64 * 1024  # no sane SIP header block is larger; bounds memory per peer
MAX_BODY_BYTES = 1024 * 1024

_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) ?(.*)")
_REQUEST_LINE = re.compile(r"([A-Za-z][A-Za-z0-9.!%*_+`'~-]*) (\S+) SIP/2\.0")
# Headers whose values carry credentials or nonces: never shown, only fingerprinted.
_SECRET_HEADERS = re.compile(
    r"^(authorization|proxy-authorization|www-authenticate|proxy-authenticate)[ \t]*:([^\r\n]*)",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class SipMessage:
    """A parsed SIP message: a response (``status`` set) or a request (``method`` set)."""

    status: int | None
    reason: str
    method: str | None
    headers: tuple[tuple[str, str], ...]  # (lower-case long name, value) in wire order
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of a header (long or compact name, any case)."""
        key = name.lower()
        key = COMPACT_FORMS.get(key, key)
        for hname, value in self.headers:
            if hname == key:
                return value
        return None

    @property
    def cseq_method(self) -> str | None:
        cseq = self.header("cseq")
        parts = cseq.split() if cseq else []
        return parts[1].upper() if len(parts) == 2 else None


def _parse_head(head: bytes, base: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("SIP message: header block is not UTF-8", base + exc.start) from None
    lines = text.split("\r\n")
    start = lines[0]
    headers: list[tuple[str, str]] = []
    offset = base + len(lines[0]) + 2
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # header folding (RFC 3261 §7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
        else:
            name, sep, value = line.partition(":")
            name = name.strip().lower()
            if not sep or not name or any(ch in name for ch in " \t"):
                raise ParseError(f"SIP message: malformed header line {line[:40]!r}", offset)
            headers.append((COMPACT_FORMS.get(name, name), value.strip()))
        offset += len(line) + 2
    return start, tuple(headers)


def _content_length(headers: tuple[tuple[str, str], ...], base: int) -> int | None:
    for name, value in headers:
        if name == "content-length":
            if not (value.isascii() and value.isdigit()) or len(value) > 8:
                raise ParseError(f"SIP message: bad Content-Length {value[:20]!r}", base)
            length = int(value)
            if length > MAX_BODY_BYTES:
                raise ParseError(f"SIP message: Content-Length {length} exceeds {MAX_BODY_BYTES}", base)
            return length
    return None


def _build(start: str, headers: tuple[tuple[str, str], ...], body: bytes, base: int) -> SipMessage:
    status_match = _STATUS_LINE.fullmatch(start)
    if status_match:
        return SipMessage(int(status_match.group(1)), status_match.group(2), None, headers, body)
    request_match = _REQUEST_LINE.fullmatch(start)
    if request_match:
        return SipMessage(None, "", request_match.group(1).upper(), headers, body)
    raise ParseError(f"SIP message: not a SIP start line {start[:40]!r}", base)


def parse_datagram(data: bytes) -> SipMessage:
    """One SIP message in one UDP datagram (RFC 3261 §18.3: Content-Length may be absent)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise ParseError("SIP message: no end of headers in datagram", len(data))
    start, headers = _parse_head(data[:end], 0)
    body = data[end + 4:]
    length = _content_length(headers, 0)
    if length is not None:
        if length > len(body):
            raise ParseError(f"SIP message: body shorter than Content-Length {length}", len(data))
        body = body[:length]
    return _build(start, headers, body, 0)


class SipStreamParser:
    """Content-Length framing of SIP over TCP/TLS (h11 style: ``feed`` then ``next_message``)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._consumed = 0  # stream offset of _buf[0], for error offsets

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> SipMessage | None:
        """The next complete message, or None until more bytes arrive."""
        # RFC 5626 keepalives ("\r\n\r\n" ping, "\r\n" pong) are not messages.
        skip = 0
        while self._buf[skip:skip + 2] == b"\r\n":
            skip += 2
        if skip:
            self._drop(skip)
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEADER_BYTES:
                raise ParseError(f"SIP stream: no end of headers within {MAX_HEADER_BYTES} bytes",
                                 self._consumed)
            return None
        base = self._consumed
        start, headers = _parse_head(bytes(self._buf[:end]), base)
        length = _content_length(headers, base)
        if length is None:
            raise ParseError("SIP stream: message without Content-Length", base)
        total = end + 4 + length
        if len(self._buf) < total:
            return None
        body = bytes(self._buf[end + 4:total])
        message = _build(start, headers, body, base)
        self._drop(total)
        return message

    def _drop(self, n: int) -> None:
        del self._buf[:n]
        self._consumed += n


def build_options(
    *,
    target_host: str,
    target_port: int,
    transport: str,
    local_host: str,
    local_port: int,
    call_id: str,
    branch: str,
    tag: str,
    from_user: str = "upscope",
    user_agent: str = "upscope-probe",
) -> bytes:
    """An out-of-dialog OPTIONS (RFC 3261 §11.1) to ``target``; ``transport`` is udp|tcp|tls."""
    via_transport = transport.upper()
    host = f"[{target_host}]" if ":" in target_host else target_host
    local = f"[{local_host}]" if ":" in local_host else local_host
    uri = f"sip:{host}:{target_port};transport={transport}"
    lines = [
        f"OPTIONS {uri} SIP/2.0",
        f"Via: SIP/2.0/{via_transport} {local}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{from_user}@{local}>;tag={tag}",
        f"To: <{uri}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:{from_user}@{local}:{local_port};transport={transport}>",
        "Accept: application/sdp",
        f"User-Agent: {user_agent}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def redact(text: str) -> str:
    """Replace credential/challenge header values by a fingerprint (first 6 hex of SHA-256)."""

    def _fp(match: re.Match[str]) -> str:
        digest = hashlib.sha256(match.group(2).strip().encode()).hexdigest()[:6]
        return f"{match.group(1)}: <redacted sha256:{digest}>"

    return _SECRET_HEADERS.sub(_fp, text)
