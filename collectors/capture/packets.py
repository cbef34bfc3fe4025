"""The transport-level values the capture decoder hands to the protocol analysers.

Contract between the readers/decoders (``collectors.capture``) and the analysers
(``collectors.sip``, ``collectors.media``, ``collectors.tls``). Slotted, mutable-free by
convention: analysers must not keep the payload memoryview beyond the call (copy what they keep).
"""

from __future__ import annotations

from dataclasses import dataclass

# TCP flag bits (RFC 9293)
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass(slots=True)
class UdpPacket:
    frame: int  # 1-based frame number in the capture (as Wireshark counts)
    ts: float  # UNIX seconds
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


@dataclass(slots=True)
class TcpSegment:
    frame: int
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes


@dataclass(slots=True)
class StreamData:
    """In-order bytes of one direction of a reassembled TCP connection."""

    frame: int  # frame that completed this piece
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
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
