"""RtpAnalyzer: hand-checked Wireshark-style numbers, detection rules, RTCP, batch equivalence."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.packets import UdpBatch, UdpPacket
from collectors.media import rtp_batch
from collectors.media.rtp import RtpAnalyzer
from core.analysis import RtpStreamStats

T0 = 1_764_000_000.0
A, B = "192.168.1.10", "35.246.178.20"


def rtp(seq: int, ts: int, pt: int = 8, ssrc: int = 0x1234, marker: bool = False, b0: int = 0x80) -> bytes:
    return struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + b"\xd5" * 160


def feed(an: RtpAnalyzer, packets: Sequence[tuple[float, bytes]], src: str = A, sport: int = 40000,
         dst: str = B, dport: int = 20000, first_frame: int = 1) -> None:
    for i, (t_ms, data) in enumerate(packets):
        an.on_udp(UdpPacket(first_frame + i, T0 + t_ms / 1000.0, src, sport, dst, dport, data))


def announced() -> RtpAnalyzer:
    an = RtpAnalyzer()
    an.expect(B, 20000, {8: ("PCMA", 8000), 101: ("telephone-event", 8000)}, "call-1")
    return an


def only(an: RtpAnalyzer) -> RtpStreamStats:
    streams = an.finish()
    assert len(streams) == 1
    return streams[0]


def test_jitter_and_delta_hand_computed() -> None:
    """20-ms PCMA, the third packet 4 ms late (RFC 3550 A.8 in ms, Wireshark's running means)."""
    an = announced()
    feed(an, [(0, rtp(1, 0)), (20, rtp(2, 160)), (44, rtp(3, 320)), (60, rtp(4, 480)), (80, rtp(5, 640))])
    s = only(an)
    # D: 0, 4, 4, 0 → J: 0, 0.25, 0.484375, 0.4541015625
    assert s.max_jitter_ms == pytest.approx(0.484375)
    # mean over packets 2..5 as Wireshark runs it: 0, 0.125, 0.2447916…, 0.297119140625
    assert s.mean_jitter_ms == pytest.approx(0.297119140625)
    assert s.min_delta_ms == pytest.approx(16.0)
    assert s.max_delta_ms == pytest.approx(24.0)
    assert s.mean_delta_ms == pytest.approx(20.0)
    assert (s.packets, s.expected, s.lost, s.sequence_errors, s.duplicates) == (5, 5, 0, 0, 0)
    assert (s.detected_by, s.call_id, s.codec, s.payload_type, s.clock_rate) == ("sdp", "call-1", "PCMA", 8, 8000)
    assert (s.first_frame, s.last_frame) == (1, 5)
    assert s.mos == 4.41  # no loss, 100 ms assumed delay + 2·0.30 ms jitter buffer


def test_loss_across_16_bit_sequence_wrap() -> None:
    an = announced()
    seqs = [65533, 65534, 65535, 0, 2, 3]  # seq 1 lost across the wrap
    feed(an, [(20 * i, rtp(sq, 160 * i if sq != 2 else 160 * 5)) for i, sq in enumerate(seqs)])
    s = only(an)
    # expected = 3 + 65536 − 65533 + 1 = 7; lost = 7 − 6
    assert (s.expected, s.lost, s.packets) == (7, 1, 6)
    assert s.sequence_errors == 1  # the jump 0 → 2
    assert s.loss_pct == pytest.approx(100 / 7, abs=1e-3)


def test_reordering() -> None:
    an = announced()
    order = [1, 2, 4, 3, 5]
    feed(an, [(20 * i, rtp(sq, 160 * sq)) for i, sq in enumerate(order)])
    s = only(an)
    # 4 after 2 is a jump (error 1), 3 after 4 is late (error 2); nothing lost, no duplicate
    assert (s.expected, s.lost, s.sequence_errors, s.duplicates) == (5, 0, 2, 0)


def test_duplicates_give_negative_loss() -> None:
    an = announced()
    feed(an, [(0, rtp(1, 0)), (20, rtp(2, 160)), (40, rtp(3, 320)), (41, rtp(3, 320)), (60, rtp(4, 480))])
    s = only(an)
    assert (s.packets, s.expected, s.lost, s.duplicates, s.sequence_errors) == (5, 4, -1, 1, 1)
    assert s.mos == 4.41  # negative loss counts as none


def test_rtp_timestamp_wrap_keeps_jitter_zero() -> None:
    an = announced()
    base = 0xFFFFFFFF - 400  # wraps between the 3rd and 4th packet
    feed(an, [(20 * i, rtp(100 + i, base + 160 * i)) for i in range(8)])
    s = only(an)
    assert s.max_jitter_ms == pytest.approx(0.0, abs=1e-9)
    assert s.max_delta_ms == pytest.approx(20.0)
    assert s.sequence_errors == 0


def test_comfort_noise_and_marker_are_not_regular() -> None:
    an = announced()
    an.expect(B, 20000, {8: ("PCMA", 8000), 13: ("CN", 8000)}, "call-1")
    feed(an, [(0, rtp(1, 0)), (20, rtp(2, 160)), (40, rtp(3, 320)), (60, rtp(4, 480, pt=13)),
              (500, rtp(5, 4000)),  # follows CN: its 440-ms delta is not counted
              (900, rtp(6, 7200, marker=True)),  # talkspurt start: not counted either
              (920, rtp(7, 7360))])
    s = only(an)
    assert s.max_delta_ms == pytest.approx(20.0)
    assert s.codec == "PCMA" and s.packets == 7 and s.lost == 0


def test_telephone_event_counted_and_without_clock() -> None:
    an = announced()
    pkts = [(20 * i, rtp(i + 1, 160 * i)) for i in range(3)]
    pkts += [(60 + 20 * i, rtp(4 + i, 480, pt=101)) for i in range(3)]  # event: timestamp stands still
    pkts += [(120, rtp(7, 960))]
    feed(an, pkts)
    s = only(an)
    assert s.events == 3
    assert s.codec == "PCMA" and s.lost == 0
    # events are not jitter samples (no clock); the audio after them is compared with the last audio
    # nominal time (40 ms) but the last event's arrival (100 ms), as Wireshark does:
    # D = |120 − (100 + (120 − 40))| = 60 ms → J = 60/16
    assert s.max_jitter_ms == pytest.approx(3.75)


def test_intervals_loss_and_mos() -> None:
    an = announced()
    pkts = []
    for i in range(1250):  # 25 s of 20-ms packets, 5 lost in the second 10 s
        if 600 <= i < 605:
            continue
        pkts.append((20.0 * i, rtp(i, 160 * i)))
    feed(an, pkts)
    s = only(an)
    assert (s.expected, s.lost) == (1250, 5)
    assert [(iv.packets, iv.expected, iv.lost) for iv in s.intervals] == [(500, 500, 0), (495, 500, 5), (250, 250, 0)]
    assert s.intervals[1].start == pytest.approx(T0 + 10.0)
    assert [iv.mos for iv in s.intervals] == [4.41, 4.33, 4.41]  # 1 % loss → R 89.56 → 4.33
    assert sum(iv.packets for iv in s.intervals) == s.packets


def test_two_directions_and_ssrcs_are_separate_streams() -> None:
    an = announced()
    feed(an, [(20 * i, rtp(i, 160 * i, ssrc=1)) for i in range(5)])
    feed(an, [(20 * i, rtp(i, 160 * i, ssrc=2)) for i in range(5)], src=B, sport=20000, dst=A, dport=40000,
         first_frame=10)
    feed(an, [(200 + 20 * i, rtp(50 + i, 160 * i, ssrc=3)) for i in range(5)], first_frame=20)
    streams = an.finish()
    assert [(s.src, s.ssrc, s.detected_by) for s in streams] == [(A, 1, "sdp"), (B, 2, "sdp"), (A, 3, "sdp")]


def test_heuristic_needs_a_sequential_second_packet() -> None:
    an = RtpAnalyzer()
    feed(an, [(0, rtp(1, 0, pt=18))], sport=30000, dport=30002)  # alone: not reported
    feed(an, [(0, rtp(7, 0, pt=0)), (20, rtp(9000, 160, pt=0))], sport=30010, dport=30012)  # not sequential
    feed(an, [(0, rtp(1, 0, pt=0)), (20, rtp(2, 160, pt=0))], sport=30020, dport=30022)
    feed(an, [(0, rtp(1, 0, pt=0)), (20, rtp(2, 160, pt=0))], sport=137, dport=137)  # NetBIOS port
    feed(an, [(0, rtp(1, 0, pt=50)), (20, rtp(2, 160, pt=50))], sport=30030, dport=30032)  # unassigned PT
    feed(an, [(0, rtp(1, 0, pt=72)), (20, rtp(2, 160, pt=72))], sport=30040, dport=30042)  # RTCP range
    streams = an.finish()
    assert [(s.src_port, s.detected_by, s.packets) for s in streams] == [(30020, "heuristic", 2)]


def test_heuristic_dynamic_payload_has_no_jitter() -> None:
    """Like tshark without SDP: a dynamic type has no known clock, so no jitter."""
    an = RtpAnalyzer()
    feed(an, [(0, rtp(1, 0, pt=111)), (25, rtp(2, 960, pt=111)), (40, rtp(3, 1920, pt=111))],
         sport=30000, dport=30002)
    s = only(an)
    assert (s.max_jitter_ms, s.mean_jitter_ms, s.clock_rate) == (0.0, 0.0, 0)
    assert s.max_delta_ms == pytest.approx(25.0)


@pytest.mark.parametrize("flag", [False, None])
def test_non_rtp_sdp_transport_stops_rtp(flag: bool | None) -> None:
    an = announced()
    feed(an, [(0, rtp(1, 0)), (20, rtp(2, 160))])
    # re-INVITE to T.38 (m=image … udptl t38): said explicitly, or inferred from the empty map
    an.expect(B, 20000, {}, "call-1", rtp=flag)
    feed(an, [(40, rtp(3, 320)), (60, rtp(4, 480))], first_frame=3)
    assert only(an).packets == 2
    an.expect(B, 20000, {8: ("PCMA", 8000)}, "call-1")  # and back to audio
    feed(an, [(80, rtp(5, 640)), (100, rtp(6, 800))], first_frame=5)
    assert only(an).packets == 4


def test_malformed_rtp_on_announced_port_is_reported() -> None:
    an = announced()
    feed(an, [(0, rtp(1, 0)), (20, rtp(2, 160)), (40, rtp(3, 320, b0=0x8F)[:20])])
    assert only(an).packets == 2
    assert an.error_count == 1
    err = an.errors[0]
    assert (err.kind, err.layer, err.frame) == ("malformed", "rtp", 3)


def _rr(sender: int, source: int, fraction: int, cumulative: int, jitter: int, lsr: int, dlsr: int) -> bytes:
    block = struct.pack("!IIIIII", source, (fraction << 24) | (cumulative & 0xFFFFFF), 0, jitter, lsr, dlsr)
    return struct.pack("!BBHI", 0x81, 201, 7, sender) + block


def _sr(sender: int, ntp: int) -> bytes:
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, sender, ntp >> 32, ntp & 0xFFFFFFFF, 0, 10, 1600)


