"""Link-layer, tunnel and IP decoding down to UDP datagrams, TCP segments and ICMP errors.

Theory of operation: ``Decoder.decode(frame, ts, linktype, data, truncated)`` peels the link
layer (Ethernet with 802.1Q/QinQ tags, Linux SLL/SLL2, raw IP, BSD loopback, PPP, PPPoE),
then IP (IPv4/IPv6 with extension headers), unwrapping tunnels on the way (GRE incl.
Transparent Ethernet Bridging and ERSPAN I/II/III, IP-in-IP, VXLAN), and reassembles IP
fragments. What comes out goes to a ``PacketSink``. Anything it cannot make sense of becomes an
``ErrorItem`` (``malformed`` / ``truncated``), and SIP-carrying encapsulations upscope does not
analyse (GTP-U, SCTP) become ``unsupported`` items, never silently dropped.

The pure helpers (``link_payload``, ``parse_ip``) raise only ``ParseError``; ``decode`` turns
those into error items so one bad frame never stops the analysis.
"""

from __future__ import annotations

import socket
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from collectors.capture.packets import IcmpUnreachable, TcpSegment, UdpPacket
from core.analysis import ErrorItem
from core.errors import ParseError

# Link types (https://www.tcpdump.org/linktypes.html)
DLT_NULL, DLT_EN10MB, DLT_PPP, DLT_RAW_OLD1, DLT_RAW_OLD2 = 0, 1, 9, 12, 14
DLT_RAW, DLT_LOOP, DLT_LINUX_SLL, DLT_IPV4, DLT_IPV6, DLT_LINUX_SLL2 = 101, 108, 113, 228, 229, 276
LINK_NAMES = {
    DLT_NULL: "null", DLT_EN10MB: "ethernet", DLT_PPP: "ppp", DLT_RAW_OLD1: "raw", DLT_RAW_OLD2: "raw",
    DLT_RAW: "raw", DLT_LOOP: "loop", DLT_LINUX_SLL: "linux-sll", DLT_IPV4: "raw-ipv4",
    DLT_IPV6: "raw-ipv6", DLT_LINUX_SLL2: "linux-sll2",
}

ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD = 0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100
ETH_PPPOE_SESSION, ETH_TEB, ETH_ERSPAN_2, ETH_ERSPAN_3, ETH_PPP = 0x8864, 0x6558, 0x88BE, 0x22EB, 0x880B
_VLAN_TYPES = frozenset((ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD))
# PPP protocol numbers (RFC 1661/1332/5072)
PPP_IPV4, PPP_IPV6 = 0x0021, 0x0057
# BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD),
# 28 (FreeBSD), 30 (macOS) and 10 (Linux).
_AF_INET6 = frozenset((10, 24, 28, 30))
# IP protocol numbers
P_ICMP, P_IPIP, P_TCP, P_UDP, P_IPV6, P_GRE, P_ICMPV6, P_SCTP = 1, 4, 6, 17, 41, 47, 58, 132
_V6_EXT = frozenset((0, 43, 60, 51))  # hop-by-hop, routing, destination options, AH
UDP_GTP_U, UDP_VXLAN = 2152, 4789
MAX_DEPTH = 8  # nested tunnels before we call it hostile
MAX_DATAGRAM = 65535  # an IP datagram's payload cannot go past this (IPv6 jumbograms aside)


class PacketSink(Protocol):
    def udp(self, pkt: UdpPacket) -> None: ...
    def tcp(self, seg: TcpSegment) -> None: ...
    def icmp(self, msg: IcmpUnreachable) -> None: ...
    def error(self, item: ErrorItem) -> None: ...


@dataclass(frozen=True, slots=True)
class IpPacket:
    """One IP header's worth: addresses, protocol and the payload bytes after all extension headers."""

    version: int
    src: str
    dst: str
    proto: int
    payload: bytes
    frag_id: int | None = None  # set when this is a fragment
    frag_offset: int = 0  # bytes
    more_fragments: bool = False
    cut_short: bool = False  # the header's length claims more bytes than the frame holds


