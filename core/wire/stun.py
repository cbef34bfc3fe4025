"""Sans-IO STUN parser: RFC 5389/8489 messages (with TURN, RFC 8656, method names), RFC 3489
"classic" messages without the magic cookie, and the stream framing of STUN over TCP.

Raises only ``ParseError``. ``is_stun`` is the cheap check that decides whether a datagram is
STUN at all (it must not claim RTP, DTLS or SIP).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import ParseError
from core.wire.stream import NEED_DATA as NEED_DATA  # re-exported: callers test next_event() against it
from core.wire.stream import NeedData, StreamBuffer

MAGIC_COOKIE = 0x2112A442  # RFC 5389 §6 (the one definition in the repository)
MAGIC_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")
HEADER_LEN = 20
MAX_MESSAGE = 65535 + HEADER_LEN  # the length field is 16 bits
MAX_FRAME = 4 + 65535 + 3  # the largest frame on a stream: ChannelData with its padding
MAX_ATTRIBUTES = 128

# RFC 8489 §18.2 / RFC 8656 §17 method registry.
BINDING = 0x001
METHODS: dict[int, str] = {
    0x001: "Binding", 0x002: "SharedSecret", 0x003: "Allocate", 0x004: "Refresh",
    0x006: "Send", 0x007: "Data", 0x008: "CreatePermission", 0x009: "ChannelBind",
    0x00A: "Connect", 0x00B: "ConnectionBind", 0x00C: "ConnectionAttempt",
}
CLASSES = ("request", "indication", "success", "error")

# Attribute types (RFC 8489 §18.3, RFC 3489 §11.2, RFC 8656 §18).
MAPPED_ADDRESS = 0x0001
ERROR_CODE = 0x0009
XOR_MAPPED_ADDRESS = 0x0020
XOR_MAPPED_ADDRESS_OLD = 0x8020  # pre-RFC draft value still sent by some stacks
XOR_RELAYED_ADDRESS = 0x0016
SOFTWARE = 0x8022

# RFC 3489 §11.1 message types (same code points as Binding in RFC 5389, plus Shared Secret).
CLASSIC_TYPES = frozenset({0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112})


@dataclass(frozen=True, slots=True)
class StunMessage:
    method: str  # "Binding", "Allocate", … or "0x0NN" for an unknown method
    klass: str  # request | indication | success | error
    transaction_id: str  # hex: 12 bytes (RFC 5389) or 16 bytes (RFC 3489)
    classic: bool  # RFC 3489 without the magic cookie
    attributes: tuple[tuple[int, bytes], ...]
    mapped_address: str | None  # "ip:port" from XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS
    relayed_address: str | None
    error_code: int | None
    error_reason: str
    length: int  # whole message size in bytes




@dataclass(frozen=True, slots=True)
class ChannelData:
    """A TURN ChannelData frame on a stream (RFC 8656 §12.4); counted, not interpreted."""

    channel: int
    length: int


def is_stun(data: bytes) -> bool:
    """A plausible whole STUN message: right size, top bits 00, and cookie or a classic type."""
    return _stun_header_fits(data, 0, len(data))


def _address(value: bytes, xor: bool, tid: bytes, offset: int) -> str:
    if len(value) < 4:
        raise ParseError("STUN address attribute too short", offset)
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    if xor:
        port ^= MAGIC_COOKIE >> 16
    if family == 0x01 and len(value) >= 8:
        raw = value[4:8]
        if xor:
            raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC_COOKIE), strict=True))
        return f"{ipaddress.IPv4Address(raw)}:{port}"
    if family == 0x02 and len(value) >= 20:
        raw = value[4:20]
        if xor:
            raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC_COOKIE) + tid, strict=True))
        return f"[{ipaddress.IPv6Address(raw)}]:{port}"
    raise ParseError(f"STUN address family {family} unknown or truncated", offset)


def parse_stun(data: bytes) -> StunMessage:
    if len(data) < HEADER_LEN:
        raise ParseError("STUN message shorter than its 20-byte header", len(data))
    mtype, length, cookie = struct.unpack_from("!HHI", data)
    if mtype & 0xC000:
        raise ParseError("STUN message type has the top bits set", 0)
    if length + HEADER_LEN > len(data):
        raise ParseError(f"STUN length {length} beyond the {len(data)} bytes present", 2)
    classic = cookie != MAGIC_COOKIE
    if classic and mtype not in CLASSIC_TYPES:
        raise ParseError(f"STUN message type 0x{mtype:04x} without magic cookie", 0)
    tid = data[8:20]
    tid_hex = data[4:20].hex() if classic else tid.hex()
    # RFC 5389 §6: class bits C1 (0x0100) and C0 (0x0010) are interleaved with the method bits.
    klass = CLASSES[((mtype >> 7) & 0x2) | ((mtype >> 4) & 0x1)]
    method_no = (mtype & 0x000F) | ((mtype & 0x00E0) >> 1) | ((mtype & 0x3E00) >> 2)
    method = METHODS.get(method_no, f"0x{method_no:03x}")
    attrs: list[tuple[int, bytes]] = []
    mapped = xor_mapped = relayed = None
    error_code: int | None = None
    error_reason = ""
    pos = HEADER_LEN
    end = HEADER_LEN + length
    while pos < end:
        if len(attrs) >= MAX_ATTRIBUTES:
            raise ParseError(f"STUN message has more than {MAX_ATTRIBUTES} attributes", pos)
        if pos + 4 > end:
            raise ParseError("STUN attribute header truncated", pos)
        atype, alen = struct.unpack_from("!HH", data, pos)
        vstart = pos + 4
        if vstart + alen > end:
            raise ParseError(f"STUN attribute 0x{atype:04x} length {alen} beyond the message", pos)
        value = bytes(data[vstart:vstart + alen])
        attrs.append((atype, value))
        if atype == MAPPED_ADDRESS:
            mapped = _address(value, False, tid, pos)
        elif atype in (XOR_MAPPED_ADDRESS, XOR_MAPPED_ADDRESS_OLD) and not classic:
            xor_mapped = _address(value, True, tid, pos)
        elif atype == XOR_RELAYED_ADDRESS and not classic:
            relayed = _address(value, True, tid, pos)
        elif atype == ERROR_CODE:
            if alen < 4:
                raise ParseError("STUN ERROR-CODE too short", pos)
            # RFC 5389 §15.6: class (hundreds) in 3 bits, number (0–99) in the last byte.
            error_code = (value[2] & 0x07) * 100 + value[3]
            error_reason = value[4:].decode("utf-8", "replace")
        # RFC 5389 §15: values are padded to 4 bytes (RFC 3489 had no padding, lengths were ×4).
        pos = vstart + alen + (-alen % 4)
    return StunMessage(method, klass, tid_hex, classic, tuple(attrs), xor_mapped or mapped, relayed,
                       error_code, error_reason, end)


def message_type(method: int, klass: str) -> int:
    """The 14-bit message type of ``method`` (a METHODS number) and ``klass`` (RFC 5389 §6)."""
    c = CLASSES.index(klass)
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((c & 1) << 4) | ((c & 2) << 7))


def build_stun(method: int, klass: str, transaction_id: bytes,
               attributes: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """A STUN message with the magic cookie; attribute values are padded to 4 bytes (§15)."""
    if len(transaction_id) != 12:
        raise ValueError("STUN transaction id must be 12 bytes")
    body = b"".join(struct.pack("!HH", atype, len(value)) + value + b"\0" * (-len(value) % 4)
                    for atype, value in attributes)
    return struct.pack("!HHI", message_type(method, klass), len(body), MAGIC_COOKIE) + transaction_id + body


def xor_address(host: str, port: int, transaction_id: bytes) -> bytes:
    """The value of an XOR-MAPPED-ADDRESS / XOR-RELAYED-ADDRESS attribute (RFC 5389 §15.2)."""
    ip = ipaddress.ip_address(host)
    key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
    raw = bytes(a ^ b for a, b in zip(ip.packed, key, strict=False))
    return struct.pack("!BBH", 0, 0x01 if ip.version == 4 else 0x02, port ^ (MAGIC_COOKIE >> 16)) + raw


def build_binding_request(transaction_id: bytes, software: str | None = None) -> bytes:
    """A Binding request (RFC 5389 §7.1), with a SOFTWARE attribute when ``software`` is given."""
    attrs = [(SOFTWARE, software.encode("utf-8"))] if software else []
    return build_stun(BINDING, "request", transaction_id, attrs)


def build_binding_success(transaction_id: bytes, mapped: tuple[str, int], software: str | None = None) -> bytes:
    """A Binding success response carrying ``mapped`` as XOR-MAPPED-ADDRESS (RFC 5389 §7.3.1)."""
    attrs = [(XOR_MAPPED_ADDRESS, xor_address(mapped[0], mapped[1], transaction_id))]
    if software:
        attrs.append((SOFTWARE, software.encode("utf-8")))
    return build_stun(BINDING, "success", transaction_id, attrs)


def parse_datagram(data: bytes) -> StunMessage:
    """One STUN message in one UDP datagram: the length field must cover the datagram exactly."""
    if not is_stun(data):
        raise ParseError("datagram is not one STUN message (type, cookie or length)", 0)
    return parse_stun(data)


def looks_like_rfc4571(head: bytes) -> bool:
    """A 2-byte RFC 4571 length followed by a STUN header with the magic cookie."""
    return (len(head) >= 10 and head[2] & 0xC0 == 0
            and struct.unpack_from("!I", head, 6)[0] == MAGIC_COOKIE)


def looks_like_stun_stream(head: bytes) -> bool:
    """First bytes of a TCP stream: STUN with the magic cookie (plain or RFC 4571), or ChannelData."""
    if len(head) < 8:
        return False
    first, _, cookie = struct.unpack_from("!HHI", head)
    return (0x4000 <= first <= 0x7FFF or (first & 0xC000 == 0 and cookie == MAGIC_COOKIE)
            or looks_like_rfc4571(head[:10]))


class StunStreamFramer(StreamBuffer):
    """STUN over TCP/TLS (RFC 8489 §6.2.2): messages back to back, TURN ChannelData between.

    Frames that are not STUN inside an RFC 4571 stream are skipped in a loop, and consumed bytes
    by an index (compacted at the next ``feed``), so the work is linear in the bytes fed. Once
    ``next_event`` has returned ``NEED_DATA`` the framer holds less than one frame of at most
    ``MAX_FRAME`` bytes.
    """

    def __init__(self) -> None:
        super().__init__()
        # ICE-TCP (RFC 6544 §3) puts each STUN message behind an RFC 4571 2-byte length;
        # decided on the first message of the stream: None = not yet known.
        self._rfc4571: bool | None = None

    def next_event(self) -> StunMessage | ChannelData | NeedData:
        buf = self._buf
        if len(buf) - self._pos < 4:
            return NEED_DATA
        if self._rfc4571 is None:
            if 0x40 <= buf[self._pos] <= 0x7F:
                self._rfc4571 = False  # ChannelData first (its lengths are never that large)
            elif len(buf) - self._pos < 10:
                return NEED_DATA
            else:
                self._rfc4571 = looks_like_rfc4571(bytes(buf[self._pos:self._pos + 10]))
        if self._rfc4571:
            return self._next_rfc4571()
        pos = self._pos
        first, length = struct.unpack_from("!HH", buf, pos)
        start = self.offset
        if 0x4000 <= first <= 0x7FFF:
            # RFC 8656 §12.5: over TCP, ChannelData is padded to a multiple of 4.
            total = 4 + length + (-length % 4)
            if len(buf) - pos < total:
                return NEED_DATA
            self._pos += total
            return ChannelData(first, length)
        if first & 0xC000:
            self._pos = len(buf)
            raise ParseError("STUN stream is out of sync (not STUN or ChannelData)", start)
        total = HEADER_LEN + length
        if len(buf) - pos < total:
            return NEED_DATA
        chunk = bytes(buf[pos:pos + total])
        self._pos += total
        return _parse_at(chunk, start)

    def _next_rfc4571(self) -> StunMessage | ChannelData | NeedData:
        buf = self._buf
        while len(buf) - self._pos >= 2:
            pos = self._pos
            (length,) = struct.unpack_from("!H", buf, pos)
            if len(buf) - pos < 2 + length:
                return NEED_DATA
            self._pos += 2 + length
            # ICE-TCP also frames RTP/RTCP (RFC 4571); those are not STUN and are skipped
            # without copying them.
            if not _stun_header_fits(buf, pos + 2, length):
                continue
            return _parse_at(bytes(buf[pos + 2:pos + 2 + length]), self._origin + pos + 2)
        return NEED_DATA


def _stun_header_fits(buf: bytes | bytearray, pos: int, size: int) -> bool:
    """``is_stun`` of ``buf[pos:pos + size]`` without copying it."""
    if size < HEADER_LEN:
        return False
    mtype, length, cookie = struct.unpack_from("!HHI", buf, pos)
    if mtype & 0xC000 or length % 4 or length + HEADER_LEN != size:
        return False
    return cookie == MAGIC_COOKIE or mtype in CLASSIC_TYPES


def _parse_at(chunk: bytes, start: int) -> StunMessage:
    """``parse_stun`` of a frame that begins at stream offset ``start`` (errors re-anchored)."""
    try:
        return parse_stun(chunk)
    except ParseError as exc:
        # Re-anchor the offset in the stream; the message keeps its own text.
        raise ParseError(str(exc).split(" at byte")[0], start + (exc.offset or 0)) from None
