"""A small classic-pcap writer and the frame builders upscope needs to write captures.

Used by ``upscope convert`` (OSBiz trace → pcap), the per-call export, the benchmark generator
and the tests' fixtures. Output is libpcap format (https://www.tcpdump.org/manpages/pcap-savefile.5.html):
a 24-byte global header and 16-byte record headers, little-endian unless asked otherwise.
Checksums are computed so that tshark does not flag the frames.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL2 = 276

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D

_ETH_SRC = bytes.fromhex("020000000001")
_ETH_DST = bytes.fromhex("020000000002")


class PcapWriter:
    """Append records to a classic pcap stream; timestamps are integer nanoseconds or float seconds."""

    def __init__(
        self,
        fh: BinaryIO,
        linktype: int = LINKTYPE_ETHERNET,
        *,
        nanosecond: bool = False,
        big_endian: bool = False,
        snaplen: int = 262144,
    ) -> None:
        self._fh = fh
        self._ns = nanosecond
        self._endian = ">" if big_endian else "<"
        self._rec = struct.Struct(self._endian + "IIII")
        magic = MAGIC_NS if nanosecond else MAGIC_US
        fh.write(struct.pack(self._endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self.count = 0

    def write(self, ts: float | int, frame: bytes, orig_len: int | None = None) -> None:
        """Write one record. An ``int`` ts is nanoseconds since the epoch; a float is seconds."""
        ns = ts if isinstance(ts, int) else round(ts * 1e9)
        sec, frac_ns = divmod(ns, 1_000_000_000)
        frac = frac_ns if self._ns else frac_ns // 1000
        length = len(frame) if orig_len is None else orig_len
        self._fh.write(self._rec.pack(sec, frac, len(frame), length))
        self._fh.write(frame)
        self.count += 1


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_version(addr: str) -> int:
    return ipaddress.ip_address(addr).version


def ip_packet(src: str, dst: str, proto: int, l4: bytes, *, ident: int = 0, ttl: int = 64) -> bytes:
    """An IPv4 (no options, DF clear) or IPv6 packet around an already-built L4 segment."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version != d.version:
        raise ValueError(f"address families differ: {src} / {dst}")
    if s.version == 4:
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0, ttl, proto, 0,
                          s.packed, d.packed)
        hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
        return hdr + l4
    return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, ttl, s.packed, d.packed) + l4


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if s.version == 4:
        return s.packed + d.packed + struct.pack("!BBH", 0, proto, length)
    return s.packed + d.packed + struct.pack("!IxxxB", length, proto)


def udp_segment(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    csum = _checksum(_pseudo(src, dst, 17, length) + hdr + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def tcp_segment(
    src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int, payload: bytes,
    window: int = 65535,
) -> bytes:
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                      window, 0, 0)
    csum = _checksum(_pseudo(src, dst, 6, len(hdr) + len(payload)) + hdr + payload)
    return hdr[:16] + struct.pack("!H", csum) + hdr[18:] + payload


def ethernet(ip: bytes) -> bytes:
    ethertype = 0x0800 if ip[0] >> 4 == 4 else 0x86DD
    return _ETH_DST + _ETH_SRC + struct.pack("!H", ethertype) + ip


def eth_udp(src: str, sport: int, dst: str, dport: int, payload: bytes, *, ident: int = 0) -> bytes:
    """Ethernet/IP/UDP frame (IPv4 or IPv6 chosen by the addresses)."""
    return ethernet(ip_packet(src, dst, 17, udp_segment(src, sport, dst, dport, payload), ident=ident))


def eth_tcp(
    src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int, payload: bytes = b""
) -> bytes:
    """Ethernet/IP/TCP frame (IPv4 or IPv6 chosen by the addresses)."""
    seg = tcp_segment(src, sport, dst, dport, seq, ack, flags, payload)
    return ethernet(ip_packet(src, dst, 6, seg))
