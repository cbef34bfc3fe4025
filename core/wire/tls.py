"""Sans-IO TLS record and handshake parser for one direction of a TCP stream (RFC 8446, RFC 5246).

``TlsRecordParser.feed()`` takes stream bytes; ``next_event()`` returns a ``TlsRecord`` for every
record, then the plaintext handshake messages it completes (``ClientHello``, ``ServerHello``,
``CertificateMsg``, ``HandshakeOther``) and ``Alert``s, or ``NEED_DATA``. Handshake messages may
span records and records may hold several messages (RFC 8446 §5.1), so handshake bytes are
reassembled. After ChangeCipherSpec (or when the capture starts mid-session) the direction is
encrypted: its handshake/alert records are reported only as records. Raises only ``ParseError``;
after one the parser is out of sync and reports ``NEED_DATA`` from then on (TLS has no
resynchronisation marker). Consumed bytes are skipped by an index and compacted at the next
``feed`` (work linear in the bytes fed, however small the records); once drained the parser
holds less than one record and one handshake message.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from core.errors import ParseError
from core.wire.stream import NEED_DATA as NEED_DATA
from core.wire.stream import NeedData

# RFC 8446 §5.1: a record carries at most 2^14 bytes plus expansion (2^14 + 2048 for TLS 1.2).
MAX_RECORD = 2**14 + 2048
MAX_HANDSHAKE = 256 * 1024  # certificate chains are tens of KB; more is hostile

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA, HEARTBEAT = 20, 21, 22, 23, 24
CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data",
                 24: "heartbeat"}
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}
# RFC 8446 §6 / RFC 5246 §7.2 alert descriptions.
ALERT_DESCRIPTIONS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
    22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure",
    41: "no_certificate", 42: "bad_certificate", 43: "unsupported_certificate",
    44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
    47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
    51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
    71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback",
    90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
    110: "unsupported_extension", 112: "unrecognized_name", 113: "bad_certificate_status_response",
    115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
}
ALERT_LEVELS = {1: "warning", 2: "fatal"}
# Handshake types (RFC 8446 §4).
CLIENT_HELLO, SERVER_HELLO, CERTIFICATE = 1, 2, 11
EXT_SERVER_NAME, EXT_SUPPORTED_VERSIONS = 0, 43


def version_name(v: int) -> str:
    if v & 0x0F0F == 0x0A0A:
        return f"GREASE 0x{v:04x}"  # RFC 8701 values, offered to keep servers honest
    return VERSIONS.get(v, f"0x{v:04x}")


@dataclass(frozen=True, slots=True)
class TlsRecord:
    content_type: int
    version: int
    length: int
    offset: int  # stream offset of the record header
    end: int
    encrypted: bool  # the direction had sent ChangeCipherSpec before (or it is application data)


@dataclass(frozen=True, slots=True)
class ClientHello:
    legacy_version: int
    sni: str | None
    offered_versions: tuple[int, ...]  # supported_versions extension, else (legacy_version,)
    end: int


@dataclass(frozen=True, slots=True)
class ServerHello:
    legacy_version: int
    selected_version: int  # supported_versions extension (TLS 1.3), else legacy_version
    end: int


@dataclass(frozen=True, slots=True)
class CertificateMsg:
    """TLS ≤ 1.2 Certificate: DER certificates, end-entity first (TLS 1.3 encrypts it)."""

    certificates: tuple[bytes, ...]
    end: int


@dataclass(frozen=True, slots=True)
class HandshakeOther:
    msg_type: int
    end: int


@dataclass(frozen=True, slots=True)
class Alert:
    level: str
    description: str
    end: int


TlsEvent = TlsRecord | ClientHello | ServerHello | CertificateMsg | HandshakeOther | Alert | NeedData


def looks_like_tls(data: bytes) -> bool:
    """First bytes of a stream: a TLS record header (type 20–23, major version 3)."""
    return len(data) >= 3 and data[0] in (20, 21, 22, 23) and data[1] == 3 and data[2] <= 4


def _vec(data: bytes, pos: int, size_len: int, what: str) -> tuple[bytes, int]:
    if pos + size_len > len(data):
        raise ParseError(f"TLS {what} length truncated", pos)
    n = int.from_bytes(data[pos:pos + size_len], "big")
    start = pos + size_len
    if start + n > len(data):
        raise ParseError(f"TLS {what} longer than its message", pos)
    return data[start:start + n], start + n


def _extensions(data: bytes, pos: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    if pos >= len(data):
        return out  # extensions are optional before TLS 1.3
    block, _ = _vec(data, pos, 2, "extensions")
    i = 0
    while i < len(block):
        if i + 4 > len(block):
            raise ParseError("TLS extension header truncated", pos + i)
        etype, elen = struct.unpack_from("!HH", block, i)
        if i + 4 + elen > len(block):
            raise ParseError("TLS extension longer than the block", pos + i)
        out.setdefault(etype, block[i + 4:i + 4 + elen])
        i += 4 + elen
    return out


def parse_client_hello(body: bytes, end: int) -> ClientHello:
    if len(body) < 38:
        raise ParseError("TLS ClientHello too short", 0)
    legacy = struct.unpack_from("!H", body)[0]
    pos = 34  # version + 32-byte random
    _, pos = _vec(body, pos, 1, "session id")
    _, pos = _vec(body, pos, 2, "cipher suites")
    _, pos = _vec(body, pos, 1, "compression methods")
    ext = _extensions(body, pos)
    sni = None
    if EXT_SERVER_NAME in ext:
        # RFC 6066 §3: ServerNameList of (type, HostName); type 0 is host_name.
        names, _ = _vec(ext[EXT_SERVER_NAME], 0, 2, "server_name list")
        i = 0
        while i + 3 <= len(names):
            ntype = names[i]
            host, i = _vec(names, i + 1, 2, "server name")
            if ntype == 0:
                sni = host.decode("ascii", "replace")
                break
    offered: tuple[int, ...] = (legacy,)
    if EXT_SUPPORTED_VERSIONS in ext:
        vs, _ = _vec(ext[EXT_SUPPORTED_VERSIONS], 0, 1, "supported_versions")
        offered = tuple(struct.unpack_from("!H", vs, i)[0] for i in range(0, len(vs) - 1, 2))
    return ClientHello(legacy, sni, offered, end)


def parse_server_hello(body: bytes, end: int) -> ServerHello:
    if len(body) < 38:
        raise ParseError("TLS ServerHello too short", 0)
    legacy = struct.unpack_from("!H", body)[0]
    pos = 34
    _, pos = _vec(body, pos, 1, "session id")
    pos += 3  # cipher suite + compression method
    if pos > len(body):
        raise ParseError("TLS ServerHello truncated", pos)
    ext = _extensions(body, pos)
    selected = legacy
    sv = ext.get(EXT_SUPPORTED_VERSIONS)
    if sv is not None and len(sv) >= 2:
        selected = struct.unpack_from("!H", sv)[0]
    return ServerHello(legacy, selected, end)


def parse_certificate(body: bytes, end: int) -> CertificateMsg:
    chain, _ = _vec(body, 0, 3, "certificate list")
    certs: list[bytes] = []
    pos = 0
    while pos < len(chain):
        cert, pos = _vec(chain, pos, 3, "certificate")
        certs.append(cert)
    return CertificateMsg(tuple(certs), end)


class TlsRecordParser:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # index in _buf of the first byte not yet consumed
        self._base = 0  # stream offset of _buf[_pos]
        self._hs = bytearray()  # plaintext handshake bytes not yet forming a whole message
        self._pending: deque[TlsEvent] = deque()
        self._encrypted = False
        self._first = True
        self._broken = False

    def feed(self, data: bytes) -> None:
        if not self._broken:
            if self._pos:
                del self._buf[:self._pos]
                self._pos = 0
            self._buf += data

    def next_event(self) -> TlsEvent:
        if self._pending:
            return self._pending.popleft()
        buf, pos = self._buf, self._pos
        if self._broken or len(buf) - pos < 5:
            return NEED_DATA
        ctype, version, length = struct.unpack_from("!BHH", buf, pos)
        start = self._base
        if ctype not in CONTENT_TYPES or version >> 8 != 3:
            self._fail()
            raise ParseError(f"TLS record header invalid (type {ctype}, version 0x{version:04x})", start)
        if length > MAX_RECORD:
            self._fail()
            raise ParseError(f"TLS record length {length} exceeds {MAX_RECORD}", start)
        if len(buf) - pos < 5 + length:
            return NEED_DATA
        body = bytes(buf[pos + 5:pos + 5 + length])
        self._pos += 5 + length
        self._base += 5 + length
        end = self._base
        if self._first:
            # A direction that opens with neither a handshake record nor a 2-byte plaintext
            # alert (a server refusing a ClientHello) was captured mid-session: it is encrypted.
            self._first = False
            self._encrypted = not (ctype == HANDSHAKE or (ctype == ALERT and length == 2))
        if ctype == ALERT and length != 2:
            self._encrypted = True  # a plaintext alert is exactly level + description
        encrypted = self._encrypted or ctype == APPLICATION_DATA
        record = TlsRecord(ctype, version, length, start, end, encrypted)
        if ctype == CHANGE_CIPHER_SPEC:
            self._encrypted = True
        elif ctype == ALERT and not self._encrypted:
            self._pending.append(Alert(ALERT_LEVELS.get(body[0], f"level {body[0]}"),
                                       ALERT_DESCRIPTIONS.get(body[1], f"alert {body[1]}"), end))
        elif ctype == HANDSHAKE and not self._encrypted:
            self._hs += body
            try:
                self._handshakes(end)
            except ParseError as exc:
                self._fail()
                raise ParseError(str(exc).split(" at byte")[0], start) from None
        return record

    def _fail(self) -> None:
        self._broken = True
        self._buf.clear()
        self._pos = 0

    def _handshakes(self, end: int) -> None:
        hs = self._hs
        pos = 0
        try:
            while len(hs) - pos >= 4:
                mtype = hs[pos]
                mlen = int.from_bytes(hs[pos + 1:pos + 4], "big")
                if mlen > MAX_HANDSHAKE:
                    raise ParseError(f"TLS handshake message length {mlen} exceeds {MAX_HANDSHAKE}", 0)
                if len(hs) - pos < 4 + mlen:
                    return
                body = bytes(hs[pos + 4:pos + 4 + mlen])
                pos += 4 + mlen
                self._handshake(mtype, body, end)
        finally:
            del hs[:pos]  # once per record: the messages it completed

    def _handshake(self, mtype: int, body: bytes, end: int) -> None:
        if mtype == CLIENT_HELLO:
            self._pending.append(parse_client_hello(body, end))
        elif mtype == SERVER_HELLO:
            self._pending.append(parse_server_hello(body, end))
        elif mtype == CERTIFICATE:
            self._pending.append(parse_certificate(body, end))
        else:
            self._pending.append(HandshakeOther(mtype, end))
