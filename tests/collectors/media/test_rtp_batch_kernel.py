"""The batch path (the compiled kernel, or Python when it is not built) equals the per-packet
path exactly — every field, every 10-s interval, every error — on random streams with every
impairment a trunk shows: jitter and reordering, loss and loss bursts, duplicates, sequence wraps
and restarts, SSRC changes, marker bits, telephone events, comfort noise, payload-type switches
between clock rates (8, 16, 48 kHz and none), out-of-time timestamps, CSRC/extension/padding
headers, malformed headers, long silences (closed intervals, idle packing), heuristic flows."""

from __future__ import annotations

import importlib
import random
import socket
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import collectors.media.rtp_batch as rtp_batch
from collectors.capture.packets import UdpBatch, UdpPacket
from collectors.media.rtp import RtpAnalyzer

T0 = 1_764_000_000.0
PBX, FAR, ODD = "192.168.1.10", "35.246.178.20", "10.20.30.40"
# flow name → (destination, port, SDP payload map or None = heuristic, payload types it sends)
FLOWS: dict[str, tuple[str, int, dict[int, tuple[str, int]] | None, tuple[int, ...]]] = {
    "pcma": (FAR, 20000, {8: ("PCMA", 8000), 13: ("CN", 8000), 101: ("telephone-event", 8000)}, (8,)),
    "mixed": (FAR, 20002, {0: ("PCMU", 8000), 9: ("G722", 8000), 18: ("G729", 8000), 96: ("AMR-WB", 0),
                            101: ("telephone-event", 8000)}, (0, 9, 18, 96)),
    "opus": (PBX, 20004, {111: ("opus", 48000), 101: ("telephone-event", 48000)}, (111,)),
    "heuristic": (ODD, 30000, None, (8, 0)),
    "heuristic-dynamic": (ODD, 31000, None, (96,)),
}
OPS = ("loss", "burst", "dup", "swap", "marker", "event", "cn", "ssrc", "jump", "restart", "ts-back", "ext",
       "pad", "csrc", "malformed", "switch", "silence", "late")

_stream = st.tuples(
    st.sampled_from(sorted(FLOWS)),
    st.integers(0, 2**32 - 1),  # SSRC
    st.one_of(st.integers(0, 65535), st.integers(65300, 65535)),  # first sequence number
    st.integers(0, 2**32 - 1),  # first timestamp
    st.sampled_from([10, 20, 30, 60]),  # ptime
    st.integers(1, 250),  # packets
    st.floats(0.0, 45.0),  # arrival jitter σ, ms
    st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 249)), max_size=25),
)


def _header(b0: int, b1: int, seq: int, ts: int, ssrc: int) -> bytes:
    return struct.pack("!BBHII", b0, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)


def _packets(spec: tuple, index: int, rng: random.Random) -> Iterator[tuple[float, str, int, str, int, bytes]]:
    """One stream's datagrams as (arrival s, src, sport, dst, dport, payload), unsorted."""
    flow, ssrc, seq0, ts0, ptime, count, sigma, ops = spec
    dst, dport, _pmap, pts = FLOWS[flow]
    src = PBX if dst != PBX else FAR
    sport = 40000 + 2 * index
    clock = 48000 if flow == "opus" else 8000
    step = clock * ptime // 1000
    at = {k: [op for op, i in ops if i == k] for k in range(count)}
    pt, seq, rts, shift, marker_next, event_ts = pts[0], seq0, ts0, 0.0, True, None
    out: list[tuple[float, bytes]] = []
    for k in range(count):
        here = at[k]
        seq += 1
        rts += step
        if "ssrc" in here:
            ssrc, seq, rts, marker_next = ssrc ^ 0x5A5A5A5A, rng.randrange(65536), rng.randrange(2**32), True
        if "jump" in here:
            seq += 5000
        if "restart" in here:
            seq -= 3000
        if "switch" in here:
            pt = pts[(pts.index(pt) + 1) % len(pts)]
        if "silence" in here:
            shift += rng.choice((5.0, 12.0, 200.0))
        if "loss" in here:
            continue
        if "burst" in here:
            seq += 5
            rts += 5 * step
            continue
        b0, p, payload = 0x80, pt, b"\xd5" * (20 if pt == 18 else 160)
        if "event" in here:
            p, payload = 101, struct.pack("!BBH", 5, 10, 160)
            event_ts = rts if event_ts is None else event_ts
        else:
            event_ts = None
        if "cn" in here:
            p, payload = 13, b"\x40"
        stamp = event_ts if event_ts is not None else rts
        if "ts-back" in here:
            stamp -= 2**31 + 7
        marker = marker_next or "marker" in here
        marker_next = False
        ext = b""
        if "csrc" in here:
            b0 |= 2
            ext += struct.pack("!II", 11, 12)
        if "ext" in here:
            b0 |= 0x10
            ext += struct.pack("!HHI", 0xBEDE, 1, 0)
        if "pad" in here:
            b0 |= 0x20
            payload += b"\x00\x00\x00\x04"
        if "malformed" in here:
            b0, ext = 0x9F, b""  # 15 CSRCs announced, none there
        data = _header(b0, (0x80 if marker else 0) | p, seq, stamp, ssrc) + ext + payload
        arrival = T0 + shift + k * ptime / 1000.0 + abs(rng.gauss(0.0, sigma)) / 1000.0
        out.append((arrival, data))
        if "dup" in here:
            out.append((arrival + 0.001, data))
        if "late" in here:
            out.append((arrival + 0.5, data))
    for k in range(len(out) - 1):
        if any(op == "swap" and i == k for op, i in ops):
            (a, x), (b, y) = out[k], out[k + 1]
            out[k], out[k + 1] = (b, x), (a, y)
    for arrival, data in out:
        yield arrival, src, sport, dst, dport, data


