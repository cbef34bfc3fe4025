"""RTCP summaries (RFC 3550 §6.4): one per (RTCP flow, sender SSRC, reported source SSRC),
with loss, jitter and the round-trip time seen at the capture point, in bounded memory."""

from __future__ import annotations

from collections.abc import Callable

from core.analysis import RtcpReport
from core.wire.rtp import ReportBlock, RtcpPacket

_MAX_RTCP_KEYS = 100_000  # RTCP pairs / senders remembered (hostile captures)


class RtcpPair:
    __slots__ = (
        "bye", "call_id", "cname", "cum", "first_frame", "frac_last", "frac_max", "jit_last", "jit_max",
        "key", "last_frame", "packets", "rr", "rtt_last", "rtt_max", "sr",
    )

    def __init__(self, key: tuple[str, int, str, int, int, int | None], frame: int, call_id: str | None):
        self.key = key
        self.first_frame = self.last_frame = frame
        self.call_id = call_id
        self.packets = self.sr = self.rr = 0
        self.frac_last: float | None = None
        self.frac_max: float | None = None
        self.cum: int | None = None
        self.jit_last: float | None = None
        self.jit_max: float | None = None
        self.rtt_last: float | None = None
        self.rtt_max: float | None = None
        self.cname: str | None = None
        self.bye = False


class RtcpCollector:
    """Aggregates parsed RTCP into ``RtcpReport`` values with bounded memory."""

    _SR_MEMORY = 16  # recent SRs remembered per sender for LSR matching

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, int, str, int, int, int | None], RtcpPair] = {}
        self._srs: dict[int, dict[int, float]] = {}  # sender ssrc → {NTP middle 32: capture ts}
        self._cnames: dict[int, str] = {}
        self._by_sender: dict[int, list[RtcpPair]] = {}  # sender SSRC → its pairs (for BYE)

    def add(
        self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int,
        packets: tuple[RtcpPacket, ...], call_id: str | None, clock_of: Callable[[int], int],
    ) -> None:
        touched: set[tuple[str, int, str, int, int, int | None]] = set()
        for p in packets:
            if p.packet_type == 202:
                for ssrc, item, text in p.sdes:
                    if item == "CNAME" and (ssrc in self._cnames or len(self._cnames) < _MAX_RTCP_KEYS):
                        self._cnames[ssrc] = text
                continue
            if p.ssrc is None:
                continue
            if p.packet_type == 203:
                for ssrc in p.bye_sources:
                    for pair in self._by_sender.get(ssrc, ()):
                        pair.bye = True
                continue
            if p.packet_type not in (200, 201):
                continue
            if p.packet_type == 200 and p.ntp_middle32 is not None and (
                p.ssrc in self._srs or len(self._srs) < _MAX_RTCP_KEYS
            ):
                srs = self._srs.setdefault(p.ssrc, {})
                srs[p.ntp_middle32] = ts
                if len(srs) > self._SR_MEMORY:
                    del srs[next(iter(srs))]
            blocks: tuple[ReportBlock | None, ...] = p.reports or (None,)
            for rb in blocks:
                key = (src, sport, dst, dport, p.ssrc, rb.ssrc if rb else None)
                found = self._pairs.get(key)
                if found is None:
                    if len(self._pairs) >= _MAX_RTCP_KEYS:
                        continue  # hostile input: keep what we have, count nothing new
                    found = self._pairs[key] = RtcpPair(key, frame, call_id)
                    self._by_sender.setdefault(p.ssrc, []).append(found)
                pair = found
                pair.last_frame = frame
                if key not in touched:
                    touched.add(key)
                    pair.packets += 1
                    if p.packet_type == 200:
                        pair.sr += 1
                    else:
                        pair.rr += 1
                if rb is not None:
                    self._block(pair, rb, ts, clock_of)

    def _block(self, pair: RtcpPair, rb: ReportBlock, ts: float, clock_of: Callable[[int], int]) -> None:
        frac = rb.fraction_lost_pct
        pair.frac_last = frac
        pair.frac_max = frac if pair.frac_max is None else max(pair.frac_max, frac)
        pair.cum = rb.cumulative_lost
        jit = rb.jitter * 1000.0 / clock_of(rb.ssrc)
        pair.jit_last = jit
        pair.jit_max = jit if pair.jit_max is None else max(pair.jit_max, jit)
        if rb.lsr:
            # RTT at the capture point: the SR the block quotes (by its NTP middle 32 bits) was
            # seen at ``sent``; the reporter held it for DLSR (1/65536 s) before answering.
            sent = self._srs.get(rb.ssrc, {}).get(rb.lsr)
            rtt = (ts - sent) * 1000.0 - rb.dlsr * 1000.0 / 65536.0 if sent is not None else -1.0
            if rtt >= 0.0:  # negative: the capture point is not between the two (or a self-report)
                pair.rtt_last = rtt
                pair.rtt_max = rtt if pair.rtt_max is None else max(pair.rtt_max, rtt)

    def results(self) -> tuple[RtcpReport, ...]:
        out = []
        for pair in self._pairs.values():
            src, sport, dst, dport, sender, source = pair.key
            out.append(
                RtcpReport(
                    src=src, src_port=sport, dst=dst, dst_port=dport, sender_ssrc=sender,
                    source_ssrc=source, packets=pair.packets, sender_reports=pair.sr,
                    receiver_reports=pair.rr, last_fraction_lost_pct=pair.frac_last,
                    max_fraction_lost_pct=pair.frac_max, cumulative_lost=pair.cum,
                    last_jitter_ms=pair.jit_last, max_jitter_ms=pair.jit_max,
                    last_rtt_ms=pair.rtt_last, max_rtt_ms=pair.rtt_max,
                    cname=self._cnames.get(sender), bye=pair.bye,
                    first_frame=pair.first_frame, last_frame=pair.last_frame, call_id=pair.call_id,
                )
            )
        return tuple(out)
