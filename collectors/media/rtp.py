"""RTP/RTCP stream statistics that equal Wireshark's RTP stream analysis.

The numbers follow ``ui/tap-rtp-analysis.c`` (``rtppacket_analyse``) and the stream table of
``tshark -q -z rtp,streams`` (tshark 4.0), so they can be checked against tshark packet by packet:

* A stream is (src addr, src port, dst addr, dst port, SSRC); payload-type changes stay in the
  same stream.
* expected = last sequence number + 65536·wraps − first sequence number + 1, where a wrap is
  counted when a packet (in timestamp order) has a lower sequence number than the *first* one;
  lost = expected − packets, negative with duplicates or sequence restarts.
* "In time" (tshark 4.0) means the RTP timestamp lies within the half of the 32-bit space that
  follows the stream's *first* timestamp (so a timestamp wrap is in time, a restart behind the
  first value is not). Out-of-time packets compute no delta/jitter and do not move the reference.
* jitter (RFC 3550 A.8 in ms): D = |arrival − (reference arrival + (nominal − reference nominal))|
  with nominal = (timestamp − first timestamp) mod 2³² / (clock/1000), J = (15·J + D)/16;
  clock/1000 is an *integer* division as in Wireshark (44.1 kHz → 44). The reference arrival
  moves with every in-time packet, the reference nominal time only with packets that have a
  clock — so after a telephone-event burst the next audio packet's D includes the burst.
  Only payload types with a known clock contribute: static types by the RFC 3551 table, dynamic
  types by the SDP rtpmap of the conversation; telephone-event has no clock (RFC 4733 timestamps
  stand still) and heuristic streams of a dynamic type have none either.
* max/min/mean delta and max/mean jitter skip the first packet, packets with the marker bit,
  comfort noise (PT 13/19) and the packet after comfort noise, and out-of-time packets; the mean
  is Wireshark's running mean over all packets so far (``(mean·(n−1) + x)/n``).

Detection: endpoints announced in SDP (``expect``) come first — both directions of an announced
``addr:port`` are RTP from that moment on, and ``port+1`` is RTCP. Other UDP is tried with a
heuristic at least as strict as Wireshark's ``rtp.heuristic_rtp`` (version 2, not RTCP's 72–76,
CSRC/extension/padding fit the datagram) plus: neither port below 1024 (DNS, NetBIOS, syslog …
are never guessed), a new heuristic stream must start with an assigned static (RFC 3551) or a
dynamic (96–127) payload type, and it only becomes a stream once a later packet of the same flow
and SSRC continues its sequence (+1…+100) — then the waiting packets are replayed into it. A guess
not confirmed within 4 packets or 10 s is dropped, so random UDP costs no memory. An address
that SDP announces with a non-RTP transport (T.38 ``udptl``) is never RTP.

Memory per stream is constant (counters, running means, a 128-bit duplicate window, the current
10-s interval) plus 56 bytes per closed 10-s interval (in blocks of 8 that stay in Python's
small-object allocator) — nothing per packet. A stream silent for ``idle_s`` (120 s of capture
time) is packed into one bytes object (~0.4 KB) and restored exactly if it sends again; the
flow-classification cache is bounded.

Fast paths for the capture pipeline: ``on_udp_fields(frame, ts, src, sport, dst, dport,
payload)`` skips the ``UdpPacket`` allocation, and ``on_udp_batch(UdpBatch)`` takes a whole chunk
of IPv4 datagrams: it groups them by stream and computes runs of ordinary packets (same payload
type with a clock, rising sequence numbers — a stream's last run in a chunk may step over lost
packets —, in time, no wrap decision) with numpy — the same recurrences in closed form — and
hands every other packet to the per-packet path in order.
"""

from __future__ import annotations

import bisect
import itertools
import math
import struct
from collections.abc import Callable

import numpy as np

from collectors.capture.packets import UdpBatch, UdpPacket
from collectors.capture.reader import byte_rows, sort_by
from core.analysis import ErrorItem, RtcpReport, RtpStreamStats, StreamInterval
from core.errors import ParseError
from core.media_quality import MosModel
from core.wire.rtp import ReportBlock, RtcpPacket, parse_rtcp

PT_CN, PT_CN_OLD = 13, 19

# ui/tap-rtp-analysis.c clock_map: RTP clock rate of static payload types (RFC 3551 / IANA).
STATIC_CLOCK: dict[int, int] = {
    0: 8000, 1: 8000, 2: 8000, 3: 8000, 4: 8000, 5: 8000, 6: 16000, 7: 8000, 8: 8000, 9: 8000,
    10: 44100, 11: 44100, 12: 8000, 13: 8000, 14: 90000, 15: 8000, 16: 11025, 17: 22050, 18: 8000,
    19: 8000, 25: 90000, 26: 90000, 28: 90000, 31: 90000, 32: 90000, 33: 90000, 34: 90000,
}
STATIC_NAMES: dict[int, str] = {
    0: "PCMU", 1: "1016", 2: "G721", 3: "GSM", 4: "G723", 5: "DVI4", 6: "DVI4", 7: "LPC", 8: "PCMA",
    9: "G722", 10: "L16", 11: "L16", 12: "QCELP", 13: "CN", 14: "MPA", 15: "G728", 16: "DVI4",
    17: "DVI4", 18: "G729", 19: "CN", 25: "CelB", 26: "JPEG", 28: "nv", 31: "H261", 32: "MPV",
    33: "MP2T", 34: "H263",
}
# Payload types a heuristic stream may start with: RFC 3551 assigned static types and dynamic ones.
_HEURISTIC_START_PT = frozenset(STATIC_NAMES) | frozenset(range(96, 128))
# ui/tap-rtp-analysis.c mimetype_and_clock_map: clock of dynamic types by encoding-name prefix,
# used when the rtpmap gives no rate. Tried in reverse alphabetical order like Wireshark's scan,
# so a longer name (AMR-WB) is tried before its prefix (AMR).
_MIME_CLOCK: tuple[tuple[str, int], ...] = tuple(
    sorted(
        {
            "AMR": 8000, "AMR-WB": 16000, "BMPEG": 90000, "BT656": 90000, "DV": 90000, "EVRC": 8000,
            "EVRC0": 8000, "EVRC1": 8000, "EVRCB": 8000, "EVRCB0": 8000, "EVRCB1": 8000,
            "EVRCWB": 16000, "EVRCWB0": 16000, "EVRCWB1": 16000, "EVS": 16000, "G7221": 16000,
            "G726-16": 8000, "G726-24": 8000, "G726-32": 8000, "G726-40": 8000, "G729D": 8000,
            "G729E": 8000, "GSM-EFR": 8000, "H263-1998": 90000, "H263-2000": 90000, "H264": 90000,
            "MP1S": 90000, "MP2P": 90000, "MP4V-ES": 90000, "MPA-ROBUST": 90000, "OPUS": 48000,
            "POINTER": 90000, "RAW": 90000, "RED": 1000, "SMV": 8000, "SMV0": 8000, "T140": 1000,
        }.items(),
        key=lambda kv: (kv[0], len(kv[0])),
        reverse=True,
    )
)
_MAX_ERRORS = 1000  # malformed-item records kept; the rest are only counted
_MAX_CANDIDATES = 100_000  # unconfirmed heuristic streams kept at once (hostile captures)
_CANDIDATE_PACKETS = 4  # a guess not confirmed within this many packets is dropped
_CANDIDATE_AGE_S = 10.0  # … or within this much capture time
_MAX_RTCP_KEYS = 100_000  # RTCP pairs / senders remembered (hostile captures)
_MAX_FLOW_CACHE = 50_000  # classified flows remembered (a cache; see _classify)
_WINDOW_MASK = (1 << 128) - 1  # duplicate detection window: the last 128 sequence numbers
_R = 15.0 / 16.0  # RFC 3550 A.8 jitter smoothing
_BLOCK = 1024  # rows per closed-form jitter block: (16/15)^1024 stays far inside float range


