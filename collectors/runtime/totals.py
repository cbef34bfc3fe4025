"""Running totals of the service: monotonic counters and histograms over a sliding analysis.

Theory of operation: every analysis cycle sees the last few minutes again. ``Totals.observe``
counts each item once — a call when it has ended, a stream when it has gone quiet, a SIP response
and an OPTIONS round trip when first seen — keyed by a digest and remembered only as long as it
can still reappear in a later window (``forget_after_s``), so memory stays flat however long the
service runs. The Prometheus face exposes these totals (``Snapshot.totals``) because counters and
histograms must never go down.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field

from core.analysis import CALL_OPEN_STATES, AnalysisResult, CallInfo, RtpStreamStats
from core.snapshot import Histogram as SnapshotHistogram
from core.snapshot import Totals

#: Bucket bounds (base units) of the exported histograms; /metrics reads them from here.
KEEPALIVE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SETUP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
JITTER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)
MOS_BUCKETS = (1.0, 2.0, 2.5, 3.0, 3.3, 3.6, 3.8, 4.0, 4.2, 4.4)

#: A stream without a packet for this long has ended (its quality is final).
STREAM_IDLE_S = 3.0


def digest(text: str) -> str:
    """Call-IDs embed host names and numbers: history and de-duplication keep a digest only."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        if value != value:  # NaN is not an observation
            return
        i = bisect.bisect_left(self.bounds, value)
        for j in range(i, len(self.bounds)):
            self.counts[j] += 1  # cumulative, as Prometheus exposes them
        self.total += value
        self.count += 1


class RunningTotals:
    def __init__(self, forget_after_s: float) -> None:
        self.forget_after_s = forget_after_s
        self.calls: dict[str, int] = {}
        self.sip_responses: dict[str, int] = {}
        self.rtp_streams = 0
        self.rtp_packets_lost = 0
        self.one_way_audio_calls = 0
        self.histograms = {
            "keepalive_rtt_seconds": Histogram(KEEPALIVE_BUCKETS),
            "call_setup_seconds": Histogram(SETUP_BUCKETS),
            "rtp_jitter_seconds": Histogram(JITTER_BUCKETS),
            "rtp_mos": Histogram(MOS_BUCKETS),
        }
        self._seen: dict[str, float] = {}  # digest → when last seen (for forgetting)

    def _first(self, key: str, now: float) -> bool:
        new = key not in self._seen
        self._seen[key] = now
        return new

    def observe(self, analysis: AnalysisResult, now: float) -> tuple[list[CallInfo], list[RtpStreamStats]]:
        """Count what is new in ``analysis``; returns the calls and streams completed since last time."""
        calls = [c for c in analysis.calls
                 if not (c.end_ts is None and c.state in CALL_OPEN_STATES)  # counted once ended
                 and self._first("call " + digest(c.call_id), now)]
        for c in calls:
            self.calls[c.state] = self.calls.get(c.state, 0) + 1
            self.one_way_audio_calls += int(c.one_way_audio)
            if c.setup_ms is not None:
                self.histograms["call_setup_seconds"].observe(c.setup_ms / 1000.0)
        streams = [s for s in analysis.rtp_streams
                   if now - s.last_ts >= STREAM_IDLE_S
                   and self._first(f"stream {s.src}:{s.src_port}>{s.dst}:{s.dst_port} {s.ssrc} {s.first_ts:.3f}", now)]
        for s in streams:
            self.rtp_streams += 1
            self.rtp_packets_lost += max(s.lost, 0)
            self.histograms["rtp_jitter_seconds"].observe(s.mean_jitter_ms / 1000.0)
            if s.mos is not None:
                self.histograms["rtp_mos"].observe(s.mos)
        requests: dict[tuple[str, int], float] = {}
        for m in analysis.sip_messages:
            if m.retransmission:
                continue
            if m.method == "OPTIONS":
                requests[(m.call_id, m.cseq)] = m.ts
            elif m.status is not None and self._first(f"resp {digest(m.call_id)} {m.cseq} {m.cseq_method} "
                                                        f"{m.status} {m.ts:.6f}", now):
                key = f"{m.cseq_method} {m.status}"
                self.sip_responses[key] = self.sip_responses.get(key, 0) + 1
                sent = requests.get((m.call_id, m.cseq))
                if m.cseq_method == "OPTIONS" and sent is not None and m.status >= 200:
                    self.histograms["keepalive_rtt_seconds"].observe(max(m.ts - sent, 0.0))
        self._forget(now)
        return calls, streams

    def _forget(self, now: float) -> None:
        stale = [k for k, t in self._seen.items() if now - t > self.forget_after_s]
        for k in stale:
            del self._seen[k]

    def snapshot(self) -> Totals:
        """The totals as they stand, as the Snapshot carries them."""
        h = {name: SnapshotHistogram(hist.bounds, tuple(hist.counts), hist.total, hist.count)
             for name, hist in self.histograms.items()}
        return Totals(dict(self.calls), dict(self.sip_responses), self.rtp_streams, self.rtp_packets_lost,
                      self.one_way_audio_calls, h["keepalive_rtt_seconds"], h["call_setup_seconds"],
                      h["rtp_jitter_seconds"], h["rtp_mos"])