def test_rtcp_reports_loss_jitter_and_rtt() -> None:
    an = announced()
    feed(an, [(20 * i, rtp(i, 160 * i, ssrc=0xAAAA)) for i in range(3)])
    # A sends an SR on B's RTCP port at t = 100 ms; B's RR quoting it arrives at t = 180 ms after
    # holding it 50 ms (DLSR 3276.8/65536 s) → RTT 30 ms. Cumulative −3 (duplicates), jitter 80 units.
    ntp = (0x1_2345_6789 << 16) | 0
    an.on_udp(UdpPacket(10, T0 + 0.100, A, 40001, B, 20001, _sr(0xAAAA, ntp)))
    lsr = (ntp >> 16) & 0xFFFFFFFF
    an.on_udp(UdpPacket(11, T0 + 0.180, B, 20001, A, 40001, _rr(0xBBBB, 0xAAAA, 128, -3, 80, lsr, 3277)))
    cname = bytes([1, 5]) + b"bob@b" + b"\x00"
    sdes = struct.pack("!BBHI", 0x81, 202, 3, 0xBBBB) + cname
    bye = struct.pack("!BBHI", 0x81, 203, 1, 0xBBBB)
    an.on_udp(UdpPacket(12, T0 + 0.200, B, 20001, A, 40001, sdes + bye))
    reports = {(r.sender_ssrc, r.source_ssrc): r for r in an.finish_rtcp()}
    rr = reports[(0xBBBB, 0xAAAA)]
    assert rr.bye and rr.cname == "bob@b"
    assert not reports[(0xAAAA, None)].bye
    assert rr.cumulative_lost == -3
    assert rr.last_fraction_lost_pct == 50.0
    assert rr.last_jitter_ms == pytest.approx(10.0)  # 80 / 8 kHz
    assert rr.last_rtt_ms == pytest.approx(80.0 - 3277 * 1000 / 65536, abs=1e-3)  # capture ts: µs
    assert rr.call_id == "call-1" and rr.receiver_reports == 1
    assert reports[(0xAAAA, None)].sender_reports == 1


