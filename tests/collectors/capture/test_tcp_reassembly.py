"""TCP reassembly: order, retransmission, overlap, reconnects, gaps; any segmentation gives the same bytes."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.packets import ACK, FIN, PSH, RST, SYN, StreamData, TcpSegment
from collectors.capture.tcp import TcpReassembler

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 5060)


def seg(frame: int, seq: int, data: bytes = b"", flags: int = ACK | PSH, src: tuple[str, int] = C,
        dst: tuple[str, int] = S) -> TcpSegment:
    return TcpSegment(frame, float(frame), src[0], src[1], dst[0], dst[1], seq, 0, flags, data)


def run(segments: list[TcpSegment], r: TcpReassembler | None = None) -> list[StreamData]:
    r = r or TcpReassembler()
    out = [d for s in segments for d in r.on_segment(s)]
    return out + r.finish()


def joined(pieces: list[StreamData], src: tuple[str, int] = C) -> bytes:
    return b"".join(p.data for p in pieces if (p.src, p.sport) == src)


def test_handshake_then_in_order_data() -> None:
    out = run([seg(1, 999, flags=SYN), seg(2, 5000, flags=SYN | ACK, src=S, dst=C), seg(3, 1000, b"abc"),
               seg(4, 1003, b"def"), seg(5, 5001, b"xyz", src=S, dst=C)])
    assert joined(out) == b"abcdef" and joined(out, S) == b"xyz"
    assert [p.frame for p in out if (p.src, p.sport) == C] == [3, 4]
    assert {p.connection for p in out} == {0}


def test_out_of_order_is_delivered_when_the_hole_fills() -> None:
    out = run([seg(1, 100, b"AAAA"), seg(2, 108, b"CCCC"), seg(3, 104, b"BBBB")])
    assert joined(out) == b"AAAABBBBCCCC"
    assert [(p.frame, p.data) for p in out] == [(1, b"AAAA"), (3, b"BBBBCCCC")]


def test_retransmission_and_overlap() -> None:
    r = TcpReassembler()
    out = run([seg(1, 100, b"AAAA"), seg(2, 100, b"AAAA"), seg(3, 102, b"AABB"), seg(4, 106, b"CC")], r)
    assert joined(out) == b"AAAABBCC" and r.retransmissions == 1


def test_syn_with_new_isn_is_a_new_connection() -> None:
    out = run([seg(1, 10, flags=SYN), seg(2, 11, b"one"), seg(3, 14, flags=RST | ACK),
               seg(4, 9000, flags=SYN), seg(5, 9001, b"two")])
    assert [(p.data, p.connection) for p in out] == [(b"one", 0), (b"two", 1)]


def test_capture_started_mid_stream() -> None:
    assert joined(run([seg(1, 123456, b"mid"), seg(2, 123459, b"dle")])) == b"middle"


def test_sequence_wrap() -> None:
    out = run([seg(1, 0xFFFFFFFE, b"ab"), seg(2, 0, b"cd"), seg(3, 2, b"ef")])
    assert joined(out) == b"abcdef"


def test_missing_segment_is_flushed_at_the_end_with_its_gap() -> None:
    out = run([seg(1, 100, b"AAAA"), seg(2, 110, b"CCCC")])
    assert [(p.frame, p.data, p.gap) for p in out] == [(1, b"AAAA", 0), (2, b"CCCC", 6)]


def test_a_hole_open_longer_than_a_retransmission_is_skipped() -> None:
    r = TcpReassembler(max_wait_s=5.0)
    early = [d for s in (seg(1, 100, b"AAAA"), seg(2, 110, b"CCCC"), seg(3, 114, b"DD")) for d in r.on_segment(s)]
    assert [p.data for p in early] == [b"AAAA"]  # frames 2 and 3 wait for the hole (t = 2, 3 s)
    late = r.on_segment(TcpSegment(9, 8.0, *C, *S, 116, 0, ACK, b"EE"))  # 6 s after frame 2
    assert [(p.frame, p.data, p.gap) for p in late] == [(9, b"CCCCDDEE", 6)]


def test_early_buffer_overflow_skips_the_hole() -> None:
    r = TcpReassembler(max_early_segments=2)
    out = run([seg(1, 100, b"A"), seg(2, 110, b"B"), seg(3, 111, b"C"), seg(4, 112, b"D")], r)
    assert [(p.data, p.gap) for p in out] == [(b"A", 0), (b"BCD", 9)]
    assert joined(out) == b"ABCD" and r.gaps == 1


def test_fin_consumes_a_sequence_number() -> None:
    out = run([seg(1, 100, b"data", flags=ACK | FIN), seg(2, 105, b"late")])
    assert joined(out) == b"datalate"


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.lists(st.integers(1, 60), min_size=1, max_size=40),
       st.integers(0, 2**32 - 1), st.randoms(use_true_random=False), st.booleans())
def test_any_segmentation_and_local_reordering_gives_the_same_bytes(
        data: bytes, sizes: list[int], isn: int, rnd: random.Random, dup: bool) -> None:
    segs, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        segs.append(seg(0, (isn + pos) % 2**32, data[pos:pos + n]))
        pos += n
        i += 1
    # swap neighbours and duplicate some segments: what real captures do
    for j in range(0, len(segs) - 1, 2):
        if rnd.random() < 0.3:
            segs[j], segs[j + 1] = segs[j + 1], segs[j]
    if dup:
        segs += [segs[k] for k in range(0, len(segs), 3)]
    frames = [TcpSegment(k + 1, float(k), s.src, s.sport, s.dst, s.dport, s.seq, s.ack, s.flags, s.payload)
              for k, s in enumerate([seg(0, (isn - 1) % 2**32, flags=SYN), *segs])]
    assert joined(run(frames)) == data


def test_connection_table_is_bounded_and_evicts_the_idle_one() -> None:
    r = TcpReassembler(max_connections=3)
    for port in range(5):
        r.on_segment(seg(port, 1, b"x", src=("10.0.0.1", 1000 + port)))
    r.on_segment(seg(9, 2, b"y", src=("10.0.0.1", 1002)))  # 1002 is used again: not the oldest any more
    r.on_segment(seg(10, 1, b"z", src=("10.0.0.1", 2000)))
    assert r.dropped_connections == 3
    assert r.connection_of(seg(0, 3, src=("10.0.0.1", 1002))) == 2  # kept
    assert r.connection_of(seg(0, 2, src=("10.0.0.1", 1003))) == -1  # evicted