def _dynamic_clock(name: str, rate: int) -> tuple[int, bool]:
    """(clock used for jitter, is telephone-event) of a dynamic payload type from its rtpmap."""
    upper = name.upper()
    if upper.startswith("TELEPHONE-EVENT"):
        return 0, True
    if rate:
        return rate, False
    for prefix, clock in _MIME_CLOCK:
        if upper.startswith(prefix):
            return clock, False
    return 0, False


class _Endpoint:
    """An SDP-announced media address: its payload map and call."""

    __slots__ = ("call_id", "payload_map", "pt_info")

    def __init__(self, payload_map: dict[int, tuple[str, int]], call_id: str | None) -> None:
        self.payload_map = dict(payload_map)
        self.call_id = call_id
        self.pt_info: dict[int, tuple[int, bool, str]] = {}

    def info(self, pt: int) -> tuple[int, bool, str]:
        """(clock, is telephone-event, codec name) of a payload type on this endpoint."""
        found = self.pt_info.get(pt)
        if found is None:
            entry = self.payload_map.get(pt)
            if pt < 96:  # static types keep their RFC 3551 clock whatever the SDP says (Wireshark)
                found = (STATIC_CLOCK.get(pt, 0), False, entry[0] if entry else STATIC_NAMES.get(pt, f"PT{pt}"))
            elif entry is not None:
                clock, is_event = _dynamic_clock(entry[0], entry[1])
                found = (clock, is_event, entry[0])
            else:
                found = (0, False, f"PT{pt}")
            self.pt_info[pt] = found
        return found


# Heuristic streams have no rtpmap: Wireshark names dynamic types by its rtp.pt dissector table
# (99 → RFC 2198, 100/101 → rtpevent) and none of those names has a clock.
_HEUR_EVENT_PTS = frozenset({100, 101})


def _heuristic_info(pt: int) -> tuple[int, bool, str]:
    if pt < 96:
        return STATIC_CLOCK.get(pt, 0), False, STATIC_NAMES.get(pt, f"PT{pt}")
    if pt in _HEUR_EVENT_PTS:
        return 0, True, "telephone-event"
    return 0, False, f"PT{pt}"


class _Flow:
    """Cached classification of one (src, sport, dst, dport)."""

    __slots__ = ("endpoint", "kind")

    def __init__(self, kind: int, endpoint: _Endpoint | None) -> None:
        self.kind = kind  # _SDP_RTP, _SDP_RTCP, _HEURISTIC or _OTHER (never RTP)
        self.endpoint = endpoint


_SDP_RTP, _SDP_RTCP, _HEURISTIC, _OTHER = 1, 2, 3, 4


class _Stream:
    """Running state of one RTP stream (tap-rtp-analysis.c semantics plus our own extras)."""

    __slots__ = (
        "bad_seq",
        "call_id",
        "clock_rate",
        "codec",
        "cur_exp",
        "cur_jit_max",
        "cur_jit_n",
        "cur_jit_sum",
        "cur_packets",
        "cur_start",
        "cycles",
        "delta",
        "detected_by",
        "dport",
        "dst",
        "dup_mask",
        "duplicates",
        "endpoint",
        "events",
        "first_frame",
        "first_pt",
        "first_timestamp",
        "first_ts",
        "hi_seq",
        "intervals",
        "jitter",
        "last_frame",
        "last_nominal",
        "last_ts",
        "main_pt",
        "max_delta",
        "max_jitter",
        "mean_delta",
        "mean_jitter",
        "min_delta",
        "min_jitter",
        "pt",
        "seq_num",
        "sequence",
        "sport",
        "src",
        "ssrc",
        "start_seq",
        "stop_seq",
        "time",
        "total_nr",
        "under",
    )

    def __init__(
        self, src: str, sport: int, dst: str, dport: int, ssrc: int,
        endpoint: _Endpoint | None, detected_by: str,
    ) -> None:
        self.src, self.sport, self.dst, self.dport, self.ssrc = src, sport, dst, dport, ssrc
        self.endpoint = endpoint
        self.call_id = endpoint.call_id if endpoint else None
        self.detected_by = detected_by
        self.total_nr = 0
        # closed intervals, packed (_INTERVAL records) in blocks of up to _IV_BLOCK: they are the
        # one thing that grows with the length of a stream, so they cost 56 bytes each until
        # ``finish``. Blocks rather than one growing buffer: every block stays in Python's
        # small-object allocator, whereas a growing buffer moves to the C heap once past 512
        # bytes and, reallocated every 10 s per stream between the chunk buffers, fragments it
        # (the 10×-longer benchmark capture: +7 MiB of peak RSS).
        self.intervals: list[bytes] = []
        self.events = 0
        self.duplicates = 0
        self.main_pt: int | None = None
        self.codec = ""
        self.clock_rate = 0

    def first(self, frame: int, ts: float, seq: int, rtp_ts: int, pt: int, clock: int) -> None:
        now = ts * 1000.0
        self.first_frame = self.last_frame = frame
        self.first_ts = self.last_ts = ts
        self.start_seq = self.stop_seq = self.seq_num = seq
        self.cycles = 0
        self.under = False
        self.sequence = 0
        self.time = now
        self.first_timestamp = rtp_ts
        self.last_nominal = 0.0
        self.first_pt = self.pt = pt
        self.delta = 0.0
        self.max_delta = 0.0
        self.min_delta = -1.0
        self.mean_delta = 0.0
        self.jitter = 0.0
        self.min_jitter = -1.0
        self.max_jitter = 0.0
        self.mean_jitter = 0.0
        self.total_nr = 1
        if clock:
            self.clock_rate = clock
        # our own extended sequence (RFC 3550 A.1 style) for duplicates and intervals
        self.hi_seq = 0x10000 + seq
        self.dup_mask = 1
        self.bad_seq = -1
        self.cur_start = ts
        self.cur_packets = 1
        self.cur_exp = 1
        self.cur_jit_sum = 0.0
        self.cur_jit_n = 0
        self.cur_jit_max = 0.0


# An idle stream's state packed into one bytes object (no per-value Python objects): about a
# third of a live ``_Stream``. Restored exactly when the stream sends again.
_INT_SLOTS = (
    "total_nr", "events", "duplicates", "clock_rate", "first_frame", "last_frame", "start_seq",
    "stop_seq", "seq_num", "cycles", "sequence", "first_timestamp", "first_pt", "pt", "hi_seq",
    "bad_seq", "cur_packets", "cur_exp", "cur_jit_n", "main_pt", "under",
)
_FLOAT_SLOTS = (
    "first_ts", "last_ts", "time", "last_nominal", "delta", "max_delta", "min_delta", "mean_delta",
    "jitter", "min_jitter", "max_jitter", "mean_jitter", "cur_start", "cur_jit_sum", "cur_jit_max",
)
_PACK = struct.Struct(f"<{len(_INT_SLOTS)}q{len(_FLOAT_SLOTS)}d2Q")
_Packed = tuple[bytes, "_Endpoint | None", str, str, list[bytes]]
# one closed interval: start, packets, expected, lost, mean jitter, max jitter, MOS (NaN = none)
_INTERVAL = struct.Struct("<dqqqddd")
_IV_BLOCK = 8 * _INTERVAL.size  # bytes per block of closed intervals: 448 (+ 33 header) ≤ 512


def _pack(s: _Stream) -> _Packed:
    ints = [getattr(s, name) for name in _INT_SLOTS]
    ints[_INT_SLOTS.index("main_pt")] = -1 if s.main_pt is None else s.main_pt
    floats = [getattr(s, name) for name in _FLOAT_SLOTS]
    mask = s.dup_mask
    data = _PACK.pack(*(int(v) for v in ints), *floats, mask & 0xFFFFFFFFFFFFFFFF, mask >> 64)
    return data, s.endpoint, s.detected_by, s.codec, s.intervals


