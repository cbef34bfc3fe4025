"""RTP, RTCP and RFC 4733 parsers: hand-made packets, the corpus's RTCP, and any-bytes safety."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.wire.rtp import (
    build_rtp,
    looks_like_rtcp,
    parse_rtcp,
    parse_rtp,
    parse_telephone_event,
)

PCAPS = Path(__file__).resolve().parents[3] / ".." / "shared" / "pcaps"


def rtp(seq: int = 1, ts: int = 160, ssrc: int = 0x11223344, pt: int = 8, marker: bool = False,
        payload: bytes = b"\xd5" * 160, b0: int = 0x80, extra: bytes = b"") -> bytes:
    return struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc) + extra + payload


def test_rtp_fixed_header() -> None:
    h = parse_rtp(rtp(seq=65535, ts=0xFFFFFFFF, ssrc=0xDEADBEEF, pt=0, marker=True))
    assert (h.version, h.payload_type, h.marker, h.seq, h.timestamp, h.ssrc) == (2, 0, True, 65535, 0xFFFFFFFF,
                                                                                0xDEADBEEF)
    assert (h.payload_offset, h.payload_len, h.padding, h.extension, h.csrc_count) == (12, 160, False, False, 0)


def test_rtp_csrc_extension_and_padding() -> None:
    csrcs = struct.pack("!II", 1, 2)
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"  # RFC 8285 one-byte header, 1 word
    data = rtp(b0=0x80 | 0x20 | 0x10 | 2, extra=csrcs + ext, payload=b"abcd" + b"\x00\x00\x03")
    h = parse_rtp(data)
    assert h.csrc_count == 2 and h.extension and h.padding
    assert h.payload_offset == 12 + 8 + 8
    assert h.payload_len == 4  # 7 bytes minus 3 of padding


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"\x80\x08\x00", 0),  # shorter than the header
        (rtp(b0=0x40), 0),  # version 1
        (rtp(b0=0x8F, payload=b""), 12),  # 15 CSRCs announced, none there
        (rtp(b0=0x90, payload=b"\xbe\xde"), 12),  # extension header cut
        (rtp(b0=0xA0, payload=b"ab\x09"), 14),  # padding count beyond the payload
        (rtp(b0=0xA0, payload=b"ab\x00"), 14),  # padding count zero
    ],
)
def test_rtp_malformed_raises_parse_error_with_offset(data: bytes, offset: int) -> None:
    with pytest.raises(ParseError) as err:
        parse_rtp(data)
    assert err.value.offset == offset


def test_telephone_event() -> None:
    ev = parse_telephone_event(bytes([11, 0x80 | 10]) + struct.pack("!H", 1600))
    assert (ev.event, ev.digit, ev.end, ev.volume, ev.duration) == (11, "#", True, 10, 1600)
    assert parse_telephone_event(b"\x05\x0a\x00\xa0").digit == "5"
    assert parse_telephone_event(b"\x40\x0a\x00\xa0").digit is None  # not a DTMF event
    with pytest.raises(ParseError):
        parse_telephone_event(b"\x01\x02")


def _report_block(ssrc: int, fraction: int, cumulative: int, highest: int, jitter: int, lsr: int,
                  dlsr: int) -> bytes:
    return struct.pack("!IIIIII", ssrc, (fraction << 24) | (cumulative & 0xFFFFFF), highest, jitter, lsr, dlsr)


def sr(ssrc: int, ntp: int, blocks: list[bytes]) -> bytes:
    body = struct.pack("!IIIIII", ssrc, ntp >> 32, ntp & 0xFFFFFFFF, 8000, 50, 8000) + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), 200, len(body) // 4) + body


def rr(ssrc: int, blocks: list[bytes]) -> bytes:
    body = struct.pack("!I", ssrc) + b"".join(blocks)
    return struct.pack("!BBH", 0x80 | len(blocks), 201, len(body) // 4) + body


def sdes(ssrc: int, cname: str) -> bytes:
    item = bytes([1, len(cname)]) + cname.encode() + b"\x00"
    item += b"\x00" * (-(len(item) + 4) % 4)
    body = struct.pack("!I", ssrc) + item
    return struct.pack("!BBH", 0x81, 202, len(body) // 4) + body


def bye(ssrc: int, reason: str) -> bytes:
    body = struct.pack("!I", ssrc) + bytes([len(reason)]) + reason.encode()
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!BBH", 0x81, 203, len(body) // 4) + body


def test_rtcp_compound_sr_rr_sdes_bye_app() -> None:
    block = _report_block(0xAAAA, 64, 0xFFFFFE, 0x0001_0005, 80, 0x12345678, 0x8000)  # cumulative −2
    app = struct.pack("!BBHI", 0x81, 204, 2, 0x1234) + b"QOS!"
    data = sr(0x1234, 0x0001_1234_5678_0000, [block]) + sdes(0x1234, "osbiz@pbx") + bye(0x1234, "done") + app
    packets = parse_rtcp(data)
    assert [p.name for p in packets] == ["SR", "SDES", "BYE", "APP"]
    s = packets[0]
    assert s.ssrc == 0x1234 and s.sender_packets == 50 and s.ntp_middle32 == 0x1234_5678
    rb = s.reports[0]
    # cumulative lost is a signed 24-bit field: 0xFFFFFE is −2, not 16777214 (nor a 12-bit truncation)
    assert (rb.ssrc, rb.fraction_lost, rb.cumulative_lost, rb.highest_seq) == (0xAAAA, 64, -2, 0x10005)
    assert rb.fraction_lost_pct == 25.0
    assert (rb.jitter, rb.lsr, rb.dlsr) == (80, 0x12345678, 0x8000)
    assert packets[1].sdes == ((0x1234, "CNAME", "osbiz@pbx"),)
    assert packets[2].bye_sources == (0x1234,) and packets[2].reason == "done"
    assert packets[3].app_name == "QOS!"


def test_rtcp_trailing_bytes_and_nul_in_sdes() -> None:
    """Fewer than 4 trailing bytes are ignored (as Wireshark does); a NUL counted into an SDES
    item's length is not part of the text (AudioCodes gateways send both)."""
    item = bytes([1, 3]) + b"c0\x00" + b"\x00" * 3
    data = rr(7, []) + struct.pack("!BBHI", 0x81, 202, 3, 7) + item + b"\x00\x00"
    packets = parse_rtcp(data)
    assert [p.name for p in packets] == ["RR", "SDES"]
    assert packets[1].sdes == ((7, "CNAME", "c0"),)


