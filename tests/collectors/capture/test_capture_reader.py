"""pcap / pcapng / gzip readers: formats, chunking, damage, hostile bytes."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from capture_craft import (
    PCAPS,
    SIP_OPTIONS,
    eth,
    ipv4_udp,
    ng_block,
    ng_epb,
    ng_idb,
    ng_opb,
    ng_shb,
    ng_spb,
    pcap_bytes,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import collectors.capture.reader as reader_module
from collectors.capture.files import CaptureFile
from collectors.capture.reader import CaptureParser, RecordBatch, byte_rows, sort_by
from core.errors import ParseError

FRAME = eth(0x0800, ipv4_udp("10.0.0.1", 5060, "10.0.0.2", 5060, SIP_OPTIONS))


@pytest.fixture(scope="module", params=["kernel", "python"], autouse=True)
def record_walk(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs with the compiled record walk and with the Python one (used when the
    kernels are not built): the same records, offsets and errors."""
    with pytest.MonkeyPatch.context() as mp:
        if request.param == "python":
            mp.setattr(reader_module, "_kernels", None)
        yield str(request.param)


def records(data: bytes, step: int | None = None) -> list[tuple[int, float, int, bytes, int]]:
    """(frame, ts, linktype, bytes, orig_len) of every record; feeds whole or in ``step``-byte pieces."""
    p = CaptureParser()
    out = []
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    for piece in pieces:
        for b in p.feed(piece):
            out += _rows(b)
    p.close()
    return out


def _rows(b: RecordBatch) -> list[tuple[int, float, int, bytes, int]]:
    return [(b.first_frame + i, float(b.ts[i]), int(b.linktype[i]),
             b.buf[int(b.data_off[i]):int(b.data_off[i]) + int(b.caplen[i])], int(b.orig_len[i]))
            for i in range(len(b))]


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nanosecond", [False, True])
def test_classic_pcap_both_byte_orders_and_resolutions(big_endian: bool, nanosecond: bool) -> None:
    ts1 = 1_764_000_000_123_456_789
    data = pcap_bytes([(ts1, FRAME), (ts1 + 20_000_000, FRAME[:60])], 1,
                      big_endian=big_endian, nanosecond=nanosecond)
    recs = records(data)
    assert [r[0] for r in recs] == [1, 2]
    assert recs[0][3] == FRAME and recs[1][3] == FRAME[:60]
    assert {r[2] for r in recs} == {1}
    expect = 1_764_000_000.123456789 if nanosecond else 1_764_000_000.123456
    assert recs[0][1] == pytest.approx(expect, abs=1e-7)
    assert recs[1][1] - recs[0][1] == pytest.approx(0.020, abs=1e-6)


def test_byte_at_a_time_equals_whole() -> None:
    data = pcap_bytes([(float(i), FRAME) for i in range(5)])
    assert records(data, step=1) == records(data)
    ng = ng_shb() + ng_idb(1) + b"".join(ng_epb(0, i * 1000, FRAME) for i in range(4))
    assert records(ng, step=1) == records(ng) and len(records(ng)) == 4


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_block_types(e: str) -> None:
    raw_ip = ipv4_udp("10.0.0.1", 5060, "10.0.0.2", 5060, SIP_OPTIONS)
    data = (ng_shb(e) + ng_idb(1, e=e) + ng_idb(101, tsresol=9, e=e) + ng_idb(1, tsresol=0x80 | 10, e=e)
            + ng_block(0x0BAD, b"unknown block is skipped", e)
            + ng_epb(0, 1_764_000_000_250_000, FRAME, e)  # µs default
            + ng_epb(1, 1_764_000_000_250_000_001, raw_ip, e)  # ns
            + ng_opb(2, 1024 * 5, FRAME, e)  # 2^-10 s ticks
            + ng_spb(FRAME, e))
    recs = records(data)
    assert [r[2] for r in recs] == [1, 101, 1, 1]
    assert recs[0][1] == pytest.approx(1_764_000_000.25)
    assert recs[1][1] == pytest.approx(1_764_000_000.250000001, abs=1e-7)
    assert recs[2][1] == pytest.approx(5.0)
    assert recs[3][1] == 0.0  # SPBs carry no time
    assert recs[1][3] == raw_ip and recs[3][3] == FRAME


def test_pcapng_second_section_resets_interfaces() -> None:
    data = ng_shb() + ng_idb(1) + ng_epb(0, 0, FRAME) + ng_shb(">") + ng_idb(113, e=">") + ng_epb(0, 0, b"x" * 16, ">")
    assert [r[2] for r in records(data)] == [1, 113]


