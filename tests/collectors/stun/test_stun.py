"""STUN parser, stream framer and transaction matcher; real captures against tshark counts."""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sip"))
from sip_scapy_feed import PCAPS, Reassembler, packets

from collectors.capture.packets import StreamData, UdpPacket
from collectors.stun.analyzer import StunAnalyzer
from collectors.stun.message import (
    MAGIC_COOKIE,
    NEED_DATA,
    ChannelData,
    StunMessage,
    StunStreamFramer,
    is_stun,
    parse_stun,
)
from core.errors import ParseError

TID = bytes(range(1, 13))


def attr(atype: int, value: bytes) -> bytes:
    return struct.pack("!HH", atype, len(value)) + value + b"\0" * (-len(value) % 4)


def message(mtype: int, *attrs: bytes, tid: bytes = TID) -> bytes:
    body = b"".join(attrs)
    return struct.pack("!HHI", mtype, len(body), MAGIC_COOKIE) + tid + body


def xor_v4(ip: str, port: int) -> bytes:
    x = int(ipaddress.IPv4Address(ip)) ^ MAGIC_COOKIE
    return struct.pack("!BBHI", 0, 1, port ^ (MAGIC_COOKIE >> 16), x)


def xor_v6(ip: str, port: int, tid: bytes = TID) -> bytes:
    raw = ipaddress.IPv6Address(ip).packed
    mask = struct.pack("!I", MAGIC_COOKIE) + tid
    return struct.pack("!BBH", 0, 2, port ^ (MAGIC_COOKIE >> 16)) + bytes(a ^ b for a, b in zip(raw, mask, strict=True))


def test_binding_success_with_xor_mapped_address_v4_and_v6() -> None:
    m = parse_stun(message(0x0101, attr(0x0020, xor_v4("203.0.113.7", 40000)), attr(0x8022, b"upscope")))
    assert (m.method, m.klass, m.transaction_id, m.classic) == ("Binding", "success", TID.hex(), False)
    assert m.mapped_address == "203.0.113.7:40000"
    m6 = parse_stun(message(0x0101, attr(0x0020, xor_v6("2001:db8::42", 3478))))
    assert m6.mapped_address == "[2001:db8::42]:3478"


def test_error_code_and_turn_method_names() -> None:
    err = attr(0x0009, struct.pack("!HBB", 0, 4, 1) + b"Unauthorized")
    m = parse_stun(message(0x0113, err))  # Allocate error response (RFC 8656)
    assert (m.method, m.klass, m.error_code, m.error_reason) == ("Allocate", "error", 401, "Unauthorized")
    assert parse_stun(message(0x0016)).klass == "indication" and parse_stun(message(0x0016)).method == "Send"


def test_classic_rfc3489_without_cookie() -> None:
    mapped = attr(0x0001, struct.pack("!BBH", 0, 1, 5060) + ipaddress.IPv4Address("198.51.100.1").packed)
    data = struct.pack("!HH", 0x0101, len(mapped)) + bytes(range(16)) + mapped
    assert is_stun(data)
    m = parse_stun(data)
    assert m.classic and m.transaction_id == bytes(range(16)).hex() and m.mapped_address == "198.51.100.1:5060"


@pytest.mark.parametrize("data", [
    b"",  # no header
    b"\x00\x01\x00\x00",  # header cut short
    message(0x0001)[:-1],  # header cut short by one byte
    struct.pack("!HHI", 0x0001, 4, MAGIC_COOKIE) + TID + b"\x00\x20\x00\x08",  # attribute beyond message
    message(0x0101, attr(0x0020, b"\x00\x07\x00\x01")),  # unknown address family
    message(0x0111, attr(0x0009, b"\x00")),  # ERROR-CODE too short
    b"\xc0\x01" + message(0x0001)[2:],  # top bits set
])
def test_bad_stun_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_stun(data)


def test_is_stun_rejects_rtp_dtls_and_sip() -> None:
    assert not is_stun(b"\x80\x08" + bytes(170))  # RTP
    assert not is_stun(b"\x16\xfe\xfd" + bytes(40))  # DTLS
    assert not is_stun(b"OPTIONS sip:a SIP/2.0\r\n\r\n")


