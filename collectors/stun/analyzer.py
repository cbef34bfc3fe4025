"""STUN/TURN transaction matcher (RFC 8489 §6.3: a response carries its request's transaction ID).

Requests open a transaction keyed by (transaction ID, client, server); the first success or error
response travelling the other way closes it with its RTT, mapped address and error code. Over
TCP the messages are cut by one ``StunStreamFramer`` per direction. Indications and ChannelData
are not transactions and are only counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from collectors.capture.packets import StreamData, UdpPacket
from core.analysis import ErrorItem, StunTransactionInfo
from core.errors import ParseError
from core.wire.stun import (
    NEED_DATA,
    ChannelData,
    StunMessage,
    StunStreamFramer,
    is_stun,
    looks_like_stun_stream,
    parse_stun,
)


@dataclass(slots=True)
class _Open:
    client: str
    client_port: int
    server: str
    server_port: int
    transport: str
    method: str
    frame: int
    ts: float
    response_frame: int | None = None
    rtt_ms: float | None = None
    response_class: str | None = None
    mapped: str | None = None
    error_code: int | None = None


@dataclass(slots=True)
class _Dir:
    framer: StunStreamFramer = field(default_factory=StunStreamFramer)
    chunks: deque[tuple[int, int, float]] = field(default_factory=deque)
    fed: int = 0
    broken: bool = False


class StunAnalyzer:
    def __init__(self) -> None:
        self._txns: dict[tuple[str, str, int, str, int], _Open] = {}
        self._all: list[tuple[str, _Open]] = []
        self._streams: dict[tuple[int, str, int, str, int], _Dir] = {}
        self.message_counts: dict[str, int] = {}  # "Binding request" → count, resends included
        self.indications = 0
        self.channel_data = 0
        self.errors: list[ErrorItem] = []

    def on_udp(self, pkt: UdpPacket) -> bool:
        """True if the datagram was STUN (checked cheaply before parsing)."""
        p = pkt.payload
        if len(p) < 20 or p[0] > 0x01:  # STUN types keep the top bits 0 and methods < 0x200
            return False
        payload = bytes(p)
        if not is_stun(payload):
            return False
        try:
            msg = parse_stun(payload)
        except ParseError as exc:
            self.errors.append(ErrorItem("malformed", "stun", str(exc), pkt.frame, exc.offset))
            return True
        self._on_message(pkt.frame, pkt.ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, "udp", msg)
        return True

    def on_stream(self, data: StreamData, transport: str = "tcp") -> None:
        key = (data.connection, data.src, data.sport, data.dst, data.dport)
        d = self._streams.get(key)
        if d is None:
            d = self._streams[key] = _Dir()
        if d.broken:
            return
        if d.fed == 0 and not looks_like_stun_stream(bytes(data.data[:10])):
            d.broken = True  # not a STUN stream: leave it alone without error items
            return
        d.fed += len(data.data)
        d.chunks.append((d.fed, data.frame, data.ts))
        d.framer.feed(bytes(data.data))
        while True:
            start = d.framer.offset
            try:
                ev = d.framer.next_event()
            except ParseError as exc:
                # A stream that lost sync is not resynchronised: STUN has no start marker.
                self.errors.append(ErrorItem("malformed", "stun", str(exc), data.frame, exc.offset))
                d.broken = True
                return
            # Chunks wholly before the event (or, at NEED_DATA, before every later event) are done.
            done = d.framer.offset if ev is NEED_DATA else start
            while len(d.chunks) > 1 and d.chunks[0][0] <= done:
                d.chunks.popleft()
            if ev is NEED_DATA:
                return
            _, frame, ts = d.chunks[0]
            if isinstance(ev, ChannelData):
                self.channel_data += 1
            elif isinstance(ev, StunMessage):
                self._on_message(frame, ts, data.src, data.sport, data.dst, data.dport, transport, ev)

    def _on_message(self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int,
                    transport: str, msg: StunMessage) -> None:
        name = f"{msg.method} {msg.klass}"
        self.message_counts[name] = self.message_counts.get(name, 0) + 1
        if msg.klass == "indication":
            self.indications += 1
            return
        if msg.klass == "request":
            key = (msg.transaction_id, src, sport, dst, dport)
            cur = self._txns.get(key)
            # An unanswered request sent again is a retransmission (keeps the first send time);
            # sent again after an answer it is a new exchange (ICE re-checks reuse the ID).
            if cur is None or cur.response_frame is not None:
                new = _Open(src, sport, dst, dport, transport, msg.method, frame, ts)
                self._txns[key] = new
                self._all.append((msg.transaction_id, new))
            return
        t = self._txns.get((msg.transaction_id, dst, dport, src, sport))
        if t is None or t.response_frame is not None:
            return  # unsolicited, or a second answer to an answered request
        t.response_frame = frame
        t.rtt_ms = round((ts - t.ts) * 1000.0, 3)
        t.response_class = msg.klass
        t.mapped = msg.mapped_address
        t.error_code = msg.error_code

    def finish(self) -> tuple[StunTransactionInfo, ...]:
        """Transactions in request order."""
        return tuple(
            StunTransactionInfo(t.client, t.client_port, t.server, t.server_port, t.transport,
                                tid, t.method, t.frame, t.response_frame, t.rtt_ms,
                                t.response_class, t.mapped, t.error_code)
            for tid, t in self._all
        )