def test_gzip_is_detected_by_magic(tmp_path: Path) -> None:
    plain = pcap_bytes([(1.0, FRAME), (2.0, FRAME)])
    path = tmp_path / "capture.bin"
    path.write_bytes(gzip.compress(plain))
    cf = CaptureFile(path, chunk_size=7)
    got = [r for b in cf.batches() for r in _rows(b)]
    assert cf.problem is None and cf.gzip and len(got) == 2 and got[1][3] == FRAME


def _problem(tmp_path: Path, data: bytes) -> tuple[int, str, int | None]:
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    cf = CaptureFile(path)
    n = sum(len(b) for b in cf.batches())
    assert cf.problem is not None
    assert "\n" not in cf.problem.message
    return n, cf.problem.message, cf.problem.offset


def test_truncated_capture_keeps_what_is_complete(tmp_path: Path) -> None:
    data = pcap_bytes([(1.0, FRAME), (2.0, FRAME)])
    n, msg, off = _problem(tmp_path, data[:-10])
    assert n == 1 and "cut short" in msg and off == 24 + 16 + len(FRAME)


def test_wrong_magic(tmp_path: Path) -> None:
    n, msg, off = _problem(tmp_path, b"GIF89a" + bytes(100))
    assert n == 0 and "not a pcap or pcapng" in msg and off == 0


def test_record_length_beyond_limit_stops_there(tmp_path: Path) -> None:
    good = pcap_bytes([(1.0, FRAME)])
    bad = struct.pack("<IIII", 2, 0, 10_000_000, 10_000_000) + bytes(64)
    n, msg, off = _problem(tmp_path, good + bad + pcap_bytes([(3.0, FRAME)])[24:])
    assert n == 1 and "record length 10000000" in msg and off == len(good)


def test_garbage_in_the_middle_of_pcapng(tmp_path: Path) -> None:
    head = ng_shb() + ng_idb(1) + ng_epb(0, 1, FRAME)
    n, msg, off = _problem(tmp_path, head + b"\x06\x00\x00\x00\xff\xff\xff\x7f" + bytes(40) + ng_epb(0, 2, FRAME))
    assert n == 1 and "block length" in msg and off == len(head)


def test_empty_file_and_directory(tmp_path: Path) -> None:
    n, msg, off = _problem(tmp_path, b"")
    assert n == 0 and "empty" in msg and off == 0
    cf = CaptureFile(tmp_path)
    assert list(cf.batches()) == [] and cf.problem is not None and "directory" in cf.problem.message


def test_undeclared_interface_is_an_error_with_offset() -> None:
    p = CaptureParser()
    data = ng_shb() + ng_idb(1) + ng_epb(3, 0, FRAME)
    with pytest.raises(ParseError) as exc:
        list(p.feed(data))
    assert exc.value.offset == len(ng_shb() + ng_idb(1))


# -- hostile bytes ------------------------------------------------------------------------------

def _consume(data: bytes, step: int) -> None:
    p = CaptureParser()
    try:
        for i in range(0, len(data), step):
            for b in p.feed(data[i:i + step]):
                assert len(b.caplen) == len(b.data_off)
                assert all(int(o) + int(c) <= len(b.buf) for o, c in zip(b.data_off, b.caplen, strict=True))
        p.close()
    except ParseError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 64))
def test_any_bytes_parse_or_raise_parse_error(data: bytes, step: int) -> None:
    _consume(data, step)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(8) + b"\xff\xff\x00\x00\x01\x00\x00\x00",
                        b"\xa1\xb2\x3c\x4d\x00\x02\x00\x04" + bytes(8) + b"\x00\x00\xff\xff\x00\x00\x00\x01",
                        ng_shb() + ng_idb(1), ng_shb(">") + ng_idb(1, e=">")]),
       st.binary(max_size=600), st.integers(1, 64))
def test_valid_header_then_any_bytes(head: bytes, tail: bytes, step: int) -> None:
    _consume(head + tail, step)


# -- real captures --------------------------------------------------------------------------------

def _real(name: str) -> Path:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {name} not found in {PCAPS}")
    return path


def _read(name: str) -> tuple[list[tuple[int, float, int, bytes, int]], CaptureFile]:
    cf = CaptureFile(_real(name))
    return [r for b in cf.batches() for r in _rows(b)], cf


