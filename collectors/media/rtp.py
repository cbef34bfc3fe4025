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
of IPv4 datagrams: it groups them by stream and runs every stream's rows through one compiled
loop (``collectors/_kernels.c``, the statements of ``_feed``/``_analyse``/``_sequence_extras``
on numeric state tables), so its cost is the same whatever the traffic looks like — jitter,
loss, reordering, mixed codecs — and its numbers are those of the per-packet path to the last
bit. The per-packet path stays the reference and does what is rare: a heuristic stream's first
packets, malformed headers, RTCP.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

import numpy as np

from collectors.capture.packets import UdpBatch, UdpPacket
from collectors.capture.reader import byte_rows
from core.analysis import ErrorItem, RtcpReport, RtpStreamStats, StreamInterval
from core.errors import ParseError
from core.media_quality import MosModel
from core.wire.rtp import ReportBlock, RtcpPacket, parse_rtcp

try:
    from collectors import _kernels
except ImportError:  # a source tree that was not installed: the per-packet path does everything
    _kernels = None  # type: ignore[assignment]

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


def _dynamic_clock(name: str, rate: int) -> tuple[int, bool]:
    """(clock used for jitter, is telephone-event) of a dynamic payload type from its rtpmap.

    A rate below 1 kHz is taken as no rate: the jitter is computed in ms with an integer
    clock/1000 divisor (as Wireshark does), which such a rate would make zero."""
    upper = name.upper()
    if upper.startswith("TELEPHONE-EVENT"):
        return 0, True
    if rate >= 1000:
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

    __slots__ = ("endpoint", "kind", "rows")

    def __init__(self, kind: int, endpoint: _Endpoint | None) -> None:
        self.kind = kind  # _SDP_RTP, _SDP_RTCP, _HEURISTIC or _OTHER (never RTP)
        self.endpoint = endpoint
        self.rows: list[int] = []  # state-table rows of streams resolved with this classification


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
        "slot",
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
        self.slot = -1  # ≥ 0: the numbers are in row ``slot`` of the kernel's state tables

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


# Column indexes of the kernel's state tables (``_StateTable``): ``_INT_SLOTS`` then the duplicate
# window's two 64-bit halves; ``_FLOAT_SLOTS``.
_STATE_INTS = (*_INT_SLOTS, "dup_lo", "dup_hi")
_I_TOTAL_NR, _I_MAIN_PT, _I_FIRST_PT = (_STATE_INTS.index(k) for k in ("total_nr", "main_pt", "first_pt"))
_F_LAST_TS = _FLOAT_SLOTS.index("last_ts")
_M64 = (1 << 64) - 1
_UNSET = object()  # a state-table row not classified yet
if _kernels is not None and (_kernels.INT_FIELDS != _STATE_INTS or _kernels.FLOAT_FIELDS != _FLOAT_SLOTS):
    raise RuntimeError("collectors._kernels was built from another version of the code: reinstall upscope")