def _need(data: bytes, n: int, what: str, off: int = 0) -> None:
    if len(data) < n:
        raise ParseError(f"{what} cut short ({len(data)} of {n} bytes)", off)


def ethertype_payload(ethertype: int, data: bytes, off: int) -> tuple[int, bytes]:
    """Skip VLAN tags and PPPoE/PPP; return (IP version 4/6 or 0 for non-IP, bytes from the IP header)."""
    while ethertype in _VLAN_TYPES:
        _need(data, off + 4, "VLAN tag")
        ethertype = struct.unpack_from("!H", data, off + 2)[0]
        off += 4
    if ethertype == ETH_IPV4:
        return 4, data[off:]
    if ethertype == ETH_IPV6:
        return 6, data[off:]
    if ethertype == ETH_PPPOE_SESSION:
        _need(data, off + 8, "PPPoE header")
        length = struct.unpack_from("!H", data, off + 4)[0]
        return ppp_payload(data[off + 6:off + 6 + length], 0)
    return 0, b""


def ppp_payload(data: bytes, off: int) -> tuple[int, bytes]:
    """PPP (optionally HDLC-framed ff 03, optionally with a compressed 1-byte protocol field)."""
    if data[off:off + 2] == b"\xff\x03":
        off += 2
    _need(data, off + 1, "PPP header")
    if data[off] & 1:  # protocol-field compression (RFC 1661 §6.5): odd first byte = 1-byte field
        proto, off = data[off], off + 1
    else:
        _need(data, off + 2, "PPP header")
        proto, off = struct.unpack_from("!H", data, off)[0], off + 2
    if proto == PPP_IPV4:
        return 4, data[off:]
    if proto == PPP_IPV6:
        return 6, data[off:]
    return 0, b""


def link_payload(linktype: int, data: bytes) -> tuple[int, bytes]:
    """Peel the link layer; returns (4 | 6 | 0, bytes starting at the IP header). Raises ParseError."""
    if linktype == DLT_EN10MB:
        _need(data, 14, "Ethernet header")
        return ethertype_payload(struct.unpack_from("!H", data, 12)[0], data, 14)
    if linktype in (DLT_RAW, DLT_RAW_OLD1, DLT_RAW_OLD2, DLT_IPV4, DLT_IPV6):
        _need(data, 1, "raw IP header")
        version = data[0] >> 4
        return (version, data) if version in (4, 6) else (0, b"")
    if linktype == DLT_LINUX_SLL:
        _need(data, 16, "Linux cooked header")
        return ethertype_payload(struct.unpack_from("!H", data, 14)[0], data, 16)
    if linktype == DLT_LINUX_SLL2:
        _need(data, 20, "Linux cooked v2 header")
        return ethertype_payload(struct.unpack_from("!H", data, 0)[0], data, 20)
    if linktype in (DLT_NULL, DLT_LOOP):
        _need(data, 4, "loopback header")
        # DLT_NULL stores the family in the capturing host's byte order; DLT_LOOP in network order.
        af = struct.unpack_from("!I" if linktype == DLT_LOOP else "<I", data)[0]
        if af > 0xFFFF:
            af = struct.unpack_from("!I", data)[0]
        if af == 2:
            return 4, data[4:]
        if af in _AF_INET6:
            return 6, data[4:]
        return 0, b""
    if linktype == DLT_PPP:
        return ppp_payload(data, 0)
    raise ParseError(f"link type {linktype} not supported", 0)