def test_real_pcapng_with_two_interfaces() -> None:
    recs, cf = _read("zeek_pcapng-multi-interface.pcapng")
    assert cf.problem is None and len(recs) == 6 and cf.parser.link_types == [1, 1]


def test_real_pcapng_with_nine_interfaces() -> None:
    recs, cf = _read("ndpi_gre_multi-if.pcapng")
    assert cf.problem is None and len(recs) == 1 and len(cf.parser.link_types) == 9


def test_real_cut_short_fuzz_file() -> None:
    recs, cf = _read("ndpi_fuzz-2021-10-13_cut-short.pcap")
    assert recs == [] and cf.problem is not None and cf.problem.offset == 24
    assert "524501" in cf.problem.message


def test_real_short_snaplen_record() -> None:
    recs, cf = _read("zeek_trunc-hdr.pcap")
    assert cf.problem is None and len(recs) == 1 and len(recs[0][3]) == 8 and recs[0][4] == 78


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 60, 214, 215, 1514]), st.integers(1, 60)), max_size=12),
       st.sampled_from([None, 97, 4096]), st.booleans())
def test_record_walk_finds_every_record(runs: list[tuple[int, int]], step: int | None, big: bool) -> None:
    """Runs of equal and odd record lengths (incl. empty), whole or cut into chunks, both byte orders."""
    frames = [bytes([i % 251]) * size for i, (size, count) in enumerate(runs) for _ in range(count)]
    data = pcap_bytes([(float(i), f) for i, f in enumerate(frames)], big_endian=big)
    assert [r[3] for r in records(data, step)] == frames


@pytest.mark.parametrize("step", [None, 4096, 65536 + 5])
@pytest.mark.parametrize("big", [False, True])
def test_record_walk_runs_longer_than_one_check(step: int | None, big: bool) -> None:
    """Runs longer than the walk's look-ahead window, and lengths that differ from the run's only
    in the second or third byte of the length field, end the run exactly where they should
    (pcap records and pcapng EPBs, a simple packet block inside a run)."""
    sizes = [214] * 2500 + [214 + 256] + [214] * 3 + [214 + 65536] + [214] * 1100 + [1, 1, 214] + [60] * 256
    frames = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    data = pcap_bytes([(float(i), f) for i, f in enumerate(frames)], big_endian=big)
    assert [r[3] for r in records(data, step)] == frames
    e = ">" if big else "<"
    ng = ng_shb(e) + ng_idb(1, e=e) + b"".join(ng_epb(0, i, f, e) for i, f in enumerate(frames[:1800]))
    ng += ng_spb(frames[0], e) + b"".join(ng_epb(0, i, f, e) for i, f in enumerate(frames[1800:]))
    assert [r[3] for r in records(ng, step)] == [*frames[:1800], frames[0], *frames[1800:]]


@pytest.mark.parametrize(("damage", "needle"), [("trailer", "trailer length"), ("caplen", "beyond its block"),
                                                ("iface", "undeclared interface 5")])
def test_damaged_epb_among_good_ones(damage: str, needle: str) -> None:
    blocks = [ng_epb(0, 1000 + i, FRAME) for i in range(6)]
    bad = bytearray(blocks[3])
    if damage == "trailer":
        bad[-4:] = struct.pack("<I", len(bad) + 4)
    elif damage == "caplen":
        bad[20:24] = struct.pack("<I", len(bad))
    else:
        bad[8:12] = struct.pack("<I", 5)
    head = ng_shb() + ng_idb(1)
    data = head + b"".join(blocks[:3]) + bytes(bad) + b"".join(blocks[4:])
    p = CaptureParser()
    got = []
    with pytest.raises(ParseError, match=needle) as exc:
        for b in p.feed(data):
            got += _rows(b)
    assert len(got) == 3 and exc.value.offset == len(head) + 3 * len(blocks[0])
    assert [r[1] for r in got] == pytest.approx([0.001, 0.001001, 0.001002])


def test_epb_timestamps_per_interface_resolution_in_one_run() -> None:
    data = ng_shb() + ng_idb(1) + ng_idb(1, tsresol=9) + ng_idb(1, tsresol=0x80 | 20)
    data += ng_epb(0, 1_700_000_000_123_456, FRAME) + ng_epb(1, 1_700_000_000_123_456_789, FRAME)
    data += ng_epb(2, 3 << 20, FRAME) + ng_epb(0, 1_700_000_001_000_000, FRAME)
    assert [r[1] for r in records(data)] == [1_700_000_000.123456, 1_700_000_000.123456789, 3.0, 1_700_000_001.0]