def _ip(addr: str) -> int:
    return int.from_bytes(socket.inet_aton(addr), "big")


def _analyser(idle_s: float) -> RtpAnalyzer:
    an = RtpAnalyzer(idle_s=idle_s)
    for dst, port, pmap, _pts in FLOWS.values():
        if pmap is not None:
            an.expect(dst, port, pmap, f"call-{port}")
    return an


def _batch(rows: list[tuple[int, float, str, int, str, int, bytes]]) -> UdpBatch:
    buf = b"".join(r[6] for r in rows)
    lens = np.array([len(r[6]) for r in rows], dtype=np.int64)
    offs = (np.cumsum(lens) - lens).astype(np.int64)
    return UdpBatch(buf, np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows]),
                    np.array([_ip(r[2]) for r in rows], dtype=np.uint32), np.array([r[3] for r in rows]),
                    np.array([_ip(r[4]) for r in rows], dtype=np.uint32), np.array([r[5] for r in rows]), offs, lens)


@pytest.fixture(scope="module", params=["kernel", "python"], autouse=True)
def batch_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both batch implementations: the compiled kernel and the Python fallback without it."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "python":
            mp.setattr(rtp_batch, "_kernels", None)
        yield str(request.param)


@settings(max_examples=150, deadline=None)
@given(st.lists(_stream, min_size=1, max_size=5), st.integers(0, 2**32 - 1),
       st.lists(st.integers(1, 400), min_size=1, max_size=8), st.sampled_from([120.0, 4.0]))
def test_batch_path_equals_per_packet_path_exactly(streams: list[tuple], seed: int, sizes: list[int],
                                                    idle_s: float) -> None:
    rng = random.Random(seed)
    packets = [p for i, spec in enumerate(streams) for p in _packets(spec, i, rng)]
    packets.sort(key=lambda p: p[0])
    rows = [(frame, *p) for frame, p in enumerate(packets, start=1)]
    one, many = _analyser(idle_s), _analyser(idle_s)
    for frame, t, src, sport, dst, dport, data in rows:
        one.on_udp(UdpPacket(frame, t, src, sport, dst, dport, data))
    i = k = 0
    while i < len(rows):
        size = sizes[k % len(sizes)]
        many.on_udp_batch(_batch(rows[i:i + size]))
        i, k = i + size, k + 1
    assert many.finish() == one.finish()
    assert sorted(many.errors, key=repr) == sorted(one.errors, key=repr)
    assert many.error_count == one.error_count