def test_malformed_rtcp_on_announced_port() -> None:
    an = announced()
    an.on_udp(UdpPacket(1, T0, A, 40001, B, 20001, struct.pack("!BBHI", 0x81, 201, 9, 1)))
    assert an.error_count == 1 and an.errors[0].layer == "rtcp"


# -- properties ---------------------------------------------------------------------------------

_events = st.lists(
    st.tuples(
        st.integers(1, 60),  # arrival gap in ms
        st.integers(-3, 4),  # sequence step (0 = duplicate, negative = late)
        st.sampled_from([8, 8, 8, 8, 13, 101]),  # PCMA mostly, some CN and telephone-event
        st.booleans(),  # marker
        st.integers(0, 2),  # which SSRC
    ),
    min_size=1,
    max_size=120,
)


def _build(events: list[tuple[int, int, int, bool, int]]) -> list[tuple[int, float, bytes]]:
    t, seqs, out = 0.0, [100, 65530, 7], []
    for frame, (gap, step, pt, marker, which) in enumerate(events, start=1):
        t += gap
        seqs[which] = (seqs[which] + step) & 0xFFFF
        out.append((frame, T0 + t / 1000, rtp(seqs[which], seqs[which] * 160, pt=pt, ssrc=which, marker=marker)))
    return out