def _unpack(key: tuple[str, int, str, int, int], packed: _Packed) -> _Stream:
    data, endpoint, detected_by, codec, intervals = packed
    s = _Stream(*key, endpoint, detected_by)
    values = _PACK.unpack(data)
    n = len(_INT_SLOTS)
    for name, v in zip(_INT_SLOTS, values[:n], strict=True):
        setattr(s, name, v)
    for name, v in zip(_FLOAT_SLOTS, values[n:n + len(_FLOAT_SLOTS)], strict=True):
        setattr(s, name, v)
    s.main_pt = None if s.main_pt == -1 else s.main_pt
    s.under = bool(s.under)
    s.dup_mask = values[-2] | (values[-1] << 64)
    s.codec = codec
    s.intervals = intervals
    return s


def _intervals(blocks: list[bytes]) -> tuple[StreamInterval, ...]:
    return tuple(
        StreamInterval(start, packets, expected, lost, mean_j, max_j, None if math.isnan(mos) else mos)
        for block in blocks
        for start, packets, expected, lost, mean_j, max_j, mos in _INTERVAL.iter_unpack(block)
    )


class _Columns:
    """Per-row numpy columns of one ``UdpBatch`` (the batch path's working set)."""

    __slots__ = ("b1", "frames", "plain", "rts", "seq", "ts")

    plain: np.ndarray
    seq: np.ndarray
    rts: np.ndarray
    b1: np.ndarray
    frames: np.ndarray
    ts: np.ndarray


class _Sorted:
    """A batch in stream order: sorted→original row map and the per-row values runs need."""

    __slots__ = ("breaks", "cum", "gaps", "order", "plain", "pt", "rts", "seq", "step")

    def __init__(self, order: np.ndarray, seq: np.ndarray, pt: np.ndarray, cum: np.ndarray,
                 breaks: list[int], plain: np.ndarray, rts: np.ndarray, step: np.ndarray,
                 gaps: list[int]) -> None:
        self.order = order
        self.seq = seq
        self.pt = pt
        self.cum = cum
        self.breaks = breaks  # sorted positions where a run cannot continue (plus the end)
        self.plain = plain
        self.rts = rts
        self.step = step  # sequence number minus the sorted predecessor's (within a run: 1..3000)
        self.gaps = gaps  # sorted positions inside runs that follow lost packets (step > 1)


def _segmented_scan(coef: np.ndarray, values: list[np.ndarray], maxlen: int) -> list[np.ndarray]:
    """Solve y_i = coef_i·y_(i−1) + x_i for several x at once (coef 0 starts a segment) by
    recursive doubling: log2(maxlen) vector passes instead of a Python loop per row."""
    a = coef.copy()
    ys = [v.copy() for v in values]
    shift = 1
    while shift < maxlen:
        for y in ys:
            y[shift:] += a[shift:] * y[:-shift]
        a[shift:] *= a[:-shift].copy()
        shift *= 2
    return ys


