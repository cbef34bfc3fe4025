"""TCP stream reassembly: segments in capture order → in-order bytes per direction.

Theory of operation: each direction of a connection keeps the next expected sequence number
and a bounded buffer of segments that arrived early. In-order data is delivered at once and
drains the buffer; data before the expected number is a retransmission (only its new tail,
if any, is delivered); data after it waits. A SYN with a new initial sequence number on a
4-tuple that already had a connection starts a new connection index (a reconnect). A capture
started mid-stream begins at the first segment seen. When the early-segment buffer overflows,
when a hole stays open longer than a retransmission could take (``max_wait_s`` of capture
time), or at the end of the capture, what is buffered is delivered with ``gap`` = the bytes
never seen, so the consumer can resynchronise instead of waiting forever.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from collectors.capture.packets import FIN, RST, SYN, StreamData, TcpSegment

_MOD = 1 << 32


def _diff(a: int, b: int) -> int:
    """a − b in sequence space (RFC 9293 modular arithmetic), as a signed 32-bit value."""
    d = (a - b) % _MOD
    return d - _MOD if d >= 1 << 31 else d


@dataclass(slots=True)
class _Direction:
    next_seq: int | None = None
    isn: int | None = None
    early: dict[int, tuple[bytes, bool, int, float]] = field(default_factory=dict)  # seq → (data, fin, frame, ts)
    early_bytes: int = 0
    fin: bool = False


@dataclass(slots=True)
class _Connection:
    index: int
    dirs: dict[tuple[str, int], _Direction]
    last_ts: float


class TcpReassembler:
    def __init__(self, max_connections: int = 20000, max_early_bytes: int = 1 << 20,
                 max_early_segments: int = 2048, max_wait_s: float = 5.0) -> None:
        # least recently used first: eviction of idle connections is O(1) on floods and scans
        self._conns: OrderedDict[tuple[tuple[str, int], tuple[str, int]], _Connection] = OrderedDict()
        self._next_index = 0
        self.max_connections = max_connections
        self.max_early_bytes = max_early_bytes
        self.max_early_segments = max_early_segments
        # A segment lost in the network comes again within the retransmission timeout (RFC 6298:
        # ≤ a few seconds); one the capture missed never does. Past this, stop waiting for it.
        self.max_wait_s = max_wait_s
        self.dropped_connections = 0
        self.retransmissions = 0
        self.gaps = 0

    def connection_of(self, seg: TcpSegment) -> int:
        """The connection index a segment belongs to (after ``on_segment`` saw it)."""
        conn = self._conns.get(self._key(seg))
        return conn.index if conn else -1

    @staticmethod
    def _key(seg: TcpSegment) -> tuple[tuple[str, int], tuple[str, int]]:
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        return (a, b) if a <= b else (b, a)

    def _new(self, key: tuple[tuple[str, int], tuple[str, int]], ts: float) -> _Connection:
        if len(self._conns) >= self.max_connections:
            # Evict the connection idle longest: memory stays bounded on port scans and floods.
            self._conns.popitem(last=False)
            self.dropped_connections += 1
        conn = _Connection(self._next_index, {key[0]: _Direction(), key[1]: _Direction()}, ts)
        self._next_index += 1
        self._conns[key] = conn
        return conn

    def on_segment(self, seg: TcpSegment) -> list[StreamData]:
        key = self._key(seg)
        conn = self._conns.get(key)
        me = (seg.src, seg.sport)
        if conn is None:
            conn = self._new(key, seg.ts)
        elif seg.flags & SYN and not seg.flags & 0x10:  # a fresh SYN (not SYN-ACK)
            d = conn.dirs[me]
            if (d.isn is not None and d.isn != seg.seq) or (d.isn is None and d.next_seq is not None):
                conn = self._new(key, seg.ts)
        conn.last_ts = seg.ts
        self._conns.move_to_end(key)
        d = conn.dirs[me]
        seq = seg.seq
        if seg.flags & SYN:
            d.isn = seq
            seq = (seq + 1) % _MOD
            if d.next_seq is None or _diff(seq, d.next_seq) > 0:
                d.next_seq = seq
        if seg.flags & RST:
            return []
        data = seg.payload
        if d.next_seq is None:
            d.next_seq = seq  # capture started mid-stream
        out: list[StreamData] = []
        fin = bool(seg.flags & FIN)
        if not data and not fin:
            return out
        rel = _diff(seq, d.next_seq)
        if rel > 0:
            if seq not in d.early:
                d.early[seq] = (bytes(data), fin, seg.frame, seg.ts)
                d.early_bytes += len(data)
            if d.early_bytes > self.max_early_bytes or len(d.early) > self.max_early_segments \
                    or seg.ts - min(e[3] for e in d.early.values()) > self.max_wait_s:
                self._skip_gap(d, conn, seg, out)
            return out
        if rel < 0:
            if rel + len(data) <= 0:
                if data:
                    self.retransmissions += 1
                return out
            data = data[-rel:]
        self._deliver(d, conn, seg, bytes(data), fin, 0, out)
        self._drain(d, conn, seg, out)
        return out

    def _deliver(self, d: _Direction, conn: _Connection, seg: TcpSegment, data: bytes, fin: bool,
                 gap: int, out: list[StreamData], frame: int | None = None, ts: float | None = None) -> None:
        """Hand over in-order bytes; ``frame``/``ts`` default to the segment that completed them."""
        assert d.next_seq is not None
        frame = seg.frame if frame is None else frame
        if data:
            last = out[-1] if out else None
            if last is not None and last.connection == conn.index and last.frame == frame and not gap \
                    and (last.src, last.sport) == (seg.src, seg.sport):
                last.data += data
            else:
                out.append(StreamData(frame, seg.ts if ts is None else ts, seg.src, seg.sport, seg.dst, seg.dport,
                                      data, conn.index, gap))
        d.next_seq = (d.next_seq + len(data) + (1 if fin else 0)) % _MOD
        d.fin = d.fin or fin

    def _drain(self, d: _Direction, conn: _Connection, seg: TcpSegment, out: list[StreamData],
               at_end: bool = False) -> None:
        """Deliver buffered segments that now follow on; at the end of the capture each keeps its own frame."""
        while d.early:
            assert d.next_seq is not None
            best = None
            for s in d.early:
                if _diff(s, d.next_seq) <= 0:
                    best = s
                    break
            if best is None:
                return
            data, fin, frame, ts = d.early.pop(best)
            d.early_bytes -= len(data)
            rel = _diff(best, d.next_seq)
            if rel + len(data) > 0 or fin:
                self._deliver(d, conn, seg, data[-rel:] if rel else data, fin, 0, out,
                              *((frame, ts) if at_end else (None, None)))

    def _skip_gap(self, d: _Direction, conn: _Connection, seg: TcpSegment, out: list[StreamData],
                  at_end: bool = False) -> None:
        assert d.next_seq is not None
        first = min(d.early, key=lambda s: _diff(s, d.next_seq or 0))
        gap = _diff(first, d.next_seq)
        data, fin, frame, ts = d.early.pop(first)
        d.early_bytes -= len(data)
        self.gaps += 1
        d.next_seq = first
        self._deliver(d, conn, seg, data, fin, gap, out, *((frame, ts) if at_end else (None, None)))
        self._drain(d, conn, seg, out, at_end)

    def finish(self) -> list[StreamData]:
        """End of capture: hand over what waits behind holes (each piece marked with its gap and
        carrying the frame it arrived in)."""
        out: list[StreamData] = []
        for conn in self._conns.values():
            for (src, sport), d in conn.dirs.items():
                while d.early:
                    (dst, dport) = next(k for k in conn.dirs if k != (src, sport))
                    where = TcpSegment(0, conn.last_ts, src, sport, dst, dport, 0, 0, 0, b"")
                    self._skip_gap(d, conn, where, out, at_end=True)
        return out
