"""Test-only driver: read a capture with scapy and feed B's analysers (until A's pipeline is used).

A deliberately simple TCP reassembler: per direction, deliver bytes in sequence order, drop
already-delivered bytes of retransmissions, hold segments after a gap until it is filled (a
gap that never fills is skipped at the end, like a capture that missed segments).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from collectors.capture.packets import StreamData, TcpSegment, UdpPacket

PCAPS = Path(__file__).resolve().parents[3] / ".." / "shared" / "pcaps"


@dataclass
class _Dir:
    next_seq: int | None
    conn: int
    pending: dict[int, tuple[bytes, int, float]] = field(default_factory=dict)


def packets(path: Path) -> Iterator[UdpPacket | TcpSegment]:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Padding
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as reader:
        for frame, pkt in enumerate(reader, start=1):
            ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
            if ip is None:
                continue
            ts = float(pkt.time)

            def body(layer: object) -> bytes:
                data = bytes(layer.payload)  # type: ignore[attr-defined]
                pad = layer.getlayer(Padding)  # type: ignore[attr-defined]
                return data[: len(data) - len(pad.load)] if pad is not None else data

            if (udp := ip.getlayer(UDP)) is not None and udp.underlayer is ip:
                yield UdpPacket(frame, ts, ip.src, udp.sport, ip.dst, udp.dport, body(udp))
            elif (tcp := ip.getlayer(TCP)) is not None and tcp.underlayer is ip:
                yield TcpSegment(frame, ts, ip.src, tcp.sport, ip.dst, tcp.dport, tcp.seq, tcp.ack,
                                 int(tcp.flags), body(tcp))


class Reassembler:
    def __init__(self) -> None:
        self._dirs: dict[tuple[str, int, str, int], _Dir] = {}
        self._conns = 0

    def feed(self, seg: TcpSegment) -> list[StreamData]:
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        d = self._dirs.get(key)
        syn = bool(seg.flags & 0x02)
        if d is None or (syn and d.next_seq != (seg.seq + 1) % 2**32):
            back = self._dirs.get((seg.dst, seg.dport, seg.src, seg.sport))
            if back is not None and not (syn and not seg.flags & 0x10):
                conn = back.conn
            else:
                self._conns += 1
                conn = self._conns
            d = self._dirs[key] = _Dir(None, conn)
        if syn:
            d.next_seq = (seg.seq + 1) % 2**32
            return []
        if not seg.payload:
            return []
        if d.next_seq is None:
            d.next_seq = seg.seq
        out: list[StreamData] = []
        d.pending.setdefault(seg.seq, (seg.payload, seg.frame, seg.ts))
        progressed = True
        while progressed:
            progressed = False
            for seq in list(d.pending):
                data, frame, ts = d.pending[seq]
                off = (d.next_seq - seq) % 2**32
                if off < len(data):
                    del d.pending[seq]
                    out.append(StreamData(frame, ts, seg.src, seg.sport, seg.dst, seg.dport,
                                          data[off:], d.conn))
                    d.next_seq = (seq + len(data)) % 2**32
                    progressed = True
                elif off < 2**31:  # entirely old data: a retransmission
                    del d.pending[seq]
        return out
