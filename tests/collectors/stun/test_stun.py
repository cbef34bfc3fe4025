"""STUN transaction matcher; real captures against tshark counts (the codec: tests/core/wire)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sip"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "core" / "wire"))
from sip_scapy_feed import PCAPS, Reassembler, packets
from test_stun_codec import TID, attr, message, xor_v4

from collectors.capture.packets import StreamData, UdpPacket
from collectors.stun.analyzer import StunAnalyzer
from core.wire.stun import MAGIC_COOKIE, parse_stun


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