@settings(max_examples=150, deadline=None)
@given(_events)
def test_lost_equals_expected_minus_packets(events: list[tuple[int, int, int, bool, int]]) -> None:
    an = announced()
    for frame, ts, data in _build(events):
        an.on_udp(UdpPacket(frame, ts, A, 40000, B, 20000, data))
    for s in an.finish():
        assert s.lost == s.expected - s.packets
        assert sum(iv.packets for iv in s.intervals) == s.packets
        assert s.max_jitter_ms >= 0 and s.mean_jitter_ms >= 0
        assert s.mos is None or 1.0 <= s.mos <= 4.5


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 65535), st.integers(2, 400), st.lists(st.integers(0, 5), min_size=400, max_size=400))
def test_in_order_streams_have_no_sequence_errors(start: int, n: int, jitter: list[int]) -> None:
    an = announced()
    for i in range(n):
        data = rtp(start + i, 160 * i)
        an.on_udp(UdpPacket(i + 1, T0 + (20 * i + jitter[i]) / 1000, A, 40000, B, 20000, data))
    s = only(an)
    assert (s.sequence_errors, s.duplicates, s.lost, s.expected) == (0, 0, 0, n)


def _batch(rows: list[tuple[int, float, bytes]], src: int, dst: int) -> UdpBatch:
    buf = b"".join(d for _f, _t, d in rows)
    lens = np.array([len(d) for _f, _t, d in rows], dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    n = len(rows)
    return UdpBatch(buf, np.array([f for f, _t, _d in rows], dtype=np.int64),
                    np.array([t for _f, t, _d in rows]), np.full(n, src, dtype=np.uint32),
                    np.full(n, 40000, dtype=np.int64), np.full(n, dst, dtype=np.uint32),
                    np.full(n, 20000, dtype=np.int64), offs, lens)


@settings(max_examples=120, deadline=None)
@given(_events, st.integers(1, 50))
def test_batch_path_equals_per_packet_path(events: list[tuple[int, int, int, bool, int]], size: int) -> None:
    rows = _build(events)
    # mostly ordinary 20-ms PCMA runs so the closed form is exercised, plus the random events
    rows = [(f, T0 + 0.02 * f, rtp(f, 160 * f, ssrc=9)) for f in range(1, 200)] + [
        (f + 200, t + 10, d) for f, t, d in rows
    ]
    one, many = announced(), RtpAnalyzer()
    many.expect(B, 20000, {8: ("PCMA", 8000), 101: ("telephone-event", 8000)}, "call-1")
    for f, t, d in rows:
        one.on_udp(UdpPacket(f, t, "10.0.0.1", 40000, B, 20000, d))
    for i in range(0, len(rows), size):
        many.on_udp_batch(_batch(rows[i:i + size], 0x0A000001, 0x23F6B214))
    assert B == "35.246.178.20"  # 0x23F6B214
    a, b = one.finish(), many.finish()
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for field in RtpStreamStats.__dataclass_fields__:
            vx, vy = getattr(x, field), getattr(y, field)
            if field == "intervals":
                assert [(i.packets, i.expected, i.lost) for i in vx] == [(i.packets, i.expected, i.lost) for i in vy]
                for ix, iy in zip(vx, vy, strict=True):
                    assert ix.mean_jitter_ms == pytest.approx(iy.mean_jitter_ms, abs=1e-6)
                    assert ix.max_jitter_ms == pytest.approx(iy.max_jitter_ms, abs=1e-6)
            elif isinstance(vx, float):
                assert vx == pytest.approx(vy, abs=1e-6), field
            else:
                assert vx == vy, field


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=64), st.booleans(), st.integers(0, 3)), max_size=60))
def test_hostile_datagrams_never_crash(datagrams: list[tuple[bytes, bool, int]]) -> None:
    """Any payload on an announced port, its RTCP port or an unknown flow, per packet and batched."""
    one, many = announced(), announced()
    rows = []
    for frame, (data, rtp_like, port) in enumerate(datagrams, start=1):
        payload = bytes([0x80 | (data[0] & 0x3F)]) + data[1:] if rtp_like and data else data
        dport = (20000, 20001, 30002, 53)[port]
        one.on_udp(UdpPacket(frame, T0 + frame / 50, "10.0.0.1", 40000 + port, B, dport, payload))
        rows.append((frame, T0 + frame / 50, payload))
    for s in one.finish():
        assert s.lost == s.expected - s.packets
    one.finish_rtcp()
    if rows:
        many.on_udp_batch(_batch(rows, 0x0A000001, 0x23F6B214))
        many.finish()


