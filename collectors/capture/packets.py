"""The transport-level values the capture decoder hands to the protocol analysers.

Contract between the readers/decoders (``collectors.capture``) and the analysers
(``collectors.sip``, ``collectors.media``, ``collectors.tls``). Slotted, mutable-free by
convention: analysers must not keep the payload memoryview beyond the call (copy what they keep).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

# TCP flag bits (RFC 9293)
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass(slots=True)
class Addressed:
    """Where a capture record was seen: its frame, its time and both ends."""

    frame: int  # 1-based frame number in the capture (as Wireshark counts)
    ts: float  # UNIX seconds
    src: str
    sport: int
    dst: str
    dport: int


@dataclass(slots=True)
class UdpPacket(Addressed):
    payload: bytes


@dataclass(slots=True)
class TcpSegment(Addressed):
    seq: int
    ack: int
    flags: int
    payload: bytes


@dataclass(slots=True)
class StreamData(Addressed):
    """In-order bytes of one direction of a reassembled TCP connection (``frame``: the frame
    that completed this piece)."""

    data: bytes
    connection: int  # index of the TCP connection (SYN-separated reconnects get new numbers)
    gap: int = 0  # bytes missing (never captured) right before ``data``; framing must resync


@dataclass(slots=True)
class IcmpUnreachable:
    """ICMP/ICMPv6 destination unreachable quoting a UDP/TCP packet we sent."""

    frame: int
    ts: float
    reporter: str
    proto: str  # "udp" | "tcp" of the quoted packet
    src: str
    sport: int
    dst: str
    dport: int
    code: int


@dataclass(slots=True)
class UdpBatch:
    """Columns of plain IPv4/UDP datagrams that look like RTP/RTCP (first byte 0b10……).

    The capture fast lane hands these to a vectorising media analyser in one call per chunk
    instead of one ``UdpPacket`` per datagram (the per-packet budget of a 1-M-packet capture is
    ~1.5 µs). Arrays are numpy (``frame``/``payload_off``/``payload_len``: int64, ``ts``: float64,
    ``src``/``dst``: uint32 IPv4 as big-endian integers, ``sport``/``dport``: int64); payload
    bytes are ``buf[payload_off[i]:payload_off[i] + payload_len[i]]``. Rows are in frame order.
    ``packet(i)`` builds the equivalent ``UdpPacket`` for analysers without a batch API.
    """

    buf: bytes
    frame: Any
    ts: Any
    src: Any
    sport: Any
    dst: Any
    dport: Any
    payload_off: Any
    payload_len: Any
    # optional (n, 12) uint8: each payload's first 12 bytes (the RTP fixed header), when the
    # producer has them at hand already (the capture fast lane) — spares a second gather
    head: Any = None

    def __len__(self) -> int:
        return len(self.frame)

    def packet(self, i: int) -> UdpPacket:
        off = int(self.payload_off[i])
        return UdpPacket(int(self.frame[i]), float(self.ts[i]), ipv4_name(int(self.src[i])), int(self.sport[i]),
                         ipv4_name(int(self.dst[i])), int(self.dport[i]),
                         self.buf[off:off + int(self.payload_len[i])])


def ipv4_name(value: int) -> str:
    """An IPv4 address held as a big-endian integer, in dotted-quad form."""
    return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"


class Ipv4Names:
    """``ipv4_name`` with its results kept: a trunk's few addresses are formatted once. Bounded
    (the addresses come from the input): past ``limit`` the cache starts again."""

    def __init__(self, limit: int = 65536) -> None:
        self._names: dict[int, str] = {}
        self._limit = limit

    def __call__(self, value: int) -> str:
        name = self._names.get(value)
        if name is None:
            if len(self._names) >= self._limit:
                self._names.clear()
            name = self._names[value] = ipv4_name(value)
        return name


def ipv4_int(addr: str) -> int:
    """A dotted-quad IPv4 address as a big-endian integer (OSError when it is not one)."""
    return int.from_bytes(socket.inet_aton(addr), "big")