def _whole(data: bytes) -> tuple[list[tuple[int, float, int, bytes, int]], str | None]:
    """Records and error of feeding ``data`` at once (no file, no chunks)."""
    p = CaptureParser()
    out: list[tuple[int, float, int, bytes, int]] = []
    try:
        for b in p.feed(data):
            out += _rows(b)
        p.close()
    except ParseError as exc:
        return out, f"{exc} @{exc.offset}"
    return out, None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 60, 214, 1514, 70000]), max_size=30), st.sampled_from([1, 7, 100, 4096]),
       st.sampled_from(["pcap", "pcapng"]), st.integers(0, 40))
def test_file_re_read_in_chunks_equals_the_whole(tmp_path_factory: pytest.TempPathFactory, sizes: list[int],
                                                 chunk: int, fmt: str, cut: int) -> None:
    """A plain file is re-read from the first unconsumed byte for every chunk (records longer
    than a chunk, a record cut at the end, every chunk size): the same records and problem as
    feeding the bytes at once, and the progress callback counts every byte once."""
    frames = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    if fmt == "pcap":
        data = pcap_bytes([(float(i), f) for i, f in enumerate(frames)])
    else:
        data = ng_shb() + ng_idb(1) + b"".join(ng_epb(0, i, f) for i, f in enumerate(frames))
    data = data[:len(data) - cut]
    path = tmp_path_factory.mktemp("reread") / "x.bin"
    path.write_bytes(data)
    seen: list[int] = []
    cf = CaptureFile(path, seen.append, chunk_size=chunk)
    recs = [r for b in cf.batches() for r in _rows(b)]
    want, problem = _whole(data)
    assert recs == want
    assert (cf.problem is None) == (problem is None)
    if cf.problem is not None and problem is not None:
        assert cf.problem.message.endswith(problem.split(" @")[0]) and f"@{cf.problem.offset}" == problem[problem.rindex(" @") + 1:]
    if cf.problem is None or "cut short" in cf.problem.message:
        assert sum(seen) == len(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=300), st.integers(1, 40), st.lists(st.integers(0, 299), max_size=50))
def test_byte_rows_are_the_slices(buf: bytes, width: int, starts: list[int]) -> None:
    """``byte_rows`` (the vectorised header gather) is ``buf[o:o+width]`` row by row, also for
    overlapping and repeated offsets, and refuses an offset whose row would run past the end."""
    fits = [o for o in starts if o + width <= len(buf)]
    rows = byte_rows(buf, np.asarray(fits, dtype=np.int64), width)
    assert rows.shape == (len(fits), width) and rows.dtype == np.uint8
    assert [bytes(r) for r in rows] == [buf[o:o + width] for o in fits]
    past = [o for o in starts if o + width > len(buf)]
    if past:
        with pytest.raises(IndexError):
            byte_rows(buf, np.asarray(past[:1], dtype=np.int64), width)


def test_parser_release_keeps_only_the_unfinished_record() -> None:
    """Between chunks the consumed bytes are dropped (the chunk buffer can be freed); the offset
    and the records are unchanged, and a record cut at the end is still reported."""
    data = pcap_bytes([(float(i), FRAME) for i in range(5)])
    cut = data[:-10]
    p = CaptureParser()
    got = [r for b in p.feed(cut) for r in _rows(b)]
    offset = p.offset
    p.release()
    assert p.offset == offset and len(p._buf) == len(cut) - offset
    with pytest.raises(ParseError, match="cut short inside a record"):
        p.close()
    got += [r for b in p.feed(data[offset:], resume=True) for r in _rows(b)]
    p.close()
    assert got == records(data)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 65535), st.sampled_from([0, 1, 5060, 65535])),
                max_size=80), st.booleans())
def test_sort_by_is_lexsort(rows: list[tuple[int, int, int]], big: bool) -> None:
    """``sort_by`` (radix sorts for port keys) gives exactly ``np.lexsort``'s stable permutation."""
    primary = np.array([p * (1 << 40 if big else 1) for p, _a, _b in rows], dtype=np.uint64)
    a = np.array([x for _p, x, _b in rows], dtype=np.int64)
    b = np.array([x for _p, _a, x in rows], dtype=np.int64)
    assert sort_by(primary, a, b).tolist() == np.lexsort((b, a, primary)).tolist()
    assert sort_by(primary, b).tolist() == np.lexsort((b, primary)).tolist()