def test_transactions_rtt_retransmission_and_reuse_after_answer() -> None:
    a = StunAnalyzer()
    req = message(0x0001)
    ok = message(0x0101, attr(0x0020, xor_v4("203.0.113.7", 40000)))
    c, s = ("10.0.0.1", 50000), ("192.0.2.9", 3478)
    a.on_udp(UdpPacket(1, 10.0, *c, *s, req))
    a.on_udp(UdpPacket(2, 10.5, *c, *s, req))  # retransmission: same transaction
    a.on_udp(UdpPacket(3, 10.6, *s, *c, ok))
    a.on_udp(UdpPacket(4, 10.7, *s, *c, ok))  # duplicate answer: ignored
    a.on_udp(UdpPacket(5, 20.0, *c, *s, req))  # the same ID again after the answer: new exchange
    (t1, t2) = a.finish()
    assert (t1.request_frame, t1.response_frame, t1.rtt_ms, t1.mapped_address) == (1, 3, 600.0, "203.0.113.7:40000")
    assert (t2.request_frame, t2.response_frame, t2.response_class) == (5, None, None)
    assert a.message_counts == {"Binding request": 3, "Binding success": 2}


def _drain(f: StunStreamFramer) -> list[object]:
    out: list[object] = []
    while True:
        try:
            ev = f.next_event()
        except ParseError as exc:
            out.append(("error", exc.offset))
            continue
        if ev is NEED_DATA:
            return out
        out.append(ev)


pieces = st.lists(st.sampled_from([message(0x0003), message(0x0103, attr(0x0020, xor_v4("1.2.3.4", 5))),
                                   struct.pack("!HH", 0x4001, 3) + b"abc\0"]), max_size=6)


@settings(max_examples=50, deadline=None)
@given(pieces)
def test_stream_whole_and_byte_at_a_time_agree(parts: list[bytes]) -> None:
    stream = b"".join(parts)
    whole = StunStreamFramer()
    whole.feed(stream)
    one = StunStreamFramer()
    evs: list[object] = []
    for i in range(len(stream)):
        one.feed(stream[i:i + 1])
        evs += _drain(one)
    assert _drain(whole) == evs
    assert len(evs) == len(parts)
    assert all(isinstance(e, StunMessage | ChannelData) for e in evs)


def test_rfc4571_framed_stream_and_tcp_transactions() -> None:
    req, ok = message(0x0001), message(0x0101)
    a = StunAnalyzer()
    fwd = struct.pack("!H", len(req)) + req
    a.on_stream(StreamData(3, 1.0, "10.0.0.1", 4000, "10.0.0.2", 5000, fwd * 1, 1))
    a.on_stream(StreamData(4, 1.25, "10.0.0.2", 5000, "10.0.0.1", 4000, struct.pack("!H", len(ok)) + ok, 1))
    (t,) = a.finish()
    assert (t.transport, t.request_frame, t.response_frame, t.rtt_ms) == ("tcp", 3, 4, 250.0)