class RtpAnalyzer:
    """Per-stream RTP statistics (Wireshark-equal) plus RTCP report summaries.

    Contract for the pipeline (``collectors.analyze``):

    * ``expect(addr, port, payload_map, call_id)`` for every SDP media line as soon as the SIP
      message carrying it is seen (``payload_map`` is ``{pt: (encoding, clock_rate)}``); a new
      SDP for the same ``addr:port`` replaces the old one (as a re-INVITE does in Wireshark).
    * ``on_udp(pkt)`` / ``on_udp_fields(...)`` for every UDP datagram no other analyser claimed;
      returns True when it was consumed as RTP or RTCP. Packets must come in capture order.
    * ``on_udp_batch(batch)`` instead, for a chunk of Ethernet/IPv4 datagrams: the same numbers
      as one ``on_udp_fields`` per row, at about 0.4 µs a packet. Order only matters within a
      flow: an SDP must be announced before the batch that holds the packets after it.
    * ``finish()`` → the RTP streams, in order of their first packet; ``finish_rtcp()`` → RTCP
      summaries; ``errors`` → malformed RTP/RTCP on announced endpoints (capped at 1000 items,
      ``error_count`` has the total).
    """

    def __init__(
        self, interval_s: float = 10.0, mos_model: MosModel | None = None, idle_s: float = 120.0
    ) -> None:
        if not interval_s > 0 or not idle_s > 0:
            raise ValueError("interval_s and idle_s must be positive")
        self.interval_s = interval_s
        # streams silent for idle_s (capture time) are packed to save memory; exact on resume
        self.idle_s = idle_s
        self._idle: dict[tuple[str, int, str, int, int], _Packed] = {}
        self._evicted_at = 0.0
        self._since_evict = 0
        # no packing while a batch runs: its deferred runs hold live stream objects
        self._in_batch = False
        self.mos_model = mos_model or MosModel()
        # value None: announced with a non-RTP transport (T.38 UDPTL, …)
        self._endpoints: dict[tuple[str, int], _Endpoint | None] = {}
        self._rtcp_endpoints: dict[tuple[str, int], _Endpoint | None] = {}
        self._flows: dict[tuple[str, int, str, int], _Flow] = {}
        # endpoint → flow keys classified with it, so a new SDP re-classifies only those flows
        self._flows_by_endpoint: dict[tuple[str, int], list[tuple[str, int, str, int]]] = {}
        self._streams: dict[tuple[str, int, str, int, int], _Stream] = {}
        # heuristic guesses: (flow, SSRC) → up to 4 (frame, ts, first 12 bytes) until a packet
        # continues the sequence (+1..+100); only then a stream is made and they are replayed
        self._candidates: dict[tuple[str, int, str, int, int], list[tuple[int, float, bytes]]] = {}
        self._ssrc_clock: dict[int, int] = {}
        self._names: dict[int, str] = {}  # IPv4 as integer → dotted quad (batch path)
        self._rtcp = _RtcpCollector()
        self.errors: list[ErrorItem] = []
        self.error_count = 0

    # -- SDP correlation ---------------------------------------------------------------------
    def expect(
        self,
        addr: str,
        port: int,
        payload_map: dict[int, tuple[str, int]],
        call_id: str | None,
        rtp: bool | None = None,
    ) -> None:
        """Announce an SDP media endpoint; RTP to/from ``addr:port`` and RTCP on ``port+1``.

        ``rtp=False`` is an m= line whose transport is not RTP (``image … udptl`` T.38,
        ``application``): Wireshark then hands that address to the other protocol, so packets
        *to* it stop counting as RTP (T.38 UDPTL can look like RTP version 2). When the caller
        does not say (``None``), an empty ``payload_map`` means not RTP: a T.38 line's formats
        are not payload types, while every RTP line lists at least one.
        """
        if not 0 < port < 65535:
            return  # port 0 = stream disabled (RFC 3264 §6); 65535 has no RTCP neighbour
        if rtp is None:
            rtp = bool(payload_map)
        endpoint = _Endpoint(payload_map, call_id) if rtp else None
        self._endpoints[(addr, port)] = endpoint
        self._rtcp_endpoints[(addr, port + 1)] = endpoint
        for ep in ((addr, port), (addr, port + 1)):
            for key in self._flows_by_endpoint.pop(ep, ()):
                self._flows.pop(key, None)  # re-classified lazily on its next packet

    # -- packets -----------------------------------------------------------------------------
    def on_udp(self, pkt: UdpPacket) -> bool:
        """Offer one UDP datagram; True if it was RTP or RTCP."""
        return self.on_udp_fields(pkt.frame, pkt.ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.payload)

    def on_udp_fields(
        self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes
    ) -> bool:
        """Same as ``on_udp`` without building a ``UdpPacket`` (the hot path of big captures)."""
        self._since_evict += 1
        if self._since_evict >= 65536 and not self._in_batch:
            self._evict_idle(ts)
        n = len(payload)
        if n < 8 or payload[0] >> 6 != 2:
            return False
        key = (src, sport, dst, dport)
        flow = self._flows.get(key)
        if flow is None:
            flow = self._classify(key)
        if flow.kind == _OTHER:
            return False
        b1 = payload[1]
        if flow.kind == _SDP_RTCP or 192 <= b1 <= 223:
            # RTCP port, or RTP/RTCP multiplexing (RFC 5761: marker + PT 64..95 is RTCP)
            if flow.kind == _HEURISTIC and not (200 <= b1 <= 201):
                return False  # heuristic RTCP must start with SR or RR (RFC 3550 §6.1)
            return self._on_rtcp(flow, frame, ts, src, sport, dst, dport, payload)
        if n < 12:
            self._malformed(flow, frame, f"RTP datagram of {n} bytes is shorter than the header")
            return False
        b0 = payload[0]
        # header length checks (CSRCs, extension, padding) as the RTP dissector does them
        hlen = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            if hlen + 4 > n:
                self._malformed(flow, frame, "RTP header extension runs past the datagram")
                return False
            hlen += 4 + 4 * ((payload[hlen + 2] << 8) | payload[hlen + 3])
        if hlen > n:
            self._malformed(flow, frame, "RTP header (CSRC list/extension) runs past the datagram")
            return False
        if b0 & 0x20:
            pad = payload[-1]
            if pad == 0 or pad > n - hlen:
                self._malformed(flow, frame, f"RTP padding count {pad} does not fit the payload")
                return False
        pt = b1 & 0x7F
        ssrc = int.from_bytes(payload[8:12], "big")
        skey = (src, sport, dst, dport, ssrc)
        stream = self._streams.get(skey)
        endpoint = flow.endpoint
        if stream is None and skey in self._idle:
            stream = self._streams[skey] = _unpack(skey, self._idle.pop(skey))
        if stream is None:
            if flow.kind == _HEURISTIC:
                return self._candidate(skey, frame, ts, payload, pt)
            stream = self._streams[skey] = _Stream(src, sport, dst, dport, ssrc, endpoint, "sdp")
        elif flow.kind == _HEURISTIC and 72 <= pt <= 76:
            return False
        self._feed(stream, endpoint, frame, ts, payload, pt)
        return True

    def _candidate(
        self, skey: tuple[str, int, str, int, int], frame: int, ts: float, payload: bytes, pt: int
    ) -> bool:
        """A packet of a flow/SSRC not yet believed to be RTP (heuristic detection)."""
        pending = self._candidates.get(skey)
        if pending is None:
            if pt not in _HEURISTIC_START_PT:
                return False
            cands = self._candidates
            while cands:  # drop guesses that did not confirm in time (insertion order = age)
                oldest = next(iter(cands))
                if cands[oldest][0][1] >= ts - _CANDIDATE_AGE_S and len(cands) < _MAX_CANDIDATES:
                    break
                del cands[oldest]
            cands[skey] = [(frame, ts, bytes(payload[:12]))]
            return True
        if 72 <= pt <= 76:
            return False
        last = pending[-1][2]
        step = (((payload[2] << 8) | payload[3]) - ((last[2] << 8) | last[3])) & 0xFFFF
        if not 0 < step <= 100:
            if len(pending) < _CANDIDATE_PACKETS:
                pending.append((frame, ts, bytes(payload[:12])))
            else:
                del self._candidates[skey]
            return True
        del self._candidates[skey]
        src, sport, dst, dport, ssrc = skey
        stream = self._streams[skey] = _Stream(src, sport, dst, dport, ssrc, None, "heuristic")
        for f, t, hdr in pending:
            self._feed(stream, None, f, t, hdr, hdr[1] & 0x7F)
        self._feed(stream, None, frame, ts, payload, pt)
        return True

    def _feed(
        self, stream: _Stream, endpoint: _Endpoint | None, frame: int, ts: float, payload: bytes, pt: int
    ) -> None:
        """Account one RTP packet (header already checked) to its stream."""
        b1 = payload[1]
        ssrc = stream.ssrc
        rtp_ts = int.from_bytes(payload[4:8], "big")
        seq = (payload[2] << 8) | payload[3]
        if endpoint is not None:
            clock, is_event, name = endpoint.pt_info.get(pt) or endpoint.info(pt)
        else:
            clock, is_event, name = _heuristic_info(pt)
        if is_event:
            stream.events += 1
        if stream.main_pt is None and pt != PT_CN and pt != PT_CN_OLD and not is_event:
            stream.main_pt = pt
            stream.codec = name
            if clock:
                stream.clock_rate = clock
                self._ssrc_clock[ssrc] = clock
        if stream.total_nr == 0:
            stream.first(frame, ts, seq, rtp_ts, pt, clock)
            if not stream.codec:
                stream.codec = name
            return
        self._analyse(stream, frame, ts, seq, rtp_ts, pt, bool(b1 & 0x80), clock)

    def on_udp_batch(self, batch: UdpBatch) -> None:
        """Offer a chunk of IPv4/UDP datagrams (frame order) at once; see ``_batch``."""
        self._in_batch = True
        try:
            self._batch(batch)
        finally:
            self._in_batch = False
        if len(batch):
            self._evict_idle(float(np.max(batch.ts)))

    def _batch(self, batch: UdpBatch) -> None:
        """Offer a chunk of IPv4/UDP datagrams (frame order) at once; same results as one
        ``on_udp_fields`` call per row, in a fraction of the time.

        Rows are grouped by stream. Within a stream, a *run* is a stretch of plain packets (no
        padding/extension/CSRC) with the stream's payload type (one with a clock), rising
        sequence numbers, forward timestamps, in time and before any wrap decision; everything
        else goes through the per-packet path in order. The run that ends a stream's rows is
        computed together with every other stream's in one set of numpy passes (segmented scans
        for the jitter and running-mean recurrences) and may step over lost packets (sequence
        steps up to 3000); an earlier run (``_fast_run``) takes consecutive numbers only.
        """
        n = len(batch)
        if n == 0:
            return
        a = np.frombuffer(batch.buf, dtype=np.uint8)
        off = np.asarray(batch.payload_off, dtype=np.int64)
        plen = np.asarray(batch.payload_len, dtype=np.int64)
        ok = (plen >= 12) & (off >= 0) & (off + plen <= a.size)
        if a.size < 12:  # rows that cannot be RTP read a dummy header at offset 0
            a = np.zeros(12, dtype=np.uint8)
        # every row's 12-byte fixed header (rows that cannot be RTP read the dummy at offset 0;
        # rows the batch brings its header for are not used when they cannot be RTP)
        hdr = batch.head if batch.head is not None else byte_rows(a, np.where(ok, off, 0), 12)
        words = hdr.view(">u4").astype(np.int64)  # (first 32 bits, timestamp, SSRC)
        b0 = hdr[:, 0]
        b1 = hdr[:, 1]
        cols = _Columns()
        cols.seq = words[:, 0] & 0xFFFF
        cols.rts = words[:, 1]
        ssrc = words[:, 2]
        cols.b1 = b1.astype(np.int64)
        cols.frames = np.asarray(batch.frame, dtype=np.int64)
        cols.ts = np.asarray(batch.ts, dtype=np.float64)
        # RTP-like rows are grouped by stream (order matters within one); see below for the rest
        cols.plain = ok & (b0 == 0x80)
        rtp_like = ok & ((b1 < 192) | (b1 > 223))
        src = np.asarray(batch.src, dtype=np.int64)
        dst = np.asarray(batch.dst, dtype=np.int64)
        sport = np.asarray(batch.sport, dtype=np.int64)
        dport = np.asarray(batch.dport, dtype=np.int64)
        rtp_rows = np.flatnonzero(rtp_like)
        srcdst = ((src << 32) | dst)[rtp_rows].astype(np.uint64)
        pss = (((sport << 16) | dport).astype(np.uint64) << np.uint64(32)) | ssrc.astype(np.uint64)
        pss = pss[rtp_rows]
        # stable (frame order within a stream): by addresses and ports — and by SSRC too when a
        # flow carries several (then as one lexsort; the same order either way)
        sub = sort_by(srcdst, sport[rtp_rows], dport[rtp_rows])
        sd, ps = srcdst[sub], pss[sub]
        flow = np.uint64(32)
        if bool(((sd[1:] == sd[:-1]) & (ps[1:] >> flow == ps[:-1] >> flow) & (ps[1:] != ps[:-1])).any()):
            sub = np.lexsort((pss, srcdst))
            sd, ps = srcdst[sub], pss[sub]
        order = rtp_rows[sub]
        m = len(order)
        change = np.ones(m, dtype=bool)
        change[1:] = (sd[1:] != sd[:-1]) | (ps[1:] != ps[:-1])
        # links between sorted neighbours that a run needs (state-independent part)
        sq, pt, t, rt = cols.seq[order], cols.b1[order] & 0x7F, cols.ts[order], cols.rts[order]
        fwd = np.zeros(m, dtype=np.int64)
        fwd[1:] = (rt[1:] - rt[:-1]) & 0xFFFFFFFF
        plain = cols.plain[order]
        link = ~change & plain
        # sequence numbers rise by 1, or by up to 3000 over lost packets (the per-packet path's
        # "ordinary jump" limit); a 16-bit wrap breaks the run (once per 65536 packets)
        step = np.zeros(m, dtype=np.int64)
        step[1:] = sq[1:] - sq[:-1]
        link[1:] &= (step[1:] >= 1) & (step[1:] <= 3000) & (pt[1:] == pt[:-1]) & (t[1:] >= t[:-1])
        link &= fwd < 0x80000000
        cum = np.cumsum(np.where(link, fwd, 0))  # timestamp advance along runs
        sv = _Sorted(order, sq, pt, cum, [*np.flatnonzero(~link).tolist(), m], plain, rt, step,
                     np.flatnonzero(link & (step > 1)).tolist())
        buf = batch.buf
        fields = self.on_udp_fields
        name = self._name

        def slow(r: int) -> None:
            o = int(off[r])
            fields(int(cols.frames[r]), float(cols.ts[r]), name(int(src[r])), int(sport[r]),
                   name(int(dst[r])), int(dport[r]), buf[o:o + int(plen[r])])

        begin = np.flatnonzero(change)
        starts = begin.tolist()
        ends = [*starts[1:], m] if starts else []
        heads = order[begin]  # each group's first row: its stream's addresses, ports and SSRC
        deferred: list[tuple[int, int, _Stream, int, int]] = []
        for g0, g1, s_, sp, d_, dp, ss in zip(starts, ends, src[heads].tolist(), sport[heads].tolist(),
                                              dst[heads].tolist(), dport[heads].tolist(), ssrc[heads].tolist(),
                                              strict=True):
            self._group((name(s_), sp, name(d_), dp, ss), g0, g1, sv, cols, slow, deferred)
        if deferred:
            self._runs_together(deferred, sv, cols)
        # RTCP-range (RFC 5761: second octet 192..223) and short rows: after the RTP, so RTCP
        # jitter is converted with the clock of a stream first seen in this same batch
        for r in np.flatnonzero(~rtp_like).tolist():
            slow(r)
        if len(self._names) > 65536:
            self._names.clear()  # bounded cache of formatted IPv4 addresses

    def _evict_idle(self, now: float) -> None:
        """Pack streams silent for ``idle_s`` of capture time (checked every idle_s/2)."""
        self._since_evict = 0
        if now - self._evicted_at < self.idle_s / 2:
            return
        self._evicted_at = now
        horizon = now - self.idle_s
        for key, s in list(self._streams.items()):
            if s.last_ts < horizon:
                self._idle[key] = _pack(s)
                del self._streams[key]
                fkey = key[:4]
                if self._flows.pop(fkey, None) is not None:  # re-classified if it comes back
                    for ep in (fkey[:2], fkey[2:]):
                        keys = self._flows_by_endpoint.get(ep)
                        if keys is not None:
                            keys[:] = [k for k in keys if k != fkey]
                            if not keys:
                                del self._flows_by_endpoint[ep]

    def _name(self, value: int) -> str:
        name = self._names.get(value)
        if name is None:
            name = self._names[value] = f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
        return name

    def _group(
        self, skey: tuple[str, int, str, int, int], g0: int, g1: int, sv: _Sorted, cols: _Columns,
        slow: Callable[[int], None], deferred: list[tuple[int, int, _Stream, int, int]],
    ) -> None:
        """One stream's rows (sorted positions g0..g1): runs where possible, else packet by packet.
        A run reaching the end of the group is deferred to the all-streams pass, lost packets
        and all; a run before that (``_fast_run``) takes consecutive sequence numbers only."""
        breaks = sv.breaks
        bi = bisect.bisect_right(breaks, g0)
        i = g0
        while i < g1:
            while breaks[bi] <= i:
                bi += 1
            j = min(breaks[bi], g1)
            s = self._streams.get(skey)
            run, clock, lead = self._run_length(s, skey, i, j, sv) if s is not None else (0, 0, 0)
            if run > 0 and i + run < g1:
                # not the group's last run: cut it at the first lost packet (or go packet by
                # packet when it starts after one)
                gaps = sv.gaps
                k = bisect.bisect_right(gaps, i)
                run = 0 if lead != 1 else min(run, gaps[k] - i if k < len(gaps) else run)
            if run <= 0:
                slow(int(sv.order[i]))
                i += 1
                continue
            assert s is not None
            if i + run == g1:
                deferred.append((i, run, s, clock, lead))
                return
            rows = sv.order[i:i + run]
            self._fast_run(s, rows, cols.seq[rows], cols.ts[rows], cols, clock)
            i += run

    def _run_length(
        self, s: _Stream, skey: tuple[str, int, str, int, int], i: int, j: int, sv: _Sorted,
    ) -> tuple[int, int, int]:
        """(rows from sorted position ``i`` the closed form may take, clock rate, sequence step
        of the first row from the stream's last packet); (0, 0, 0) = none.

        Within rows ``i..j`` the sequence numbers rise strictly (steps of 1..3000, no 16-bit
        wrap: see ``_batch``); the first row must continue the stream the same way."""
        if s.total_nr < 2 or not bool(sv.plain[i]):
            return 0, 0, 0
        flow = self._flows.get(skey[:4])
        if flow is None or flow.kind not in (_SDP_RTP, _HEURISTIC):
            return 0, 0, 0
        p = int(sv.pt[i])
        first = int(sv.seq[i])
        lead = first - s.seq_num
        if p != s.pt or p in (PT_CN, PT_CN_OLD) or not 1 <= lead <= 3000:
            return 0, 0, 0
        if (first - s.hi_seq) & 0xFFFF != lead:  # our extended sequence agrees with Wireshark's
            return 0, 0, 0
        clock, is_event, _codec = flow.endpoint.info(p) if flow.endpoint is not None else _heuristic_info(p)
        if clock < 1000 or is_event:
            return 0, 0, 0
        # a run ends before a packet that would decide a sequence wrap (Wireshark's "under")
        if s.under:
            if first > s.start_seq:
                return 0, 0, 0
            limit = int(np.searchsorted(sv.seq[i:j], s.start_seq, side="right"))
        else:
            if first < s.start_seq or first == 0:
                return 0, 0, 0
            limit = j - i
        # … and before a packet out of time (half the timestamp space after the first packet)
        units = (int(sv.rts[i]) - s.first_timestamp) & 0xFFFFFFFF
        if units >= 0x80000000:
            return 0, 0, 0
        run = min(j - i, limit)
        cum = sv.cum
        if units + int(cum[i + run - 1]) - int(cum[i]) >= 0x80000000:
            run = int(np.searchsorted(cum[i:i + run] - cum[i], 0x80000000 - units, side="left"))
        return run, clock, lead

    def _runs_together(self, runs: list[tuple[int, int, _Stream, int, int]], sv: _Sorted, cols: _Columns) -> None:
        """Closed form of many streams' final runs in one set of numpy passes.

        A run may step over lost packets: each such row is one Wireshark sequence error, and
        our extended sequence (expected per interval, duplicate window) advances by the step."""
        starts = np.array([r[0] for r in runs], dtype=np.int64)
        lens = np.array([r[1] for r in runs], dtype=np.int64)
        streams = [r[2] for r in runs]
        total = int(lens.sum())
        first = np.cumsum(lens) - lens  # compact position of each run's first row
        pos = np.arange(total, dtype=np.int64) - np.repeat(first, lens)
        spos = np.repeat(starts, lens) + pos  # sorted positions, run by run
        rows = sv.order[spos]  # original batch rows, run by run
        steps = sv.step[spos]
        steps[first] = [r[4] for r in runs]  # the first row's step is from the stream's last packet
        t = cols.ts[rows]
        now = t * 1000.0
        ft = np.repeat(np.array([s.first_timestamp for s in streams], dtype=np.int64), lens)
        cdiv = np.repeat(np.array([r[3] // 1000 for r in runs], dtype=np.float64), lens)
        nominal = ((cols.rts[rows] - ft) & 0xFFFFFFFF) / cdiv
        time_prev = np.empty(total)
        time_prev[1:] = now[:-1]
        time_prev[first] = [s.time for s in streams]
        nom_prev = np.empty(total)
        nom_prev[1:] = nominal[:-1]
        nom_prev[first] = [s.last_nominal for s in streams]
        diff = np.abs(now - (time_prev + nominal - nom_prev))
        delta = now - time_prev
        regular = (cols.b1[rows] & 0x80) == 0
        maxlen = int(lens.max())
        # jitter J_i = r·J_(i−1) + D_i/16, restarted at each run from the stream's J
        coef = np.full(total, _R)
        coef[first] = 0.0
        jb = diff / 16.0
        jb[first] += _R * np.array([s.jitter for s in streams])
        (jit,) = _segmented_scan(coef, [jb], maxlen)
        # running means: Q = m·(n−1) grows by x (regular) or by the factor n/(n−1) (other)
        totals = np.repeat(np.array([s.total_nr for s in streams], dtype=np.float64), lens) + pos
        grow = np.where(regular, 1.0, totals / (totals - 1.0))
        reg_jit = np.where(regular, jit, 0.0)
        qd = np.where(regular, delta, 0.0)
        qj = reg_jit.copy()
        base = np.array([s.total_nr - 1 for s in streams], dtype=np.float64)
        qd[first] += grow[first] * base * np.array([s.mean_delta for s in streams])
        qj[first] += grow[first] * base * np.array([s.mean_jitter for s in streams])
        last = first + lens - 1
        if bool(regular.all()):
            # the usual case: Q only grows by x, so each run's last Q is its sum
            q_d, q_j = np.add.reduceat(qd, first), np.add.reduceat(qj, first)
        else:
            coef = grow.copy()
            coef[first] = 0.0
            qd, qj = _segmented_scan(coef, [qd, qj], maxlen)
            q_d, q_j = qd[last], qj[last]
        mean_d = (q_d / totals[last]).tolist()
        mean_j = (q_j / totals[last]).tolist()
        inf = np.inf
        max_d = np.maximum.reduceat(np.where(regular, delta, -inf), first).tolist()
        min_d = np.minimum.reduceat(np.where(regular, delta, inf), first).tolist()
        max_j = np.maximum.reduceat(np.where(regular, jit, -inf), first).tolist()
        min_j = np.minimum.reduceat(np.where(regular, jit, inf), first).tolist()
        # 10-s interval pieces: a new piece where a run starts or the interval index changes
        fts = np.repeat(np.array([s.first_ts for s in streams]), lens)
        ivx = np.floor((t - fts) / self.interval_s).astype(np.int64)
        cut = np.zeros(total, dtype=bool)
        cut[first] = True
        cut[1:] |= ivx[1:] != ivx[:-1]
        pb = np.flatnonzero(cut)
        p_cnt = np.diff(np.append(pb, total)).tolist()
        p_exp = np.add.reduceat(steps, pb).tolist()
        p_jsum = np.add.reduceat(reg_jit, pb).tolist()
        p_jn = np.add.reduceat(regular.astype(np.int64), pb).tolist()
        p_jmax = np.maximum.reduceat(reg_jit, pb).tolist()
        p_iv = ivx[pb].tolist()
        p_run = (np.searchsorted(first, pb, side="right") - 1).tolist()
        jit_l, delta_l, now_l, nom_l = jit[last].tolist(), delta[last].tolist(), now[last].tolist(), nominal[last].tolist()
        seq_l = cols.seq[rows[last]].tolist()
        adv_l = np.add.reduceat(steps, first).tolist()  # extended-sequence advance per run
        lost_l = np.add.reduceat((steps > 1).astype(np.int64), first).tolist()  # rows after a loss
        frame_l = cols.frames[rows[last]].tolist()
        ts_l = t[last].tolist()
        lens_l = lens.tolist()
        for k, s in enumerate(streams):
            if max_d[k] != -inf:
                s.max_delta = max(s.max_delta, max_d[k])
                s.min_delta = min_d[k] if s.min_delta == -1.0 else min(s.min_delta, min_d[k])
                s.max_jitter = max(s.max_jitter, max_j[k])
                s.min_jitter = min_j[k] if s.min_jitter == -1.0 else min(s.min_jitter, min_j[k])
            s.mean_delta = mean_d[k]
            s.mean_jitter = mean_j[k]
            s.delta = delta_l[k]
            s.jitter = jit_l[k]
            s.time = now_l[k]
            s.last_nominal = nom_l[k]
            s.clock_rate = runs[k][3]
            s.seq_num = s.stop_seq = seq_l[k]
            m = lens_l[k]
            s.total_nr += m
            s.last_frame = frame_l[k]
            s.last_ts = ts_l[k]
            adv = adv_l[k]
            s.hi_seq += adv
            if adv == m:
                s.dup_mask = ((s.dup_mask << m) | ((1 << m) - 1)) & _WINDOW_MASK
            else:
                s.sequence += lost_l[k]
                s.dup_mask = ((s.dup_mask << adv) | self._received_bits(cols.seq[rows[first[k]:first[k] + m]])) \
                    & _WINDOW_MASK
            s.bad_seq = -1
        for q, k in enumerate(p_run):
            s = streams[k]
            current = round((s.cur_start - s.first_ts) / self.interval_s)
            if p_iv[q] > current:
                self._close_interval(s)
                s.cur_start = s.first_ts + p_iv[q] * self.interval_s
            s.cur_packets += p_cnt[q]
            s.cur_exp += p_exp[q]
            if p_jn[q]:
                s.cur_jit_sum += p_jsum[q]
                s.cur_jit_n += p_jn[q]
                s.cur_jit_max = max(s.cur_jit_max, p_jmax[q])

    @staticmethod
    def _received_bits(seq: np.ndarray) -> int:
        """Duplicate-window bits of a run's rising sequence numbers: bit b = the number b below
        the last one was received (the last 128 numbers)."""
        back = int(seq[-1]) - seq[-128:]
        seen = np.zeros(128, dtype=bool)
        seen[back[back < 128]] = True
        return int.from_bytes(np.packbits(seen, bitorder="little").tobytes(), "little")

    def _fast_run(
        self, s: _Stream, rows: np.ndarray, sq: np.ndarray, t: np.ndarray, cols: _Columns, clock: int
    ) -> None:
        """Apply a run of ordinary packets (checked by ``_run_length``, ``clock`` of its payload
        type on the flow) in closed form."""
        k = len(rows)
        units = (cols.rts[rows] - s.first_timestamp) & 0xFFFFFFFF
        now = t * 1000.0
        nominal = units / (clock // 1000)
        time_prev = np.empty(k)
        time_prev[0] = s.time
        time_prev[1:] = now[:-1]
        nom_prev = np.empty(k)
        nom_prev[0] = s.last_nominal
        nom_prev[1:] = nominal[:-1]
        diff = np.abs(now - (time_prev + nominal - nom_prev))
        # J_i = r·J_(i−1) + D_i/16 (r = 15/16) in closed form, block by block
        jit = np.empty(k)
        j0 = s.jitter
        for b in range(0, k, _BLOCK):
            d = diff[b:b + _BLOCK]
            m = len(d)
            i = np.arange(m)
            rp = _R ** (i + 1)
            jit[b:b + m] = rp * j0 + (rp / _R) * np.cumsum(d * _R ** (-i)) / 16.0
            j0 = float(jit[b + m - 1])
        delta = now - time_prev
        regular = (cols.b1[rows] & 0x80) == 0  # same non-CN payload type, in time: the marker decides
        if bool(regular.any()):
            rd = delta[regular]
            rj = jit[regular]
            s.max_delta = max(s.max_delta, float(rd.max()))
            lo = float(rd.min())
            s.min_delta = lo if s.min_delta == -1.0 else min(s.min_delta, lo)
            s.max_jitter = max(s.max_jitter, float(rj.max()))
            lo = float(rj.min())
            s.min_jitter = lo if s.min_jitter == -1.0 else min(s.min_jitter, lo)
            # Wireshark's running means m = (m·(n−1) + x)/n: Q = m·(n−1) grows by x on a regular
            # packet and by the factor n/(n−1) on another; solved with a cumulative product.
            totals = s.total_nr + np.arange(k, dtype=np.float64)  # packets before each row
            scale = np.cumprod(np.where(regular, 1.0, totals / (totals - 1.0)))
            last_total = float(totals[-1])
            base = float(s.total_nr - 1)
            s.mean_delta = float(scale[-1] * (s.mean_delta * base + np.sum(np.where(regular, delta, 0.0) / scale)))
            s.mean_delta /= last_total
            s.mean_jitter = float(scale[-1] * (s.mean_jitter * base + np.sum(np.where(regular, jit, 0.0) / scale)))
            s.mean_jitter /= last_total
        s.delta = float(delta[-1])
        s.jitter = float(jit[-1])
        s.time = float(now[-1])
        s.last_nominal = float(nominal[-1])
        s.clock_rate = clock
        s.seq_num = s.stop_seq = int(sq[-1])
        s.total_nr += k
        s.last_frame = int(cols.frames[rows[-1]])
        s.last_ts = float(t[-1])
        s.hi_seq += k
        s.dup_mask = ((s.dup_mask << k) | ((1 << k) - 1)) & _WINDOW_MASK
        s.bad_seq = -1
        self._fast_intervals(s, t, jit, regular)

    def _fast_intervals(self, s: _Stream, t: np.ndarray, jit: np.ndarray, regular: np.ndarray) -> None:
        idx = np.floor((t - s.first_ts) / self.interval_s).astype(np.int64)
        current = round((s.cur_start - s.first_ts) / self.interval_s)
        cuts = np.flatnonzero(np.diff(idx)) + 1
        bounds = [0, *cuts.tolist(), len(t)]
        for lo, hi in itertools.pairwise(bounds):
            k = int(idx[lo])
            if k > current:
                self._close_interval(s)
                s.cur_start = s.first_ts + k * self.interval_s
                current = k
            m = hi - lo
            s.cur_packets += m
            s.cur_exp += m
            reg = regular[lo:hi]
            if bool(reg.any()):
                rj = jit[lo:hi][reg]
                s.cur_jit_sum += float(rj.sum())
                s.cur_jit_n += len(rj)
                s.cur_jit_max = max(s.cur_jit_max, float(rj.max()))

    def _classify(self, key: tuple[str, int, str, int]) -> _Flow:
        # Like Wireshark's conversation lookup: the destination's announcement wins over the
        # source's, and an address announced for another protocol is not RTP.
        src, sport, dst, dport = key
        kind = _HEURISTIC
        ep: _Endpoint | None = None
        for table, found_kind in ((self._endpoints, _SDP_RTP), (self._rtcp_endpoints, _SDP_RTCP)):
            for addr in ((dst, dport), (src, sport)):
                if addr in table:
                    ep = table[addr]
                    kind = found_kind if ep is not None else _OTHER
                    break
            if kind != _HEURISTIC:
                break
        if kind == _HEURISTIC and (sport < 1024 or dport < 1024):
            kind = _OTHER  # well-known service ports (DNS, NetBIOS, syslog …) are never guessed RTP
        flow = _Flow(kind, ep)
        if len(self._flows) >= _MAX_FLOW_CACHE:
            # a cache, not state: classification is a pure function of the announced endpoints,
            # so dropping it only costs re-classification (bounds memory on port-scan captures)
            self._flows.clear()
            self._flows_by_endpoint.clear()
        self._flows[key] = flow
        by_ep = self._flows_by_endpoint
        by_ep.setdefault((src, sport), []).append(key)
        by_ep.setdefault((dst, dport), []).append(key)
        return flow

    def _malformed(self, flow: _Flow, frame: int, message: str) -> None:
        if flow.kind == _HEURISTIC:
            return  # not RTP after all: only announced endpoints make a malformed-RTP report
        self.error_count += 1
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(ErrorItem("malformed", "rtp", message, frame=frame))

    def _analyse(
        self, s: _Stream, frame: int, ts: float, seq: int, rtp_ts: int, pt: int, marker: bool, clock: int
    ) -> None:
        now = ts * 1000.0
        s.last_frame = frame
        s.last_ts = ts
        # "in time": within half the 32-bit timestamp space after the stream's first timestamp
        nominal_units = (rtp_ts - s.first_timestamp) & 0xFFFFFFFF
        in_time = nominal_units < 0x80000000
        # sequence wrap counting relative to the first sequence number (tap-rtp-analysis.c)
        if in_time:
            if not s.under and (seq < s.start_seq or (seq == 0 and s.stop_seq == 65535)):
                s.cycles += 1
                s.under = True
            elif seq > s.start_seq and s.under:
                s.under = False
        last = s.seq_num
        if in_time and (last + 1 == seq or (last == 65535 and seq == 0)):
            s.seq_num = seq
        elif in_time and (last + 1 < seq or last - seq > 0xFF00):
            s.seq_num = seq
            s.sequence += 1
        elif last + 1 > seq:
            s.sequence += 1
        regular = in_time and not marker and pt != PT_CN and pt != PT_CN_OLD
        if s.pt == PT_CN or s.pt == PT_CN_OLD:
            regular = False
        s.pt = pt
        jitter = 0.0
        if in_time:
            # delta and jitter are only computed for in-time packets; the reference arrival
            # ``time`` moves with every in-time packet, the reference nominal time only with
            # packets that have a clock (so a telephone-event burst shifts the next diff).
            s.delta = now - s.time
            if clock:
                s.clock_rate = clock
                nominal = nominal_units / (clock // 1000)
                jitter = (15.0 * s.jitter + abs(now - (s.time + nominal - s.last_nominal))) / 16.0
                s.jitter = jitter
                s.last_nominal = nominal
            s.time = now
        n = s.total_nr
        if regular:
            delta = s.delta
            if delta > s.max_delta:
                s.max_delta = delta
            if s.min_delta == -1.0 or delta < s.min_delta:
                s.min_delta = delta
            s.mean_delta = (s.mean_delta * (n - 1) + delta) / n
            if clock:
                if s.jitter > s.max_jitter:
                    s.max_jitter = s.jitter
                s.mean_jitter = (s.mean_jitter * (n - 1) + jitter) / n
                if s.min_jitter == -1.0 or s.jitter < s.min_jitter:
                    s.min_jitter = s.jitter
        s.stop_seq = seq
        s.total_nr = n + 1
        # our own extras: the current 10-s interval …
        if ts - s.cur_start >= self.interval_s:
            self._close_interval(s)
            # intervals are aligned to the stream's first packet; empty ones are skipped
            s.cur_start = s.first_ts + int((ts - s.first_ts) / self.interval_s) * self.interval_s
        s.cur_packets += 1
        if regular and clock:
            s.cur_jit_sum += jitter
            s.cur_jit_n += 1
            if jitter > s.cur_jit_max:
                s.cur_jit_max = jitter
        # … and duplicates/expected from our extended sequence number (the usual +1 inline)
        d = (seq - s.hi_seq) & 0xFFFF
        if d == 1:
            s.hi_seq += 1
            s.cur_exp += 1
            s.dup_mask = ((s.dup_mask << 1) | 1) & _WINDOW_MASK
            s.bad_seq = -1
        else:
            self._sequence_extras(s, seq, d)

    def _sequence_extras(self, s: _Stream, seq: int, d: int) -> None:
        """Duplicates and interval loss from our own extended sequence number (RFC 3550 A.1
        style: jumps over 3000 or back over 128 need a second, sequential packet before they are
        believed — then they count as a restart, not as loss); ``d`` = seq − highest mod 2¹⁶."""
        hi = s.hi_seq
        if d == 0:
            s.duplicates += 1
            return
        back = 0x10000 - d
        if d <= 3000 or (d < 0x8000 and s.bad_seq == seq):
            if d > 3000:  # confirmed restart ahead: this packet and the unconfirmed one
                s.cur_exp += 2
                s.dup_mask = 1
            else:
                s.cur_exp += d
                s.dup_mask = ((s.dup_mask << d) | 1) & _WINDOW_MASK
            s.hi_seq = hi + d
            s.bad_seq = -1
        elif back < 128:
            bit = 1 << back
            if s.dup_mask & bit:
                s.duplicates += 1
            else:
                s.dup_mask |= bit
        elif s.bad_seq == seq:  # confirmed restart behind
            s.hi_seq = hi - back
            s.cur_exp += 2
            s.dup_mask = 1
            s.bad_seq = -1
        else:
            s.bad_seq = (seq + 1) & 0xFFFF

    def _close_interval(self, s: _Stream) -> None:
        if s.cur_packets == 0:
            return
        lost = s.cur_exp - s.cur_packets
        mean_j = s.cur_jit_sum / s.cur_jit_n if s.cur_jit_n else 0.0
        loss_pct = max(lost, 0) * 100.0 / s.cur_exp if s.cur_exp > 0 else 0.0
        mos = self.mos_model.mos(s.codec, loss_pct, mean_j) if s.cur_exp > 0 else None
        record = _INTERVAL.pack(
            s.cur_start, s.cur_packets, s.cur_exp, lost, mean_j, s.cur_jit_max, math.nan if mos is None else mos
        )
        blocks = s.intervals
        if blocks and len(blocks[-1]) < _IV_BLOCK:
            blocks[-1] += record
        else:
            blocks.append(record)
        s.cur_packets = s.cur_exp = s.cur_jit_n = 0
        s.cur_jit_sum = s.cur_jit_max = 0.0

    # -- RTCP ----------------------------------------------------------------------------------
    def _on_rtcp(
        self, flow: _Flow, frame: int, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes
    ) -> bool:
        try:
            packets = parse_rtcp(payload)
        except ParseError as exc:
            if flow.kind == _HEURISTIC:
                return False
            self.error_count += 1
            if len(self.errors) < _MAX_ERRORS:
                self.errors.append(ErrorItem("malformed", "rtcp", str(exc), frame=frame, offset=exc.offset))
            return True  # it was on an RTCP endpoint; consumed, reported as malformed
        call_id = flow.endpoint.call_id if flow.endpoint else None
        self._rtcp.add(frame, ts, src, sport, dst, dport, packets, call_id, self._clock_of_ssrc)
        return True

    def _clock_of_ssrc(self, ssrc: int) -> int:
        # the telephony default when the reported source is not in the capture
        return self._ssrc_clock.get(ssrc, 8000)

    # -- results -------------------------------------------------------------------------------
    def finish(self, *, release: bool = False) -> tuple[RtpStreamStats, ...]:
        """Every RTP stream with all ``RtpStreamStats`` fields, in order of first packet.

        ``release``: a last call — each stream's state is dropped as soon as its result is built,
        so the two never coexist for all streams (on a long capture the results' 10-s intervals
        are the bulk of the end-of-run memory). Packets and later calls see no streams."""
        out: list[RtpStreamStats] = []
        streams, idle = self._streams, self._idle
        if release:
            self._streams, self._idle = {}, {}
            self._flows.clear()
            self._flows_by_endpoint.clear()
        for key in list(streams):
            s = streams.pop(key) if release else streams[key]
            if s.total_nr:
                out.append(self._stats(s))
        for key in list(idle):
            s = _unpack(key, idle.pop(key) if release else idle[key])
            out.append(self._stats(s))
            if not release:
                idle[key] = _pack(s)  # the closed interval stays closed on a second call
        out.sort(key=lambda st: st.first_frame)
        return tuple(out)

    def _stats(self, s: _Stream) -> RtpStreamStats:
        self._close_interval(s)
        expected = s.stop_seq + s.cycles * 65536 - s.start_seq + 1
        lost = expected - s.total_nr
        loss_pct = lost * 100.0 / expected if expected else 0.0
        pt = s.main_pt if s.main_pt is not None else s.first_pt
        mos = mos_note = None
        if expected > 0:
            mos = self.mos_model.mos(s.codec, max(loss_pct, 0.0), s.mean_jitter)
            mos_note = self.mos_model.unavailable(s.codec, max(loss_pct, 0.0))
        return RtpStreamStats(
            src=s.src, src_port=s.sport, dst=s.dst, dst_port=s.dport, ssrc=s.ssrc,
            payload_type=pt, codec=s.codec, clock_rate=s.clock_rate,
            packets=s.total_nr, expected=expected, lost=lost, loss_pct=round(loss_pct, 3),
            sequence_errors=s.sequence, duplicates=s.duplicates,
            min_delta_ms=max(s.min_delta, 0.0), mean_delta_ms=s.mean_delta, max_delta_ms=s.max_delta,
            mean_jitter_ms=s.mean_jitter, max_jitter_ms=s.max_jitter, mos=mos,
            first_ts=s.first_ts, last_ts=s.last_ts, first_frame=s.first_frame, last_frame=s.last_frame,
            call_id=s.call_id, detected_by=s.detected_by, events=s.events, intervals=_intervals(s.intervals),
            mos_note=mos_note,
        )

    def finish_rtcp(self) -> tuple[RtcpReport, ...]:
        """One summary per (RTCP flow, sender SSRC, reported source SSRC), in order of appearance."""
        return self._rtcp.results()


class _RtcpPair:
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


class _RtcpCollector:
    """Aggregates parsed RTCP into ``RtcpReport`` values with bounded memory."""

    _SR_MEMORY = 16  # recent SRs remembered per sender for LSR matching

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, int, str, int, int, int | None], _RtcpPair] = {}
        self._srs: dict[int, dict[int, float]] = {}  # sender ssrc → {NTP middle 32: capture ts}
        self._cnames: dict[int, str] = {}
        self._by_sender: dict[int, list[_RtcpPair]] = {}  # sender SSRC → its pairs (for BYE)

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
                    found = self._pairs[key] = _RtcpPair(key, frame, call_id)
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

    def _block(self, pair: _RtcpPair, rb: ReportBlock, ts: float, clock_of: Callable[[int], int]) -> None:
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