def parse_ip(version: int, data: bytes) -> IpPacket:
    """Parse one IPv4 or IPv6 header (with extension headers). Raises ParseError."""
    if version == 4:
        _need(data, 20, "IPv4 header")
        vihl, total, ident, frag, proto = data[0], *struct.unpack_from("!HHH", data, 2), data[9]
        if vihl >> 4 != 4:
            raise ParseError(f"IPv4 header with version {vihl >> 4}", 0)
        ihl = (vihl & 0x0F) * 4
        if ihl < 20 or total < ihl:
            raise ParseError(f"IPv4 header length {ihl} / total length {total} invalid", 0)
        _need(data, ihl, "IPv4 header")
        src, dst = socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])
        cut = total > len(data)
        payload = data[ihl:total]
        off, more = (frag & 0x1FFF) * 8, bool(frag & 0x2000)
        if off or more:
            return IpPacket(4, src, dst, proto, payload, ident, off, more, cut)
        return IpPacket(4, src, dst, proto, payload, cut_short=cut)
    if version == 6:
        _need(data, 40, "IPv6 header")
        if data[0] >> 4 != 6:
            raise ParseError(f"IPv6 header with version {data[0] >> 4}", 0)
        plen, nxt = struct.unpack_from("!HB", data, 4)
        src = socket.inet_ntop(socket.AF_INET6, data[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, data[24:40])
        end = 40 + plen
        cut = end > len(data)
        pos = 40
        frag_id: int | None = None
        frag_off, more = 0, False
        for _ in range(16):  # bounded walk over the extension-header chain
            if nxt in _V6_EXT:
                _need(data, pos + 2, "IPv6 extension header", pos)
                size = (data[pos + 1] + 2) * 4 if nxt == 51 else (data[pos + 1] + 1) * 8
                nxt, pos = data[pos], pos + size
            elif nxt == 44:  # fragment header (RFC 8200 §4.5)
                _need(data, pos + 8, "IPv6 fragment header", pos)
                nxt, fo, frag_id = data[pos], *struct.unpack_from("!HI", data, pos + 2)
                frag_off, more = fo & 0xFFF8, bool(fo & 1)
                pos += 8
            else:
                break
        else:
            raise ParseError("IPv6 extension header chain too long", pos)
        if pos > max(end, 40) or pos > len(data):
            raise ParseError("IPv6 extension headers run past the payload", pos)
        payload = data[pos:end]
        if frag_id is not None and (frag_off or more):
            return IpPacket(6, src, dst, nxt, payload, frag_id, frag_off, more, cut)
        return IpPacket(6, src, dst, nxt, payload, cut_short=cut)
    raise ParseError(f"IP version {version} unknown", 0)


def gre_payload(data: bytes) -> tuple[int, bytes]:
    """GRE (RFC 2784/2890, PPTP's version 1) → (ethertype of the inner protocol, inner bytes)."""
    _need(data, 4, "GRE header")
    flags, proto = struct.unpack_from("!HH", data)
    version = flags & 7
    off = 4
    if version == 1:  # enhanced GRE (RFC 2637): key always, sequence (S) and ack (A) optional
        off += 4 + (4 if flags & 0x1000 else 0) + (4 if flags & 0x0080 else 0)
    else:
        off += (4 if flags & 0x8000 else 0) + (4 if flags & 0x2000 else 0) + (4 if flags & 0x1000 else 0)
    _need(data, off, "GRE header")
    if proto == ETH_ERSPAN_2:
        # Type I has no sequence number and no ERSPAN header; type II has an 8-byte header.
        off += 8 if flags & 0x1000 else 0
        proto = ETH_TEB
    elif proto == ETH_ERSPAN_3:
        _need(data, off + 12, "ERSPAN III header")
        optional = data[off + 11] & 1  # O flag: an 8-byte platform-specific subheader follows
        off += 12 + (8 if optional else 0)
        proto = ETH_TEB
    return proto, data[off:]


@dataclass(slots=True)
class _Pending:
    first_ts: float
    pieces: dict[int, bytes]
    total: int | None  # known once the last fragment arrived
    src: str
    dst: str
    proto: int
    version: int
    frames: list[int]
    size: int = 0  # bytes received (duplicates included): assemble only once it can be complete


class FragmentReassembler:
    """IPv4/IPv6 fragment reassembly, bounded in datagrams held and time waited (capture time)."""

    def __init__(self, max_pending: int = 256, timeout_s: float = 30.0) -> None:
        self._pending: OrderedDict[tuple[object, ...], _Pending] = OrderedDict()
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self.expired = 0

    def add(self, ip: IpPacket, ts: float, frame: int) -> IpPacket | None:
        """Store one fragment; return the whole datagram when complete. ParseError beyond 64 KiB."""
        if ip.frag_offset + len(ip.payload) > MAX_DATAGRAM:
            raise ParseError(f"IP fragment ends at byte {ip.frag_offset + len(ip.payload)}, beyond 65535", 0)
        key = (ip.version, ip.src, ip.dst, ip.proto if ip.version == 4 else None, ip.frag_id)
        p = self._pending.get(key)
        if p is None:
            self._expire(ts)
            p = _Pending(ts, {}, None, ip.src, ip.dst, ip.proto, ip.version, [])
            self._pending[key] = p
        p.pieces[ip.frag_offset] = ip.payload
        p.size += len(ip.payload)
        if len(p.frames) < 64:  # the first frames name the datagram in an error item; no more needed
            p.frames.append(frame)
        if ip.version == 6 and ip.frag_offset == 0:
            p.proto = ip.proto  # the next header of the first fragment names the upper layer
        if not ip.more_fragments:
            p.total = ip.frag_offset + len(ip.payload)
        if p.total is None or p.size < p.total:
            return None
        have = 0
        out = bytearray()
        for off in sorted(p.pieces):
            if off > have:
                return None  # a hole remains
            piece = p.pieces[off]
            if off + len(piece) > have:
                out += piece[have - off:]
                have = off + len(piece)
        if have < p.total:
            return None
        del self._pending[key]
        return IpPacket(p.version, p.src, p.dst, p.proto, bytes(out[:p.total]))

    def _expire(self, now: float) -> None:
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if len(self._pending) < self.max_pending and now - oldest.first_ts <= self.timeout_s:
                break
            del self._pending[key]
            self.expired += 1

    def leftovers(self) -> list[tuple[str, str, list[int]]]:
        """Datagrams never completed: (src, dst, frames)."""
        return [(p.src, p.dst, p.frames) for p in self._pending.values()]


class Decoder:
    """Frame bytes → sink calls. Stateful only for fragment reassembly."""

    def __init__(self, sink: PacketSink) -> None:
        self.sink = sink
        self.frags = FragmentReassembler()
        self.non_ip = 0  # ARP, LLDP, … (not errors)

    def decode(self, frame: int, ts: float, linktype: int, data: bytes, truncated: bool = False) -> None:
        if linktype not in LINK_NAMES:
            self.sink.error(ErrorItem("unsupported", "link", f"link type {linktype} not supported", frame=frame))
            return
        try:
            version, ip = link_payload(linktype, data)
            if not version:
                self.non_ip += 1
                return
            self._ip(frame, ts, version, ip, truncated, 0)
        except ParseError as exc:
            kind = "truncated" if truncated else "malformed"
            self.sink.error(ErrorItem(kind, "link", str(exc), frame=frame))
        except (IndexError, struct.error, ValueError, OSError) as exc:  # hostile bytes, belt and braces
            self.sink.error(ErrorItem("malformed", "link", f"undecodable frame: {exc}", frame=frame))

    def _ip(self, frame: int, ts: float, version: int, data: bytes, truncated: bool, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ParseError("too many nested tunnels", 0)
        ip = parse_ip(version, data)
        if ip.frag_id is not None:
            if ip.cut_short:
                self.sink.error(ErrorItem("truncated" if truncated else "malformed", "ip",
                                          "IP fragment cut short", frame=frame))
                return
            whole = self.frags.add(ip, ts, frame)
            if whole is None:
                return
            ip = whole
        elif ip.cut_short and not truncated:
            self.sink.error(ErrorItem("malformed", "ip", "IP length beyond the frame", frame=frame))
        self._transport(frame, ts, ip, truncated, depth)

    def _transport(self, frame: int, ts: float, ip: IpPacket, truncated: bool, depth: int) -> None:
        proto, seg = ip.proto, ip.payload
        if proto == P_UDP:
            if len(seg) < 8:
                raise ParseError("UDP header cut short", 0)
            sport, dport, ulen = struct.unpack_from("!HHH", seg)
            if ulen < 8:
                raise ParseError(f"UDP length {ulen} invalid", 4)
            if ulen > len(seg) and not truncated:
                raise ParseError(f"UDP length {ulen} beyond the IP payload of {len(seg)}", 4)
            payload = seg[8:ulen]
            if dport == UDP_VXLAN and len(payload) >= 8 and payload[0] & 0x08:
                _need(payload, 22, "VXLAN inner Ethernet")
                v, inner = ethertype_payload(struct.unpack_from("!H", payload, 20)[0], payload, 22)
                if v:
                    self._ip(frame, ts, v, inner, truncated, depth + 1)
                return
            if UDP_GTP_U in (sport, dport):
                self.sink.error(ErrorItem("unsupported", "gtp",
                                          "GTP-U tunnel (mobile core) not analysed", frame=frame))
                return
            self.sink.udp(UdpPacket(frame, ts, ip.src, sport, ip.dst, dport, payload))
        elif proto == P_TCP:
            if len(seg) < 20:
                raise ParseError("TCP header cut short", 0)
            sport, dport, seq, ack, off_flags = struct.unpack_from("!HHIIH", seg)
            hlen = (off_flags >> 12) * 4
            if hlen < 20 or hlen > len(seg):
                raise ParseError(f"TCP header length {hlen} invalid", 12)
            self.sink.tcp(TcpSegment(frame, ts, ip.src, sport, ip.dst, dport, seq, ack, off_flags & 0x3F,
                                     seg[hlen:]))
        elif proto in (P_ICMP, P_ICMPV6):
            self._icmp(frame, ts, ip, seg)
        elif proto in (P_IPIP, P_IPV6):
            self._ip(frame, ts, 4 if proto == P_IPIP else 6, seg, truncated, depth + 1)
        elif proto == P_GRE:
            inner_type, inner = gre_payload(seg)
            if inner_type == ETH_TEB:
                _need(inner, 14, "Ethernet header in GRE")
                v, nxt = ethertype_payload(struct.unpack_from("!H", inner, 12)[0], inner, 14)
            elif inner_type == ETH_PPP:
                v, nxt = ppp_payload(inner, 0)
            else:
                v, nxt = ethertype_payload(inner_type, inner, 0)
            if v:
                self._ip(frame, ts, v, nxt, truncated, depth + 1)
        elif proto == P_SCTP:
            self.sink.error(ErrorItem("unsupported", "sctp", "SCTP transport not analysed", frame=frame))

    def _icmp(self, frame: int, ts: float, ip: IpPacket, seg: bytes) -> None:
        if len(seg) < 8:
            return
        unreachable = (seg[0] == 3) if ip.proto == P_ICMP else (seg[0] == 1)
        if not unreachable:
            return
        try:
            inner = parse_ip(4 if ip.proto == P_ICMP else 6, seg[8:])
        except ParseError:
            return  # quoted header too short to name the flow: nothing to attribute
        if inner.proto not in (P_UDP, P_TCP) or len(inner.payload) < 4:
            return
        sport, dport = struct.unpack_from("!HH", inner.payload)
        self.sink.icmp(IcmpUnreachable(frame, ts, ip.src, "udp" if inner.proto == P_UDP else "tcp",
                                       inner.src, sport, inner.dst, dport, seg[1]))

    def finish(self) -> None:
        for src, dst, frames in self.frags.leftovers():
            self.sink.error(ErrorItem("truncated", "ip", f"IP fragments {src} → {dst} never completed",
                                      frame=frames[0]))
        if self.frags.expired:
            self.sink.error(ErrorItem("truncated", "ip",
                                      f"{self.frags.expired} fragmented datagrams expired incomplete"))