def test_non_stun_stream_is_ignored_without_errors() -> None:
    a = StunAnalyzer()
    a.on_stream(StreamData(1, 0.0, "10.0.0.1", 4000, "10.0.0.2", 443, b"\x16\x03\x01\x02\x00" + bytes(60), 1))
    assert a.finish() == () and a.errors == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.binary(max_size=120).map(lambda b: message(0x0101) [:20] + b))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_stun(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_framer_any_bytes_terminates(chunks: list[bytes]) -> None:
    f = StunStreamFramer()
    for c in chunks:
        f.feed(c)
        _drain(f)


# tshark 4.0 counts per STUN message type (`-T fields -e stun.type -e classicstun.type`, with
# `-d tcp.port==80,stun` for the TURN file), computed once. Exemption: ndpi_stun.pcap frame 24
# is a Refresh success quoted inside an ICMP error, which tshark dissects and we do not count.
EXPECTED = {
    "arkime_stun-ice-testcall.pcap": {"Binding request": 53, "Binding success": 48, "Binding error": 7},
    "arkime_turn-over-tcp80.pcap": {"Allocate request": 2, "Allocate success": 1, "Allocate error": 1,
                                    "CreatePermission request": 7, "CreatePermission success": 3,
                                    "CreatePermission error": 1},
    "ndpi_stun.pcap": {"Binding request": 34, "Binding success": 35, "Allocate request": 8,
                       "Allocate success": 4, "Allocate error": 4, "Refresh request": 2,
                       "Refresh success": 3 - 1, "CreatePermission request": 11,
                       "CreatePermission success": 9, "CreatePermission error": 2,
                       "ChannelBind request": 1, "ChannelBind success": 2, "Send indication": 25,
                       "Data indication": 15},
    "ndpi_stun_classic.pcap": {"Binding request": 1, "Binding success": 1},
    "ndpi_stun_dtls_rtp.pcapng": {"Binding request": 2, "Binding success": 2, "Allocate request": 2,
                                  "Allocate success": 1, "Allocate error": 1,
                                  "CreatePermission request": 1, "CreatePermission success": 1,
                                  "ChannelBind request": 2, "Send indication": 10, "Data indication": 21},
    "ndpi_stun_tcp_multiple_msgs_same_pkt.pcap": {"Allocate request": 6},
    "zeek_webrtc-stun.pcap": {"Binding request": 5, "Binding success": 5},
}


def _analyse(name: str) -> StunAnalyzer:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {path} not present")
    a = StunAnalyzer()
    ra = Reassembler()
    for p in packets(path):
        if isinstance(p, UdpPacket):
            a.on_udp(p)
        else:
            for sd in ra.feed(p):
                a.on_stream(sd)
    return a


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_message_counts_agree_with_tshark(name: str) -> None:
    a = _analyse(name)
    assert a.message_counts == EXPECTED[name]
    assert a.errors == []


def test_ice_testcall_transactions() -> None:
    txns = _analyse("arkime_stun-ice-testcall.pcap").finish()
    outcome = Counter((t.response_class, t.error_code) for t in txns)
    # 53 requests: 1 retransmitted unanswered one folds into its transaction; ICE re-checks
    # that reuse an answered ID are new exchanges; second answers to one request are ignored.
    assert outcome == {("success", None): 47, ("error", 401): 5}
    assert all(t.rtt_ms is not None and t.rtt_ms >= 0 for t in txns)


def test_turn_over_tcp_allocate_challenge_then_success() -> None:
    txns = _analyse("arkime_turn-over-tcp80.pcap").finish()
    alloc = [(t.response_class, t.error_code) for t in txns if t.method == "Allocate"]
    assert alloc == [("error", 401), ("success", None)]
    assert {t.transport for t in txns} == {"tcp"}


TSHARK_OPTIONS = {"arkime_turn-over-tcp80.pcap": ["-d", "tcp.port==80,stun"]}
# What tshark counts beyond EXPECTED: the ICMP-quoted Refresh success of ndpi_stun.pcap frame 24.
TSHARK_EXTRA = {"ndpi_stun.pcap": {"Refresh success": 1}}


def _name(mtype: int) -> str:
    m = parse_stun(struct.pack("!HHI", mtype, 0, MAGIC_COOKIE) + TID)
    return f"{m.method} {m.klass}"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_counts_are_what_tshark_says_now(name: str) -> None:
    """The live oracle: the checked-in EXPECTED figures equal a fresh tshark run."""
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {path} not present")
    out = subprocess.run(["tshark", "-n", "-r", str(path), *TSHARK_OPTIONS.get(name, []), "-T", "fields",
                          "-e", "stun.type", "-e", "classicstun.type"], capture_output=True, check=True).stdout
    counts: Counter[str] = Counter()
    for line in out.decode().splitlines():
        for value in line.replace("\t", ",").split(","):
            if value.strip():
                counts[_name(int(value, 16))] += 1
    expected = Counter(EXPECTED[name])
    expected.update(TSHARK_EXTRA.get(name, {}))
    assert counts == expected