class _StateTable:
    """The numeric state of the streams the batch kernel works on: one row per stream in an
    int64 and a float64 table (``_STATE_INTS`` / ``_FLOAT_SLOTS`` columns), rows reused.

    A stream's numbers live either in its ``_Stream`` attributes (the per-packet path reads and
    writes those) or in a row here (``_Stream.slot`` ≥ 0); ``RtpAnalyzer._push`` / ``_pull``
    move them, which happens only when a stream switches paths.

    Per row also what the batch path needs to find and feed the stream without Python work per
    stream: its key as integers (addresses; ports and SSRC) and the classification epoch in
    which it was resolved (-1: none), whether its flow is heuristic, the endpoint it was
    classified with (``media``; None: heuristic, ``_UNSET``: none yet) and the clock /
    telephone-event flag of each payload type on that endpoint (-1: not looked up yet)."""

    __slots__ = ("clock", "epoch", "event", "floats", "flow", "free", "heur", "ints", "key_ps", "key_sd", "media",
                 "owner")

    def __init__(self) -> None:
        self.ints = np.zeros((0, len(_STATE_INTS)), dtype=np.int64)
        self.floats = np.zeros((0, len(_FLOAT_SLOTS)), dtype=np.float64)
        self.key_sd = np.zeros(0, dtype=np.uint64)
        self.key_ps = np.zeros(0, dtype=np.uint64)
        self.epoch = np.zeros(0, dtype=np.int64)
        self.heur = np.zeros(0, dtype=bool)
        self.clock = np.zeros((0, 128), dtype=np.int32)
        self.event = np.zeros((0, 128), dtype=np.int8)
        self.free: list[int] = []
        self.owner: list[_Stream | None] = []
        self.media: list[object] = []
        self.flow: list[_Flow | None] = []

    def take(self, s: _Stream) -> int:
        if not self.free:
            old = len(self.owner)
            grow = max(64, old)

            def more(a: np.ndarray, fill: float) -> np.ndarray:
                return np.concatenate([a, np.full((grow, *a.shape[1:]), fill, dtype=a.dtype)])

            self.ints, self.floats = more(self.ints, 0), more(self.floats, 0.0)
            self.key_sd, self.key_ps, self.epoch = more(self.key_sd, 0), more(self.key_ps, 0), more(self.epoch, -1)
            self.heur, self.clock, self.event = more(self.heur, False), more(self.clock, -1), more(self.event, 0)
            self.owner.extend([None] * grow)
            self.media.extend([_UNSET] * grow)
            self.flow.extend([None] * grow)
            self.free = list(range(old + grow - 1, old - 1, -1))
        slot = self.free.pop()
        self.owner[slot] = s
        self.media[slot] = _UNSET
        self.epoch[slot] = -1
        s.slot = slot
        return slot

    def release(self, s: _Stream) -> None:
        slot = s.slot
        self.owner[slot] = self.flow[slot] = None
        self.media[slot] = _UNSET
        self.epoch[slot] = -1
        self.free.append(slot)
        s.slot = -1

    def resolved(self, slot: int, key_sd: int, key_ps: int, flow: _Flow, epoch: int) -> None:
        """Row ``slot`` holds the stream of this key, classified as ``flow`` in ``epoch``."""
        self.key_sd[slot], self.key_ps[slot], self.epoch[slot] = key_sd, key_ps, epoch
        if self.flow[slot] is not flow:
            self.flow[slot] = flow
            flow.rows.append(slot)
        self.heur[slot] = flow.kind == _HEURISTIC
        if self.media[slot] is not flow.endpoint:
            self.media[slot] = flow.endpoint
            self.clock[slot] = -1


    def forget(self, flow: _Flow) -> None:
        """``flow`` was dropped from the classification cache: its streams' rows are resolved
        afresh on their next batch (their endpoint may have changed)."""
        for slot in flow.rows:
            if self.flow[slot] is flow:
                self.epoch[slot] = -1
                self.flow[slot] = None
        flow.rows.clear()