def test_rtcp_large_cumulative_loss_not_truncated() -> None:
    rb = parse_rtcp(rr(1, [_report_block(2, 0, 5000, 0, 0, 0, 0)]))[0].reports[0]
    assert rb.cumulative_lost == 5000  # a 12-bit truncation would give 904


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\xc8",
        struct.pack("!BBH", 0x80, 200, 6),  # length beyond the datagram
        struct.pack("!BBH", 0x40, 201, 1) + b"\x00" * 4,  # version 1
        struct.pack("!BBHI", 0x82, 201, 1, 7),  # two report blocks announced, none there
        struct.pack("!BBHI", 0x81, 202, 1, 7),  # SDES item list not terminated
    ],
)
def test_rtcp_malformed(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_rtcp(data)


def test_looks_like_rtcp() -> None:
    assert looks_like_rtcp(rr(1, []) + b"\x00" * 4)
    assert not looks_like_rtcp(rtp(marker=False, pt=8))
    assert looks_like_rtcp(rtp(marker=True, pt=72))  # RFC 5761: marker + 72 = 200 = SR


def test_rtcp_from_the_corpus() -> None:
    """The five compound datagrams of nDPI's sample parse into SR/RR/SDES/BYE (tshark: 3 SR, 2 RR)."""
    pytest.importorskip("scapy")
    path = PCAPS / "ndpi_rtcp_multiple_pkts_in_the_same_datagram.pcap"
    if not path.is_file():
        pytest.skip(f"shared captures not found at {PCAPS}")
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    names = [p.name for pkt in rdpcap(str(path)) for p in parse_rtcp(bytes(pkt[UDP].payload))]
    assert names.count("SR") == 3 and names.count("RR") == 2
    assert "SDES" in names


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_parse_error(data: bytes) -> None:
    for parser in (parse_rtp, parse_rtcp, parse_telephone_event):
        with contextlib.suppress(ParseError):
            parser(data)


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=0, max_size=40), max_size=4), st.integers(0, 31), st.integers(192, 223))
def test_rtcp_shaped_noise(chunks: list[bytes], count: int, pt: int) -> None:
    data = b"".join(struct.pack("!BBH", 0x80 | count, pt, len(c) // 4) + c for c in chunks)
    try:
        packets = parse_rtcp(data)
    except ParseError:
        return
    assert all(p.offset < len(data) for p in packets)


@settings(max_examples=200)
@given(st.integers(0, 127), st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.binary(max_size=200), st.booleans())
def test_built_packets_parse_back(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> None:
    data = build_rtp(pt, seq, ts, ssrc, payload, marker=marker)
    h = parse_rtp(data)
    assert (h.payload_type, h.seq, h.timestamp, h.ssrc, h.marker) == (pt, seq, ts, ssrc, marker)
    assert data[h.payload_offset:h.payload_offset + h.payload_len] == payload
