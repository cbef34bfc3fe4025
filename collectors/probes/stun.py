"""Sans-IO STUN (RFC 5389) for the binding probe: build a Binding request, parse any message.

The parser accepts every well-formed STUN message (requests, indications, success and error
responses, RFC 3489 "classic" messages without the magic cookie) so it can be checked against
real captures; the probe itself only sends a Binding request and reads XOR-MAPPED-ADDRESS
(RFC 5389 §15.2), falling back to MAPPED-ADDRESS (§15.1) for classic servers.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from core.errors import ParseError

MAGIC_COOKIE = 0x2112A442  # RFC 5389 §6
HEADER_LEN = 20
BINDING = 0x001

# Attribute types (RFC 5389 §18.2, RFC 3489 §11.2).
MAPPED_ADDRESS = 0x0001
ERROR_CODE = 0x0009
XOR_MAPPED_ADDRESS = 0x0020
SOFTWARE = 0x8022
FINGERPRINT = 0x8028

CLASSES = {0b00: "request", 0b01: "indication", 0b10: "success", 0b11: "error"}


@dataclass(frozen=True, slots=True)
class StunMessage:
    method: int
    msg_class: str  # "request" | "indication" | "success" | "error"
    transaction_id: bytes  # 12 bytes (RFC 5389) — the cookie is not part of it
    magic_cookie: bool  # False for RFC 3489 classic messages
    attributes: tuple[tuple[int, bytes], ...]

    def attribute(self, attr_type: int) -> bytes | None:
        for kind, value in self.attributes:
            if kind == attr_type:
                return value
        return None

    @property
    def mapped_address(self) -> tuple[str, int] | None:
        """The reflexive transport address: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS."""
        xored = self.attribute(XOR_MAPPED_ADDRESS)
        if xored is not None and self.magic_cookie:
            return _decode_address(xored, self._xor_key())
        plain = self.attribute(MAPPED_ADDRESS)
        if plain is not None:
            return _decode_address(plain, None)
        return None

    @property
    def error(self) -> tuple[int, str] | None:
        """(code, reason phrase) of ERROR-CODE (RFC 5389 §15.6)."""
        raw = self.attribute(ERROR_CODE)
        if raw is None:
            return None
        if len(raw) < 4:
            raise ParseError("STUN ERROR-CODE: shorter than 4 bytes")
        code = (raw[2] & 0x07) * 100 + raw[3]
        return code, raw[4:].decode("utf-8", "replace")

    def _xor_key(self) -> bytes:
        return struct.pack("!I", MAGIC_COOKIE) + self.transaction_id


def _decode_address(raw: bytes, xor_key: bytes | None) -> tuple[str, int]:
    if len(raw) < 4:
        raise ParseError("STUN address attribute: shorter than 4 bytes")
    family = raw[1]
    port = struct.unpack("!H", raw[2:4])[0]
    size = {0x01: 4, 0x02: 16}.get(family)
    if size is None:
        raise ParseError(f"STUN address attribute: unknown family {family:#04x}")
    if len(raw) != 4 + size:
        raise ParseError(f"STUN address attribute: {len(raw)} bytes for family {family:#04x}")
    addr = raw[4:]
    if xor_key is not None:
        port ^= MAGIC_COOKIE >> 16
        addr = bytes(a ^ k for a, k in zip(addr, xor_key, strict=False))
    return str(ipaddress.ip_address(addr)), port


def parse_message(data: bytes) -> StunMessage:
    """One whole STUN message (a UDP datagram, or one frame cut from a TCP stream)."""
    if len(data) < HEADER_LEN:
        raise ParseError(f"STUN message: {len(data)} bytes, shorter than the 20-byte header", 0)
    msg_type, length, cookie = struct.unpack("!HHI", data[:8])
    if msg_type & 0xC000:
        raise ParseError("STUN message: the two leading bits are not zero", 0)
    if length % 4:
        raise ParseError(f"STUN message: length {length} is not a multiple of 4", 2)
    if HEADER_LEN + length != len(data):
        raise ParseError(f"STUN message: header says {length} body bytes, got {len(data) - HEADER_LEN}", 2)
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    msg_class = CLASSES[((msg_type >> 4) & 0x1) | ((msg_type >> 7) & 0x2)]
    attributes: list[tuple[int, bytes]] = []
    pos = HEADER_LEN
    while pos < len(data):
        if pos + 4 > len(data):
            raise ParseError("STUN attribute: truncated header", pos)
        attr_type, attr_len = struct.unpack("!HH", data[pos:pos + 4])
        end = pos + 4 + attr_len
        if end > len(data):
            raise ParseError(f"STUN attribute {attr_type:#06x}: length {attr_len} runs past the message", pos)
        attributes.append((attr_type, bytes(data[pos + 4:end])))
        pos = end + (-attr_len % 4)  # attributes are padded to 4 bytes (RFC 5389 §15)
    return StunMessage(
        method=method,
        msg_class=msg_class,
        transaction_id=bytes(data[8:20]),
        magic_cookie=cookie == MAGIC_COOKIE,
        attributes=tuple(attributes),
    )


def build_binding_request(transaction_id: bytes, software: str | None = "upscope-probe") -> bytes:
    """A Binding request (RFC 5389 §7.1) with an optional SOFTWARE attribute."""
    if len(transaction_id) != 12:
        raise ValueError("STUN transaction id must be 12 bytes")
    body = b""
    if software:
        value = software.encode("utf-8")
        body = struct.pack("!HH", SOFTWARE, len(value)) + value + b"\0" * (-len(value) % 4)
    return struct.pack("!HHI", BINDING, len(body), MAGIC_COOKIE) + transaction_id + body