class _StreamIndex:
    """Stream key (two 64-bit halves) → state-table row, for a whole batch at once: an
    open-addressing hash table in three arrays (``collectors._kernels.stream_lookup`` /
    ``stream_insert``). Entries are never removed; a row the index names is trusted only while
    the table row still holds that key in the current epoch. Rebuilt from the live rows when
    half full."""

    __slots__ = ("key_ps", "key_sd", "slot", "used")

    def __init__(self, size: int = 1024) -> None:
        self.key_sd = np.zeros(size, dtype=np.uint64)
        self.key_ps = np.zeros(size, dtype=np.uint64)
        self.slot = np.full(size, -1, dtype=np.int64)
        self.used = 0

    def lookup(self, table: _StateTable, epoch: int, key_sd: np.ndarray, key_ps: np.ndarray) -> np.ndarray:
        assert _kernels is not None
        out = np.empty(len(key_sd), dtype=np.int64)
        _kernels.stream_lookup(self.key_sd, self.key_ps, self.slot, table.key_sd, table.key_ps, table.epoch, epoch,
                               key_sd, key_ps, out)
        return out

    def insert(self, table: _StateTable, epoch: int, key_sd: int, key_ps: int, slot: int) -> None:
        assert _kernels is not None
        if 2 * (self.used + 1) > len(self.slot):
            live = np.flatnonzero(table.epoch == epoch)
            fresh = _StreamIndex(max(1024, 1 << (4 * (len(live) + 1)).bit_length()))
            for row in live.tolist():
                fresh.used += _kernels.stream_insert(fresh.key_sd, fresh.key_ps, fresh.slot, int(table.key_sd[row]),
                                                     int(table.key_ps[row]), row)
            self.key_sd, self.key_ps, self.slot, self.used = fresh.key_sd, fresh.key_ps, fresh.slot, fresh.used
        self.used += _kernels.stream_insert(self.key_sd, self.key_ps, self.slot, key_sd, key_ps, slot)


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
        self._table = _StateTable()
        # bumped whenever a flow's classification is dropped: the batch path trusts its stream
        # index (``_StreamIndex``) only for rows resolved in the current epoch
        self._epoch = 0
        self._index = _StreamIndex()
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
                dropped = self._flows.pop(key, None)  # re-classified lazily on its next packet
                if dropped is not None:
                    self._table.forget(dropped)

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
        elif stream is not None and stream.slot >= 0:
            self._pull(stream)
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
        """Offer a chunk of IPv4/UDP datagrams (frame order) at once; the same results as one
        ``on_udp_fields`` call per row, whatever the traffic looks like.

        The RTP-like rows go through the compiled kernel (``collectors._kernels.rtp_rows``) in
        one call, in frame order: the per-packet statements, row by row, on the streams' state
        tables, each row's stream found by the stream index. What the kernel does not do stays
        per packet or per stream: a flow's classification and a new heuristic stream's
        confirmation (its first packets), malformed rows (error items), RTCP, naming the codec
        once a stream's main payload type is known, and the MOS of closed intervals. Without the
        compiled kernel (a source tree that was not installed) every row takes the per-packet
        path."""
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
        b1 = hdr[:, 1].astype(np.int64)
        src = np.asarray(batch.src, dtype=np.int64)
        dst = np.asarray(batch.dst, dtype=np.int64)
        sport = np.asarray(batch.sport, dtype=np.int64)
        dport = np.asarray(batch.dport, dtype=np.int64)
        frames = np.asarray(batch.frame, dtype=np.int64)
        ts = np.asarray(batch.ts, dtype=np.float64)
        buf = batch.buf
        fields = self.on_udp_fields
        name = self._name

        def slow(r: int) -> None:
            o = int(off[r])
            fields(int(frames[r]), float(ts[r]), name(int(src[r])), int(sport[r]),
                   name(int(dst[r])), int(dport[r]), buf[o:o + int(plen[r])])

        # RTP-like rows first; RTCP-range (RFC 5761: second octet 192..223) and short rows after,
        # so RTCP jitter is converted with the clock of a stream first seen in this same batch
        rtp_like = ok & ((b1 < 192) | (b1 > 223))
        if _kernels is None:
            for r in np.flatnonzero(rtp_like).tolist():
                slow(r)
        else:
            late = self._kernel_batch(a, hdr, b1, off, plen, src, dst, sport, dport, frames, ts,
                                      np.flatnonzero(rtp_like), slow)
            for r in late:
                slow(r)
        for r in np.flatnonzero(~rtp_like).tolist():
            slow(r)
        if len(self._names) > 65536:
            self._names.clear()  # bounded cache of formatted IPv4 addresses

    def _kernel_batch(
        self, a: np.ndarray, hdr: np.ndarray, b1: np.ndarray, off: np.ndarray, plen: np.ndarray,
        src: np.ndarray, dst: np.ndarray, sport: np.ndarray, dport: np.ndarray, frames: np.ndarray,
        ts: np.ndarray, rows: np.ndarray, slow: Callable[[int], None],
    ) -> list[int]:
        """The RTP-like ``rows`` of a batch through the kernel, in frame order; returns the rows
        of RTCP endpoints (for the per-packet path once the RTP is done).

        Each row's stream is found in the stream index (``_StreamIndex``); only rows of streams
        the index does not vouch for (new, re-classified) are resolved in Python, once per
        stream and batch (``_resolve``)."""
        assert _kernels is not None
        if not rows.size:
            return []
        # the header checks of ``on_udp_fields`` (version, CSRC list, extension, padding): a row
        # that fails them leaves the streams alone (the per-packet path reports it, if at all)
        b0 = hdr[:, 0].astype(np.int64)
        hlen = 12 + 4 * (b0 & 0x0F)
        good = ((b0 >> 6) == 2) & (hlen <= plen)
        ext = np.flatnonzero(good & ((b0 & 0x10) != 0))
        if ext.size:
            fits = hlen[ext] + 4 <= plen[ext]
            at = off[ext] + np.where(fits, hlen[ext], 0)
            hlen[ext] += 4 + 4 * ((a[at + 2].astype(np.int64) << 8) | a[at + 3])
            good[ext] = fits & (hlen[ext] <= plen[ext])
        pad = np.flatnonzero(good & ((b0 & 0x20) != 0))
        if pad.size:
            count = a[off[pad] + plen[pad] - 1].astype(np.int64)
            good[pad] = (count > 0) & (count <= plen[pad] - hlen[pad])
        ssrc = hdr[:, 8:12].copy().view(">u4").reshape(-1).astype(np.uint64)
        key_sd = ((src << 32) | dst)[rows].astype(np.uint64)
        key_ps = ((((sport << 16) | dport).astype(np.uint64) << np.uint64(32)) | ssrc)[rows]
        table = self._table
        slot = self._index.lookup(table, self._epoch, key_sd, key_ps) if len(table.owner) else \
            np.full(len(rows), -1, dtype=np.int64)
        pt = b1[rows] & 0x7F
        g = good[rows]
        known = np.flatnonzero(slot >= 0)
        if known.size:
            ks = slot[known]
            # rows of known streams the per-packet path would not count: malformed headers (an
            # error item on an announced endpoint) and, on heuristic flows, RTCP's types 72..76
            heur = table.heur[ks]
            drop = ~g[known] | (heur & (pt[known] >= 72) & (pt[known] <= 76))
            if drop.any():
                for r in rows[known[drop & ~heur & ~g[known]]].tolist():
                    slow(r)
                slot[known[drop]] = -2
        late: list[int] = []
        if (slot == -1).any():
            late = self._resolve(np.flatnonzero(slot == -1), rows, key_sd, key_ps, g, pt, slot, slow)
        self._kernel_run(slot, rows, pt, hdr, frames, ts)
        return late

    def _resolve(self, unknown: np.ndarray, rows: np.ndarray, key_sd: np.ndarray, key_ps: np.ndarray,
                 good: np.ndarray, pt: np.ndarray, slot: np.ndarray, slow: Callable[[int], None]) -> list[int]:
        """Resolve the streams of the ``unknown`` positions (of ``rows``) one by one, in the order
        of their first row: classify the flow, confirm a heuristic stream packet by packet, start
        a stream, report malformed rows; then set ``slot`` for the rows the kernel takes (-2 for
        the others) and enter the stream in the index. Returns the rows of RTCP endpoints, stream
        by stream in key order (as the per-stream grouping always handed them on)."""
        table = self._table
        name = self._name
        sd, ps = key_sd[unknown], key_ps[unknown]
        # each stream's positions together, in frame order: sorted by a hash of the key whose low
        # bits are the position, so every sort key is unique and the fast sort is a stable one
        m = len(unknown)
        low = np.uint64(max(m.bit_length(), 1))
        mix = (sd * np.uint64(0x9E3779B97F4A7C15)) ^ (ps * np.uint64(0xC2B2AE3D27D4EB4F))
        sub = np.argsort((mix >> low << low) | np.arange(m, dtype=np.uint64))
        sd, ps = sd[sub], ps[sub]
        change = np.ones(m, dtype=bool)
        change[1:] = (sd[1:] != sd[:-1]) | (ps[1:] != ps[:-1])
        begin = np.flatnonzero(change)
        ends = np.append(begin[1:], m)
        first_pos = unknown[sub[begin]]
        rtcp: list[tuple[int, int, list[int]]] = []
        for k in np.argsort(first_pos).tolist():  # streams in the order of their first row
            at = unknown[sub[begin[k]:ends[k]]]  # this stream's positions, in frame order
            k_sd, k_ps = int(sd[begin[k]]), int(ps[begin[k]])
            key = (name(k_sd >> 32), k_ps >> 48, name(k_sd & 0xFFFFFFFF), (k_ps >> 32) & 0xFFFF)
            fl = self._flows.get(key) or self._classify(key)
            kind = fl.kind
            slot[at] = -2
            if kind == _OTHER:
                continue  # never RTP: the per-packet path would drop every row
            if kind == _SDP_RTCP:
                rtcp.append((k_sd, k_ps, rows[at].tolist()))
                continue
            skey = (*key, k_ps & 0xFFFFFFFF)
            s = self._streams.get(skey)
            if s is None and skey in self._idle:
                s = self._streams[skey] = _unpack(skey, self._idle.pop(skey))
            i = 0
            ok = good[at]
            if s is None:
                if kind == _HEURISTIC:
                    # a guess is confirmed (or not) packet by packet
                    while i < len(at) and s is None:
                        slow(int(rows[at[i]]))
                        i += 1
                        s = self._streams.get(skey)
                    if s is None:
                        continue
                elif ok.any():
                    s = self._streams[skey] = _Stream(*skey, fl.endpoint, "sdp")
                    table.take(s)
                    table.ints[s.slot] = 0
                    table.ints[s.slot, _I_MAIN_PT] = -1
                    table.floats[s.slot] = 0.0
            rest, ok = at[i:], ok[i:]
            if kind != _HEURISTIC and not ok.all():
                for r in rows[rest[~ok]].tolist():
                    slow(r)  # malformed on an announced endpoint: an error item, nothing else
            if s is None or not rest.size:
                continue
            if s.slot < 0:
                self._push(s)
            table.resolved(s.slot, k_sd, k_ps, fl, self._epoch)
            self._index.insert(table, self._epoch, k_sd, k_ps, s.slot)
            if kind == _HEURISTIC:
                # heuristic flows ignore RTCP's payload types 72..76 (the per-packet path drops them)
                ok &= (pt[rest] < 72) | (pt[rest] > 76)
            slot[rest[ok]] = s.slot
        rtcp.sort()
        return [r for _sd, _ps, rs in rtcp for r in rs]

    def _kernel_run(self, slot: np.ndarray, rows: np.ndarray, pt: np.ndarray, hdr: np.ndarray, frames: np.ndarray,
                    ts: np.ndarray) -> None:
        """Run the kernel over the positions with a table row (``slot`` ≥ 0), in frame order,
        then what only Python does: codec names, the SSRC clock table for RTCP, and the MOS of
        closed intervals."""
        assert _kernels is not None
        table = self._table
        fed = np.flatnonzero(slot >= 0)
        if not fed.size:
            return
        # clock and telephone-event flag of each payload type on its stream's endpoint, looked
        # up once per stream and type
        code = slot[fed] * 128 + pt[fed]
        clocks, events = table.clock.reshape(-1), table.event.reshape(-1)
        missing = np.flatnonzero(clocks[code] < 0)
        if missing.size:
            for c in np.unique(code[missing]).tolist():
                media = table.media[c >> 7]
                assert media is None or isinstance(media, _Endpoint)
                clk, is_event, _codec = self._info(media, c & 127)
                clocks[c], events[c] = clk, is_event
        touched = np.zeros(len(table.owner), dtype=bool)
        touched[slot[fed]] = True
        streams = np.flatnonzero(touched)
        main_before = table.ints[:, _I_MAIN_PT].copy()
        new = streams[table.ints[streams, _I_TOTAL_NR] == 0]
        out = np.empty((len(rows), _kernels.CLOSE_COLS))
        closes = _kernels.rtp_rows(slot, np.ascontiguousarray(hdr[rows]), frames[rows], ts[rows], table.clock,
                                   table.event, table.ints, table.floats, self.interval_s, out)
        owner, media_of = table.owner, table.media
        for row, _at, start, packets, exp, jsum, jn, jmax, main in out[:closes].tolist():
            k = int(row)
            s = owner[k]
            assert s is not None
            media = media_of[k]
            assert media is None or isinstance(media, _Endpoint)
            if main >= 0 and main_before[k] < 0:
                codec = self._info(media, int(main))[2]  # main type set in this batch
            elif main < 0 and not s.codec:
                codec = self._info(media, int(table.ints[k, _I_FIRST_PT]))[2]
            else:
                codec = s.codec
            self._store_interval(s, codec, start, int(packets), int(exp), jsum, int(jn), jmax)
        for k in streams[(table.ints[streams, _I_MAIN_PT] >= 0) & (main_before[streams] < 0)].tolist():
            s, media = owner[k], media_of[k]
            assert s is not None and (media is None or isinstance(media, _Endpoint))
            clk, _event, s.codec = self._info(media, int(table.ints[k, _I_MAIN_PT]))
            if clk:
                self._ssrc_clock[s.ssrc] = clk
        for k in new.tolist():
            s, media = owner[k], media_of[k]
            assert s is not None and (media is None or isinstance(media, _Endpoint))
            if not s.codec:
                s.codec = self._info(media, int(table.ints[k, _I_FIRST_PT]))[2]

    @staticmethod
    def _info(endpoint: _Endpoint | None, pt: int) -> tuple[int, bool, str]:
        return endpoint.info(pt) if endpoint is not None else _heuristic_info(pt)

    def _push(self, s: _Stream) -> None:
        """Move a stream's numbers from its attributes into a row of the kernel's tables."""
        slot = self._table.take(s)
        ints = [getattr(s, name) for name in _INT_SLOTS]
        ints[_I_MAIN_PT] = -1 if s.main_pt is None else s.main_pt
        mask = s.dup_mask
        lo, hi = mask & _M64, mask >> 64
        ints += [lo - (1 << 64) if lo >> 63 else lo, hi - (1 << 64) if hi >> 63 else hi]
        self._table.ints[slot] = [int(v) for v in ints]
        self._table.floats[slot] = [getattr(s, name) for name in _FLOAT_SLOTS]

    def _pull(self, s: _Stream) -> None:
        """Move a stream's numbers from the kernel's tables back into its attributes."""
        table = self._table
        ints = table.ints[s.slot].tolist()
        for name, v in zip(_INT_SLOTS, ints, strict=False):
            setattr(s, name, v)
        s.main_pt = None if s.main_pt == -1 else s.main_pt
        s.under = bool(s.under)
        s.dup_mask = (ints[-2] & _M64) | ((ints[-1] & _M64) << 64)
        for name, v in zip(_FLOAT_SLOTS, table.floats[s.slot].tolist(), strict=True):
            setattr(s, name, v)
        table.release(s)

    def _evict_idle(self, now: float) -> None:
        """Pack streams silent for ``idle_s`` of capture time (checked every idle_s/2)."""
        self._since_evict = 0
        if now - self._evicted_at < self.idle_s / 2:
            return
        self._evicted_at = now
        horizon = now - self.idle_s
        last_ts = self._table.floats[:, _F_LAST_TS]
        for key, s in list(self._streams.items()):
            if (s.last_ts if s.slot < 0 else last_ts[s.slot]) < horizon:
                if s.slot >= 0:
                    self._pull(s)
                self._idle[key] = _pack(s)
                del self._streams[key]
                fkey = key[:4]
                dropped = self._flows.pop(fkey, None)
                if dropped is not None:  # re-classified if it comes back
                    self._table.forget(dropped)
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
            self._epoch += 1
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
        self._store_interval(s, s.codec, s.cur_start, s.cur_packets, s.cur_exp, s.cur_jit_sum, s.cur_jit_n,
                             s.cur_jit_max)
        s.cur_packets = s.cur_exp = s.cur_jit_n = 0
        s.cur_jit_sum = s.cur_jit_max = 0.0

    def _store_interval(self, s: _Stream, codec: str, start: float, packets: int, exp: int, jit_sum: float,
                        jit_n: int, jit_max: float) -> None:
        """Append one closed 10-s interval (with its MOS for ``codec``) to the stream's blocks."""
        lost = exp - packets
        mean_j = jit_sum / jit_n if jit_n else 0.0
        loss_pct = max(lost, 0) * 100.0 / exp if exp > 0 else 0.0
        mos = self.mos_model.mos(codec, loss_pct, mean_j) if exp > 0 else None
        record = _INTERVAL.pack(start, packets, exp, lost, mean_j, jit_max, math.nan if mos is None else mos)
        blocks = s.intervals
        if blocks and len(blocks[-1]) < _IV_BLOCK:
            blocks[-1] += record
        else:
            blocks.append(record)

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
            self._epoch += 1
            self._flows.clear()
            self._flows_by_endpoint.clear()
        for key in list(streams):
            s = streams.pop(key) if release else streams[key]
            if s.slot >= 0:
                self._pull(s)
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