def test_the_kernel_takes_a_jittery_lossy_stream_without_the_per_packet_path(batch_path: str) -> None:
    """A realistic stream (jitter σ 15 ms so it reorders, 3 % loss, duplicates, a wrap) after its
    first packet: no per-packet call at all, and the numbers equal the per-packet path's."""
    if batch_path == "python":
        return  # the fallback is the per-packet path by definition
    rng = random.Random(7)
    spec = ("pcma", 0xABCD, 65000, 12345, 20, 3000, 15.0,
            [("loss", k) for k in range(3, 3000, 33)] + [("dup", k) for k in range(5, 3000, 400)])
    rows = [(f, *p) for f, p in enumerate(sorted(_packets(spec, 0, rng)), start=1)]
    one, many = _analyser(120.0), _analyser(120.0)
    for frame, t, src, sport, dst, dport, data in rows:
        one.on_udp(UdpPacket(frame, t, src, sport, dst, dport, data))
    many.on_udp_batch(_batch(rows[:1]))
    calls: list[object] = []
    many.on_udp_fields = lambda *args: calls.append(args) or True  # type: ignore[method-assign]
    many.on_udp_batch(_batch(rows[1:]))
    assert calls == []
    (a,), (b,) = one.finish(), many.finish()
    assert a == b
    assert a.sequence_errors > 100 and a.duplicates > 0 and a.lost > 50 and a.max_jitter_ms > 10


def test_the_compiled_kernels_are_built() -> None:
    """An installed upscope has its compiled kernels (the Makefile installs gcc and python3-dev);
    without them the numbers are the same but the analysis is several times slower."""
    kernels = importlib.import_module("collectors._kernels")
    assert kernels.INT_FIELDS[-2:] == ("dup_lo", "dup_hi") and kernels.CLOSE_COLS == 9


def test_an_rtpmap_rate_below_one_khz_is_no_clock() -> None:
    """``a=rtpmap:96 foo/500`` (hostile or broken SDP) made the jitter divide by 500 // 1000 = 0
    and the analysis stop with ZeroDivisionError; the rate is now ignored like a missing one."""
    one, many = RtpAnalyzer(), RtpAnalyzer()
    rows = [(i + 1, T0 + 0.02 * i, PBX, 4000, FAR, 20000, _header(0x80, 96, i, 160 * i, 1) + bytes(20))
            for i in range(50)]
    for an in (one, many):
        an.expect(FAR, 20000, {96: ("foo", 500)}, "call")
    for frame, t, src, sport, dst, dport, data in rows:
        one.on_udp(UdpPacket(frame, t, src, sport, dst, dport, data))
    many.on_udp_batch(_batch(rows))
    (a,) = one.finish()
    assert many.finish() == (a,)
    assert (a.packets, a.clock_rate, a.max_jitter_ms, a.codec) == (50, 0, 0.0, "foo")


def test_thousands_of_streams_and_re_announcements(batch_path: str) -> None:
    """1500 announced streams (the stream index grows and is rebuilt several times), half of them
    re-announced between batches with another payload map (their rows are resolved afresh, the
    others not): the same streams as packet by packet."""
    one, many = RtpAnalyzer(), RtpAnalyzer()
    ports = range(20000, 23000, 2)
    for an in (one, many):
        for port in ports:
            an.expect(FAR, port, {8: ("PCMA", 8000), 96: ("opus", 48000)}, f"call-{port}")
    rows = []
    for k in range(6):
        for i, port in enumerate(ports):
            pt = 96 if (k >= 3 and i % 2) else 8
            rows.append((len(rows) + 1, T0 + 0.02 * k + i * 1e-6, PBX, 40000 + i % 7, FAR, port,
                         _header(0x80, pt, 100 + k, 160 * k, i) + bytes(160)))
    half = len(rows) // 2
    for frame, t, src, sport, dst, dport, data in rows:
        if frame == half + 1:
            for an in (one, many):
                for port in ports[1::2]:  # a re-INVITE changes the payload map of every other call
                    an.expect(FAR, port, {96: ("opus", 48000)}, f"call-{port}")
        one.on_udp(UdpPacket(frame, t, src, sport, dst, dport, data))
    many.on_udp_batch(_batch(rows[:half]))
    for port in ports[1::2]:
        many.expect(FAR, port, {96: ("opus", 48000)}, f"call-{port}")
    for i in range(half, len(rows), 1000):
        many.on_udp_batch(_batch(rows[i:i + 1000]))
    a = one.finish()
    assert many.finish() == a
    assert len(a) == len(ports) and {s.clock_rate for s in a} == {8000, 48000}