@settings(max_examples=80, deadline=None)
@given(_events, st.lists(st.integers(0, 3), min_size=8, max_size=8))
def test_idle_streams_packed_and_restored_exactly(events: list[tuple[int, int, int, bool, int]],
                                                   pauses: list[int]) -> None:
    """Packing silent streams (to bound memory) changes no number, per packet or batched."""
    rows = _build(events)
    # long silences (seconds) between groups of packets so the small idle_s packs streams
    stretched = [(f, t + pauses[f % 8] * 2.0 * (f // 8), d) for f, t, d in rows]
    ref, packed, batched = announced(), RtpAnalyzer(idle_s=0.5), RtpAnalyzer(idle_s=0.5)
    for an in (packed, batched):
        an.expect(B, 20000, {8: ("PCMA", 8000), 101: ("telephone-event", 8000)}, "call-1")
    for f, t, d in stretched:
        ref.on_udp(UdpPacket(f, t, "10.0.0.1", 40000, B, 20000, d))
        packed.on_udp(UdpPacket(f, t, "10.0.0.1", 40000, B, 20000, d))
        packed._evict_idle(t)
    for i in range(0, len(stretched), 7):
        batched.on_udp_batch(_batch(stretched[i:i + 7], 0x0A000001, 0x23F6B214))
    assert ref.finish() == packed.finish() == packed.finish()
    a, b = ref.finish(), batched.finish()
    assert [(x.ssrc, x.packets, x.lost, x.sequence_errors, x.duplicates) for x in a] == [
        (y.ssrc, y.packets, y.lost, y.sequence_errors, y.duplicates) for y in b
    ]
    for x, y in zip(a, b, strict=True):
        assert x.max_jitter_ms == pytest.approx(y.max_jitter_ms, abs=1e-6)
        assert x.mean_delta_ms == pytest.approx(y.mean_delta_ms, abs=1e-6)


def test_memory_does_not_grow_with_stream_length() -> None:
    """Per-stream state is constant; only closed 10-s intervals (56 bytes each) accumulate."""
    import tracemalloc

    an = announced()

    def run(first: int, count: int) -> None:
        for i in range(first, first + count):
            an.on_udp(UdpPacket(i + 1, T0 + i * 0.02, A, 40000, B, 20000, rtp(i, 160 * i)))

    run(0, 1000)  # warm up: stream, flow and endpoint state exist
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(1000, 30000)  # ten more minutes of 20-ms packets
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    intervals = 30000 * 0.02 / 10
    assert grown < intervals * 56 + 8192, f"{grown} bytes for 30000 packets"
    assert only(an).packets == 31000


def test_no_packing_in_the_middle_of_a_batch() -> None:
    """A stream whose run is pending in a batch must not be packed by a later row's housekeeping."""
    x = [(f, T0 + 0.02 * f, rtp(f, 160 * f, ssrc=1)) for f in range(10)]
    x += [(f, T0 + 100 + 0.02 * f, rtp(f, 160 * f, ssrc=1)) for f in range(10, 30)]  # resumes later
    y = [(100 + f, T0 + 200 + 0.02 * f, rtp(f, 160 * f, ssrc=2)) for f in range(3)]  # sorts after x
    ref, batched = RtpAnalyzer(idle_s=50), RtpAnalyzer(idle_s=50)
    for an in (ref, batched):
        an.expect(B, 20000, {8: ("PCMA", 8000)}, "call-1")
    for f, t, d in x + y:
        ref.on_udp(UdpPacket(f, t, "10.0.0.1", 40000, B, 20000, d))
    batched.on_udp_batch(_batch(x[:10], 0x0A000001, 0x23F6B214))
    batched._since_evict = 65535  # the next per-packet row would run the housekeeping
    batched.on_udp_batch(_batch(x[10:] + y, 0x0A000001, 0x23F6B214))
    assert [(s.ssrc, s.packets, s.max_delta_ms) for s in batched.finish()] == [
        (s.ssrc, s.packets, s.max_delta_ms) for s in ref.finish()
    ]
    assert batched.finish()[0].packets == 30


def test_random_udp_does_not_pile_up_heuristic_guesses() -> None:
    """Encrypted traffic whose first byte happens to look like RTP (e.g. IPsec NAT-T on 4500):
    every datagram a new SSRC, none continues a sequence — nothing reported, guesses expire."""
    import random

    rng = random.Random(3)
    an = RtpAnalyzer()
    for i in range(20000):  # 200 s of 100 datagrams per second
        junk = bytes([0x80, rng.randrange(0, 35)]) + rng.randbytes(60)
        an.on_udp(UdpPacket(i + 1, T0 + i / 100, "10.0.0.1", 4500, "10.0.0.2", 4500, junk))
    assert an.finish() == ()
    assert len(an._candidates) <= 10 * 100 + 1  # only the last 10 s of guesses are kept


def test_long_stream_intervals_in_small_blocks_per_packet_and_batched() -> None:
    """250 s of 20-ms PCMA: 25 closed 10-s intervals, the same per packet and batched (block
    boundaries at 8, 16, 24), each internal block small enough for Python's small-object
    allocator (a growing buffer past 512 bytes fragmented the C heap on long captures)."""
    import sys

    rows = [(i + 1, T0 + 0.02 * i, rtp(i, 160 * i)) for i in range(12500) if i % 997 != 5]
    one, many = announced(), announced()
    for f, t, d in rows:
        one.on_udp(UdpPacket(f, t, "10.0.0.1", 40000, B, 20000, d))
    for i in range(0, len(rows), 3000):
        many.on_udp_batch(_batch(rows[i:i + 3000], 0x0A000001, 0x23F6B214))
    (live,) = one._streams.values()
    assert len(live.intervals) == 3 and all(sys.getsizeof(block) <= 512 for block in live.intervals)
    a, b = one.finish(), many.finish()
    assert a[0].packets == b[0].packets == len(rows)
    for s in (a[0], b[0]):
        assert len(s.intervals) == 25
        assert [iv.start - T0 for iv in s.intervals] == pytest.approx([10.0 * k for k in range(25)])
        assert sum(iv.packets for iv in s.intervals) == s.packets
        assert sum(iv.lost for iv in s.intervals) == s.lost == 13
    assert [(iv.packets, iv.lost, iv.mos) for iv in a[0].intervals] == [(iv.packets, iv.lost, iv.mos) for iv in b[0].intervals]


def test_finish_release_gives_the_same_streams_and_drops_the_state() -> None:
    """``finish(release=True)`` (the pipeline's single last call) returns what ``finish()``
    returns, live and idle-packed streams alike, and keeps no stream afterwards."""
    an = RtpAnalyzer(idle_s=5)
    an.expect(B, 20000, {8: ("PCMA", 8000)}, "call-1")
    an.expect(B, 20002, {8: ("PCMA", 8000)}, "call-2")
    feed(an, [(20.0 * i, rtp(i, 160 * i, ssrc=1)) for i in range(100)])
    feed(an, [(30_000 + 20.0 * i, rtp(i, 160 * i, ssrc=2)) for i in range(100)], dport=20002, first_frame=200)
    an._evict_idle(T0 + 34)  # stream 1 silent since 2 s: packed; stream 2 still live
    assert len(an._idle) == 1 and len(an._streams) == 1
    kept = an.finish()
    assert an.finish(release=True) == kept and [s.ssrc for s in kept] == [1, 2]
    assert an.finish() == () and not an._streams and not an._idle


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 65535), st.lists(st.sampled_from([1, 1, 1, 1, 2, 3, 50, 127, 128, 2999, 3000, 3001, 40000]),
                                      min_size=1, max_size=150),
       st.integers(1, 60), st.lists(st.integers(0, 160), max_size=6))
def test_batched_runs_over_lost_packets_equal_the_per_packet_path(start: int, steps: list[int], size: int,
                                                                   late: list[int]) -> None:
    """Lost packets inside a batched run (steps up to 3000, larger jumps, 16-bit wraps): the same
    sequence errors, expected/lost per interval and duplicate window as packet by packet — late
    copies of received numbers count as duplicates, late lost ones do not."""
    seqs = [start]
    for step in steps:
        seqs.append(seqs[-1] + step)
    rows = [(k + 1, T0 + 0.02 * (q - start), rtp(q, 160 * (q - start))) for k, q in enumerate(seqs)]
    # then late packets: numbers shortly below the highest (received or lost)
    top = seqs[-1]
    rows += [(len(rows) + 1 + k, rows[-1][1] + 0.001 * (k + 1), rtp(top - back, 160 * (top - back - start)))
             for k, back in enumerate(late)]
    one, many = announced(), announced()
    for f, t, d in rows:
        one.on_udp(UdpPacket(f, t, "10.0.0.1", 40000, B, 20000, d))
    for i in range(0, len(rows), size):
        many.on_udp_batch(_batch(rows[i:i + size], 0x0A000001, 0x23F6B214))
    (a,), (b,) = one.finish(), many.finish()
    for field in ("packets", "expected", "lost", "sequence_errors", "duplicates", "last_frame"):
        assert getattr(a, field) == getattr(b, field), field
    assert [(i.packets, i.expected, i.lost) for i in a.intervals] == [(i.packets, i.expected, i.lost) for i in b.intervals]
    for field in ("max_delta_ms", "mean_delta_ms", "mean_jitter_ms", "max_jitter_ms"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-6), field


def test_batched_stream_with_loss_takes_no_per_packet_path() -> None:
    """2 % loss does not send a batched stream packet by packet (the benchmark's lossy streams):
    after the first packets the per-packet path is not used, and the numbers are exact."""
    if rtp_batch._kernels is None:  # the pure-Python lane takes runs, not whole batches
        pytest.skip("the compiled kernels are not built (pip install -e .)")
    rows = [(i + 1, T0 + 0.02 * i, rtp(i, 160 * i)) for i in range(2000) if i % 50 != 7]
    an = announced()
    an.on_udp_batch(_batch(rows[:10], 0x0A000001, 0x23F6B214))
    calls = []
    an.on_udp_fields = lambda *args: calls.append(args) or True  # type: ignore[method-assign]
    an.on_udp_batch(_batch(rows[10:], 0x0A000001, 0x23F6B214))
    assert calls == []
    (s,) = an.finish()
    assert (s.packets, s.expected, s.lost, s.sequence_errors) == (1960, 2000, 40, 40)
    assert [iv.lost for iv in s.intervals] == [10, 10, 10, 10]


@settings(max_examples=60, deadline=None)
@given(_events, st.lists(st.binary(min_size=12, max_size=40), max_size=10))
def test_batch_with_header_rows_equals_without(events: list[tuple[int, int, int, bool, int]],
                                               noise: list[bytes]) -> None:
    """The fast lane hands the payloads' first 12 bytes along (``UdpBatch.head``): the same
    streams, RTCP and errors as when the analyser gathers them itself."""
    rows = _build(events) + [(500 + k, T0 + 3 + k / 50, bytes([0x80 | (d[0] & 0x3F)]) + d[1:])
                             for k, d in enumerate(noise)]
    plain, given_head = announced(), announced()
    batch = _batch(rows, 0x0A000001, 0x23F6B214)
    plain.on_udp_batch(batch)
    head = np.frombuffer(b"".join(d[:12] for _f, _t, d in rows), dtype=np.uint8).reshape(-1, 12)
    given_head.on_udp_batch(dataclasses.replace(batch, head=head))
    assert plain.finish() == given_head.finish()
    assert plain.finish_rtcp() == given_head.finish_rtcp() and plain.errors == given_head.errors
