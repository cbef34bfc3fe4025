"""Small builders for hand-made capture fixtures (pcap, pcapng, link layers, tunnels, fragments)."""

from __future__ import annotations

import io
import ipaddress
import struct
from pathlib import Path

from traces.pcap_writer import PcapWriter, ip_packet, tcp_segment, udp_segment

PCAPS = Path(__file__).resolve().parents[3] / ".." / "shared" / "pcaps"

ETH_HDR = bytes.fromhex("020000000002020000000001")


def pcap_bytes(frames: list[tuple[float | int, bytes]], linktype: int = 1, **kw: object) -> bytes:
    buf = io.BytesIO()
    w = PcapWriter(buf, linktype, **kw)  # type: ignore[arg-type]
    for ts, frame in frames:
        w.write(ts, frame)
    return buf.getvalue()


def ng_block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def ng_shb(e: str = "<") -> bytes:
    return ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def ng_idb(linktype: int, tsresol: int | None = None, e: str = "<", snaplen: int = 65535) -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\x00\x00\x00" + struct.pack(e + "HH", 0, 0)
    return ng_block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, e)


def ng_epb(iface: int, ticks: int, data: bytes, e: str = "<") -> bytes:
    return ng_block(6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
                    + data, e)


def ng_spb(data: bytes, e: str = "<") -> bytes:
    return ng_block(3, struct.pack(e + "I", len(data)) + data, e)


def ng_opb(iface: int, ticks: int, data: bytes, e: str = "<") -> bytes:
    return ng_block(2, struct.pack(e + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                   len(data)) + data, e)


def ipv4_udp(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    return ip_packet(src, dst, 17, udp_segment(src, sport, dst, dport, payload))


def ipv4_tcp(src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int,
             payload: bytes = b"") -> bytes:
    return ip_packet(src, dst, 6, tcp_segment(src, sport, dst, dport, seq, ack, flags, payload))


def eth(ethertype: int, payload: bytes, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    """Ethernet with optional VLAN tags given as (tag ethertype, vlan id), outermost first."""
    out = ETH_HDR
    for tpid, vid in tags:
        out += struct.pack("!HH", tpid, vid)
    return out + struct.pack("!H", ethertype) + payload


def ipv4_fragments(src: str, dst: str, proto: int, l4: bytes, size: int, ident: int = 0x1234) -> list[bytes]:
    """Split an L4 segment into IPv4 fragments of ``size`` payload bytes (a multiple of 8)."""
    out = []
    s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
    for off in range(0, len(l4), size):
        piece = l4[off:off + size]
        more = 0x2000 if off + size < len(l4) else 0
        out.append(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(piece), ident, more | (off // 8), 64, proto, 0,
                               s, d) + piece)
    return out


def ipv6_fragments(src: str, dst: str, proto: int, l4: bytes, size: int, ident: int = 0xABCD) -> list[bytes]:
    out = []
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    for off in range(0, len(l4), size):
        piece = l4[off:off + size]
        more = 1 if off + size < len(l4) else 0
        frag = struct.pack("!BBHI", proto, 0, off | more, ident)
        out.append(struct.pack("!IHBB16s16s", 6 << 28, len(frag) + len(piece), 44, 64, s, d) + frag + piece)
    return out


SIP_OPTIONS = (b"OPTIONS sip:connector.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
               b"From: <sip:pbx@10.0.0.1>;tag=1\r\nTo: <sip:connector.example>\r\nCall-ID: opt-1@10.0.0.1\r\n"
               b"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
