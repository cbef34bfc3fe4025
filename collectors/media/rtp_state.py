"""The running state of one RTP stream, packed and unpacked for idle streams, and the numeric
state tables the compiled batch kernel (``collectors/_kernels.c``) works on.

``collectors.media.rtp`` owns the statistics (the statements that move this state); this module
owns only where the state lives: a slotted object per live stream, one bytes object per idle one,
one row per stream in the kernel's tables.

Memory per stream is constant (counters, running means, a 128-bit duplicate window, the current
10-s interval) plus 56 bytes per closed 10-s interval (in blocks of 8 that stay in Python's
small-object allocator) — nothing per packet. A stream silent for ``idle_s`` (120 s of capture
time) is packed into one bytes object (~0.4 KB) and restored exactly if it sends again.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from collectors.kernels import kernels as _kernels  # None: the Python walks below run
from collectors.media.rtp_payload import HEURISTIC, Endpoint, Flow
from core.analysis import StreamInterval


class Stream:
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
        endpoint: Endpoint | None, detected_by: str,
    ) -> None:
        self.src, self.sport, self.dst, self.dport, self.ssrc = src, sport, dst, dport, ssrc
        self.endpoint = endpoint
        self.call_id = endpoint.call_id if endpoint else None
        self.detected_by = detected_by
        self.total_nr = 0
        # closed intervals, packed (INTERVAL records) in blocks of up to IV_BLOCK: they are the
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
# third of a live ``Stream``. Restored exactly when the stream sends again.
INT_SLOTS = (
    "total_nr", "events", "duplicates", "clock_rate", "first_frame", "last_frame", "start_seq",
    "stop_seq", "seq_num", "cycles", "sequence", "first_timestamp", "first_pt", "pt", "hi_seq",
    "bad_seq", "cur_packets", "cur_exp", "cur_jit_n", "main_pt", "under",
)
FLOAT_SLOTS = (
    "first_ts", "last_ts", "time", "last_nominal", "delta", "max_delta", "min_delta", "mean_delta",
    "jitter", "min_jitter", "max_jitter", "mean_jitter", "cur_start", "cur_jit_sum", "cur_jit_max",
)
_PACK = struct.Struct(f"<{len(INT_SLOTS)}q{len(FLOAT_SLOTS)}d2Q")
Packed = tuple[bytes, "Endpoint | None", str, str, list[bytes]]
# one closed interval: start, packets, expected, lost, mean jitter, max jitter, MOS (NaN = none)
INTERVAL = struct.Struct("<dqqqddd")
IV_BLOCK = 8 * INTERVAL.size  # bytes per block of closed intervals: 448 (+ 33 header) ≤ 512


def pack_stream(s: Stream) -> Packed:
    ints = [getattr(s, name) for name in INT_SLOTS]
    ints[INT_SLOTS.index("main_pt")] = -1 if s.main_pt is None else s.main_pt
    floats = [getattr(s, name) for name in FLOAT_SLOTS]
    mask = s.dup_mask
    data = _PACK.pack(*(int(v) for v in ints), *floats, mask & 0xFFFFFFFFFFFFFFFF, mask >> 64)
    return data, s.endpoint, s.detected_by, s.codec, s.intervals


def unpack_stream(key: tuple[str, int, str, int, int], packed: Packed) -> Stream:
    data, endpoint, detected_by, codec, intervals = packed
    s = Stream(*key, endpoint, detected_by)
    values = _PACK.unpack(data)
    n = len(INT_SLOTS)
    for name, v in zip(INT_SLOTS, values[:n], strict=True):
        setattr(s, name, v)
    for name, v in zip(FLOAT_SLOTS, values[n:n + len(FLOAT_SLOTS)], strict=True):
        setattr(s, name, v)
    s.main_pt = None if s.main_pt == -1 else s.main_pt
    s.under = bool(s.under)
    s.dup_mask = values[-2] | (values[-1] << 64)
    s.codec = codec
    s.intervals = intervals
    return s


def closed_intervals(blocks: list[bytes]) -> tuple[StreamInterval, ...]:
    return tuple(
        StreamInterval(start, packets, expected, lost, mean_j, max_j, None if math.isnan(mos) else mos)
        for block in blocks
        for start, packets, expected, lost, mean_j, max_j, mos in INTERVAL.iter_unpack(block)
    )


# Column indexes of the kernel's state tables (``StateTable``): ``INT_SLOTS`` then the duplicate
# window's two 64-bit halves; ``FLOAT_SLOTS``.
STATE_INTS = (*INT_SLOTS, "dup_lo", "dup_hi")
I_TOTAL_NR, I_MAIN_PT, I_FIRST_PT = (STATE_INTS.index(k) for k in ("total_nr", "main_pt", "first_pt"))
F_LAST_TS = FLOAT_SLOTS.index("last_ts")
M64 = (1 << 64) - 1
UNSET = object()  # a state-table row not classified yet
if _kernels is not None and (_kernels.INT_FIELDS != STATE_INTS or _kernels.FLOAT_FIELDS != FLOAT_SLOTS):
    raise RuntimeError("collectors._kernels was built from another version of the code: reinstall upscope")


class StateTable:
    """The numeric state of the streams the batch kernel works on: one row per stream in an
    int64 and a float64 table (``STATE_INTS`` / ``FLOAT_SLOTS`` columns), rows reused.

    A stream's numbers live either in its ``Stream`` attributes (the per-packet path reads and
    writes those) or in a row here (``Stream.slot`` ≥ 0); ``RtpAnalyzer._push`` / ``_pull``
    move them, which happens only when a stream switches paths.

    Per row also what the batch path needs to find and feed the stream without Python work per
    stream: its key as integers (addresses; ports and SSRC) and the classification epoch in
    which it was resolved (-1: none), whether its flow is heuristic, the endpoint it was
    classified with (``media``; None: heuristic, ``UNSET``: none yet) and the clock /
    telephone-event flag of each payload type on that endpoint (-1: not looked up yet)."""

    __slots__ = ("clock", "epoch", "event", "floats", "flow", "free", "heur", "ints", "key_ps", "key_sd", "media",
                 "owner")

    def __init__(self) -> None:
        self.ints = np.zeros((0, len(STATE_INTS)), dtype=np.int64)
        self.floats = np.zeros((0, len(FLOAT_SLOTS)), dtype=np.float64)
        self.key_sd = np.zeros(0, dtype=np.uint64)
        self.key_ps = np.zeros(0, dtype=np.uint64)
        self.epoch = np.zeros(0, dtype=np.int64)
        self.heur = np.zeros(0, dtype=bool)
        self.clock = np.zeros((0, 128), dtype=np.int32)
        self.event = np.zeros((0, 128), dtype=np.int8)
        self.free: list[int] = []
        self.owner: list[Stream | None] = []
        self.media: list[object] = []
        self.flow: list[Flow | None] = []

    def take(self, s: Stream) -> int:
        if not self.free:
            old = len(self.owner)
            grow = max(64, old)

            def more(a: np.ndarray, fill: float) -> np.ndarray:
                return np.concatenate([a, np.full((grow, *a.shape[1:]), fill, dtype=a.dtype)])

            self.ints, self.floats = more(self.ints, 0), more(self.floats, 0.0)
            self.key_sd, self.key_ps, self.epoch = more(self.key_sd, 0), more(self.key_ps, 0), more(self.epoch, -1)
            self.heur, self.clock, self.event = more(self.heur, False), more(self.clock, -1), more(self.event, 0)
            self.owner.extend([None] * grow)
            self.media.extend([UNSET] * grow)
            self.flow.extend([None] * grow)
            self.free = list(range(old + grow - 1, old - 1, -1))
        slot = self.free.pop()
        self.owner[slot] = s
        self.media[slot] = UNSET
        self.epoch[slot] = -1
        s.slot = slot
        return slot

    def release(self, s: Stream) -> None:
        slot = s.slot
        self.owner[slot] = self.flow[slot] = None
        self.media[slot] = UNSET
        self.epoch[slot] = -1
        self.free.append(slot)
        s.slot = -1

    def resolved(self, slot: int, key_sd: int, key_ps: int, flow: Flow, epoch: int) -> None:
        """Row ``slot`` holds the stream of this key, classified as ``flow`` in ``epoch``."""
        self.key_sd[slot], self.key_ps[slot], self.epoch[slot] = key_sd, key_ps, epoch
        if self.flow[slot] is not flow:
            self.flow[slot] = flow
            flow.rows.append(slot)
        self.heur[slot] = flow.kind == HEURISTIC
        if self.media[slot] is not flow.endpoint:
            self.media[slot] = flow.endpoint
            self.clock[slot] = -1


    def forget(self, flow: Flow) -> None:
        """``flow`` was dropped from the classification cache: its streams' rows are resolved
        afresh on their next batch (their endpoint may have changed)."""
        for slot in flow.rows:
            if self.flow[slot] is flow:
                self.epoch[slot] = -1
                self.flow[slot] = None
        flow.rows.clear()


class StreamIndex:
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

    def lookup(self, table: StateTable, epoch: int, key_sd: np.ndarray, key_ps: np.ndarray) -> np.ndarray:
        assert _kernels is not None
        out = np.empty(len(key_sd), dtype=np.int64)
        _kernels.stream_lookup(self.key_sd, self.key_ps, self.slot, table.key_sd, table.key_ps, table.epoch, epoch,
                               key_sd, key_ps, out)
        return out

    def insert(self, table: StateTable, epoch: int, key_sd: int, key_ps: int, slot: int) -> None:
        assert _kernels is not None
        if 2 * (self.used + 1) > len(self.slot):
            live = np.flatnonzero(table.epoch == epoch)
            fresh = StreamIndex(max(1024, 1 << (4 * (len(live) + 1)).bit_length()))
            for row in live.tolist():
                fresh.used += _kernels.stream_insert(fresh.key_sd, fresh.key_ps, fresh.slot, int(table.key_sd[row]),
                                                     int(table.key_ps[row]), row)
            self.key_sd, self.key_ps, self.slot, self.used = fresh.key_sd, fresh.key_ps, fresh.slot, fresh.used
        self.used += _kernels.stream_insert(self.key_sd, self.key_ps, self.slot, key_sd, key_ps, slot)
