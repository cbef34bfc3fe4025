"""SIP messages for the lab: build, frame and read them (RFC 3261), plus digest auth (RFC 2617/7616).

This is deliberately the lab's own small codec, not the analysis parser in ``collectors``: the
lab sits in ``core`` and may not import it, and it only ever reads what its own peers (or a real
registrar such as kamailio) send. Framing over TLS follows RFC 3261 §18.3: a message ends after
Content-Length body bytes; RFC 5626 §4.4.1 CRLF keepalives ("\\r\\n\\r\\n" ping, "\\r\\n" pong) may
sit between messages.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from core.errors import ParseError

#: RFC 3261 §7.3.3 compact header forms, so a real server's compact headers are understood.
COMPACT = {
    "i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length", "m": "contact",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding",
}

MAX_MESSAGE = 64 * 1024  # a lab peer never sends more; anything larger is hostile


@dataclass(frozen=True, slots=True)
class SipMessage:
    """A parsed SIP request or response; ``headers`` keeps order and original names."""

    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    raw: bytes

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/2.0 ")

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0] if self.is_request else ""

    @property
    def request_uri(self) -> str:
        parts = self.start_line.split(" ")
        return parts[1] if self.is_request and len(parts) > 1 else ""

    @property
    def status(self) -> int:
        if self.is_request:
            return 0
        try:
            return int(self.start_line.split(" ")[1])
        except (IndexError, ValueError):
            return 0

    def header(self, name: str) -> str | None:
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        want = name.lower()
        out: list[str] = []
        for key, value in self.headers:
            k = key.lower()
            if COMPACT.get(k, k) == want:
                out.append(value)
        return out

    @property
    def call_id(self) -> str:
        return self.header("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = (self.header("cseq") or "0 ?").split()
        try:
            return int(raw[0]), raw[1] if len(raw) > 1 else "?"
        except ValueError:
            return 0, "?"


def parse(data: bytes) -> SipMessage:
    """One whole message (head + body) → SipMessage, or ParseError."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ParseError("SIP message has no end of headers", len(data))
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("SIP header is not UTF-8", exc.start) from None
    lines = text.split("\r\n")
    start = lines[0]
    if not (start.startswith("SIP/2.0 ") or re.fullmatch(r"[A-Z]+ \S+ SIP/2\.0", start)):
        raise ParseError(f"SIP start line {start[:40]!r} is malformed", 0)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # RFC 3261 §7.3.1 folding
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise ParseError(f"SIP header line {line[:40]!r} has no name", 0)
        headers.append((name.strip(), value.strip()))
    return SipMessage(start, tuple(headers), body, data)


class Framer:
    """Sans-IO stream framer: ``feed`` bytes, get back complete messages and keepalives.

    ``server`` is the side that receives pings: a lone CRLF there may be the first half of a
    split "\r\n\r\n" ping, so it waits for more bytes; the client side receives pongs, where a
    lone CRLF is the whole pong and must be seen at once.
    """

    def __init__(self, server: bool = False) -> None:
        self._buf = bytearray()
        self._server = server

    def feed(self, data: bytes) -> list[SipMessage | str]:
        """Return complete items: SipMessage, or "ping" / "pong" for RFC 5626 keepalives."""
        self._buf += data
        out: list[SipMessage | str] = []
        while True:
            if self._buf.startswith(b"\r\n"):
                if self._buf.startswith(b"\r\n\r\n"):
                    del self._buf[:4]
                    out.append("ping")
                    continue
                if self._server and b"\r\n\r\n".startswith(bytes(self._buf[:4])):
                    return out  # maybe half a ping: wait for the rest
                del self._buf[:2]
                out.append("pong")
                continue
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_MESSAGE:
                    raise ParseError("SIP header exceeds 64 KiB", 0)
                return out
            head = bytes(self._buf[:end])
            match = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", head)
            length = int(match.group(1)) if match else 0
            if length > MAX_MESSAGE:
                raise ParseError("SIP Content-Length exceeds 64 KiB", 0)
            total = end + 4 + length
            if len(self._buf) < total:
                return out
            raw = bytes(self._buf[:total])
            del self._buf[:total]
            out.append(parse(raw))


def build(start_line: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """Serialise a message; Content-Length is always added (mandatory over TLS, RFC 3261 §20.14)."""
    lines = [start_line, *(f"{k}: {v}" for k, v in headers if k.lower() != "content-length")]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def new_tag() -> str:
    return secrets.token_hex(4)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(6)  # RFC 3261 §8.1.1.7 magic cookie


def uri_user(value: str) -> str:
    """``"Anna" <sip:+4989@host;x>;tag=1`` → ``+4989``."""
    match = re.search(r"sips?:([^@;>]+)@", value)
    return match.group(1) if match else ""


def param(value: str, name: str) -> str | None:
    match = re.search(rf";\s*{re.escape(name)}=([^;>,\s]+)", value)
    return match.group(1) if match else None


# --- digest authentication (RFC 2617 with qop=auth; RFC 7616 keeps MD5 for interop) ---------------

def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_response(
    username: str, realm: str, password: str, method: str, uri: str, nonce: str, cnonce: str, nc: str
) -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")


def parse_auth_params(value: str) -> dict[str, str]:
    """``Digest realm="x", nonce="y", qop="auth"`` → dict (scheme dropped)."""
    _, _, rest = value.partition(" ")
    return {k.lower(): v for k, v in re.findall(r'(\w+)\s*=\s*"?([^",]*)"?', rest)}


def authorization(
    challenge: str, username: str, password: str, method: str, uri: str
) -> str:
    """The Authorization header value answering a WWW-Authenticate challenge."""
    p = parse_auth_params(challenge)
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    cnonce, nc = secrets.token_hex(8), "00000001"
    if "auth" in p.get("qop", "").split(","):
        resp = digest_response(username, realm, password, method, uri, nonce, cnonce, nc)
        return (
            f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
        )
    ha1 = _md5(f"{username}:{realm}:{password}")
    resp = _md5(f"{ha1}:{nonce}:{_md5(f'{method}:{uri}')}")
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{resp}", algorithm=MD5'
    )


def check_authorization(value: str, password: str, method: str, nonce: str) -> bool:
    p = parse_auth_params(value)
    if p.get("nonce") != nonce:
        return False
    want = digest_response(
        p.get("username", ""), p.get("realm", ""), password, method, p.get("uri", ""),
        nonce, p.get("cnonce", ""), p.get("nc", ""),
    )
    return secrets.compare_digest(want, p.get("response", ""))
