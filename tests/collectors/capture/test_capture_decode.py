"""Link layers, tunnels, IP and fragment reassembly: crafted frames and the real shared captures."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from capture_craft import (
    PCAPS,
    SIP_OPTIONS,
    eth,
    ipv4_fragments,
    ipv4_tcp,
    ipv4_udp,
    ipv6_fragments,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.decode import Decoder, link_payload, parse_ip
from collectors.capture.files import CaptureFile
from collectors.capture.packets import IcmpUnreachable, TcpSegment, UdpPacket
from core.analysis import ErrorItem
from core.errors import ParseError
from traces.pcap_writer import ip_packet, udp_segment

UDP4 = ipv4_udp("10.0.0.1", 5060, "10.0.0.2", 5060, SIP_OPTIONS)
UDP6 = ip_packet("2001:db8::1", "2001:db8::2", 17, udp_segment("2001:db8::1", 5060, "2001:db8::2", 5060, SIP_OPTIONS))


class Sink:
    def __init__(self) -> None:
        self.udp_: list[UdpPacket] = []
        self.tcp_: list[TcpSegment] = []
        self.icmp_: list[IcmpUnreachable] = []
        self.errors: list[ErrorItem] = []

    def udp(self, pkt: UdpPacket) -> None:
        self.udp_.append(pkt)

    def tcp(self, seg: TcpSegment) -> None:
        self.tcp_.append(seg)

    def icmp(self, msg: IcmpUnreachable) -> None:
        self.icmp_.append(msg)

    def error(self, item: ErrorItem) -> None:
        self.errors.append(item)


def decode(linktype: int, *frames: bytes) -> Sink:
    sink = Sink()
    dec = Decoder(sink)
    for i, f in enumerate(frames, 1):
        dec.decode(i, float(i), linktype, f)
    dec.finish()
    return sink


def one_sip(sink: Sink, src: str = "10.0.0.1") -> UdpPacket:
    assert not sink.errors, sink.errors
    assert len(sink.udp_) == 1
    pkt = sink.udp_[0]
    assert (pkt.src, pkt.sport, pkt.dport, pkt.payload) == (src, 5060, 5060, SIP_OPTIONS)
    return pkt


def test_ethernet_ipv4_and_ipv6() -> None:
    one_sip(decode(1, eth(0x0800, UDP4)))
    one_sip(decode(1, eth(0x86DD, UDP6)), "2001:db8::1")


def test_ethernet_padding_is_ignored() -> None:
    one_sip(decode(1, eth(0x0800, UDP4) + bytes(30)))


@pytest.mark.parametrize("tags", [((0x8100, 100),), ((0x88A8, 10), (0x8100, 20)), ((0x9100, 1), (0x8100, 2))])
def test_vlan_and_qinq(tags: tuple[tuple[int, int], ...]) -> None:
    one_sip(decode(1, eth(0x0800, UDP4, tags)))


def test_linux_sll_and_sll2() -> None:
    sll = struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + UDP4
    one_sip(decode(113, sll))
    sll2 = struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, bytes(8)) + UDP6
    one_sip(decode(276, sll2), "2001:db8::1")


@pytest.mark.parametrize("linktype", [12, 14, 101, 228])
def test_raw_ipv4(linktype: int) -> None:
    one_sip(decode(linktype, UDP4))


@pytest.mark.parametrize("linktype", [101, 229])
def test_raw_ipv6(linktype: int) -> None:
    one_sip(decode(linktype, UDP6), "2001:db8::1")


@pytest.mark.parametrize(("fmt", "af", "ip"), [("<I", 2, UDP4), (">I", 2, UDP4), ("<I", 24, UDP6),
                                               ("<I", 28, UDP6), (">I", 30, UDP6), ("<I", 10, UDP6)])
def test_bsd_null_both_byte_orders(fmt: str, af: int, ip: bytes) -> None:
    one_sip(decode(0, struct.pack(fmt, af) + ip), "10.0.0.1" if ip is UDP4 else "2001:db8::1")


def test_openbsd_loop_is_network_order() -> None:
    one_sip(decode(108, struct.pack(">I", 2) + UDP4))


def test_pppoe_session_with_ppp() -> None:
    ppp = struct.pack("!H", 0x0021) + UDP4
    pppoe = struct.pack("!BBHH", 0x11, 0, 0x1234, len(ppp)) + ppp
    one_sip(decode(1, eth(0x8864, pppoe)))


def _outer(proto: int, inner: bytes) -> bytes:
    return eth(0x0800, ip_packet("192.0.2.1", "192.0.2.2", proto, inner))


def test_gre_plain_and_with_key_and_sequence() -> None:
    one_sip(decode(1, _outer(47, struct.pack("!HH", 0, 0x0800) + UDP4)))
    gre = struct.pack("!HHII", 0x3000, 0x0800, 7, 9) + UDP4  # K and S bits
    one_sip(decode(1, _outer(47, gre)))


def test_gre_transparent_ethernet_bridging() -> None:
    one_sip(decode(1, _outer(47, struct.pack("!HH", 0, 0x6558) + eth(0x0800, UDP4, ((0x8100, 5),)))))


def test_erspan_type_ii_and_iii() -> None:
    ii = struct.pack("!HHI", 0x1000, 0x88BE, 1) + struct.pack("!II", 0x10000001, 0) + eth(0x0800, UDP4)
    one_sip(decode(1, _outer(47, ii)))
    iii_hdr = struct.pack("!III", 0x20000001, 0, 1) + bytes(8)  # O flag set: 8-byte subheader follows
    iii = struct.pack("!HHI", 0x1000, 0x22EB, 1) + iii_hdr + eth(0x0800, UDP4)
    one_sip(decode(1, _outer(47, iii)))


def test_pptp_gre_carrying_ppp() -> None:
    gre = struct.pack("!HHHHI", 0x3001, 0x880B, 10, 0, 1) + b"\xff\x03\x00\x21" + UDP4  # K, S, version 1
    one_sip(decode(1, _outer(47, gre)))


def test_ip_in_ip_and_ipv6_in_ipv4() -> None:
    one_sip(decode(1, _outer(4, UDP4)))
    one_sip(decode(1, _outer(41, UDP6)), "2001:db8::1")


def test_vxlan() -> None:
    vx = udp_segment("192.0.2.1", 40000, "192.0.2.2", 4789, struct.pack("!II", 0x08000000, 0x100) + eth(0x0800, UDP4))
    one_sip(decode(1, eth(0x0800, ip_packet("192.0.2.1", "192.0.2.2", 17, vx))))


def test_gtp_and_sctp_are_unsupported_not_malformed() -> None:
    gtp = udp_segment("192.0.2.1", 2152, "192.0.2.2", 2152, b"\x30\xff\x00\x10" + bytes(4) + UDP4[:8])
    s = decode(1, eth(0x0800, ip_packet("192.0.2.1", "192.0.2.2", 17, gtp)),
               eth(0x0800, ip_packet("192.0.2.1", "192.0.2.2", 132, bytes(28))))
    assert [(e.kind, e.layer) for e in s.errors] == [("unsupported", "gtp"), ("unsupported", "sctp")]
    assert not s.udp_


def test_ipv4_fragments_out_of_order_are_reassembled() -> None:
    big = SIP_OPTIONS + b"X" * 3000
    l4 = udp_segment("10.0.0.1", 5060, "10.0.0.2", 5060, big)
    frags = ipv4_fragments("10.0.0.1", "10.0.0.2", 17, l4, 1480)
    s = decode(1, *(eth(0x0800, f) for f in [frags[2], frags[0], frags[1]]))
    assert not s.errors and len(s.udp_) == 1
    assert s.udp_[0].payload == big and s.udp_[0].frame == 3  # the frame that completed it


def test_ipv6_fragments_are_reassembled() -> None:
    big = SIP_OPTIONS + b"Y" * 2500
    l4 = udp_segment("2001:db8::1", 5060, "2001:db8::2", 5060, big)
    s = decode(1, *(eth(0x86DD, f) for f in ipv6_fragments("2001:db8::1", "2001:db8::2", 17, l4, 1232)))
    assert not s.errors and [p.payload for p in s.udp_] == [big]


def test_incomplete_fragments_are_reported() -> None:
    l4 = udp_segment("10.0.0.1", 5060, "10.0.0.2", 5060, b"Z" * 3000)
    s = decode(1, eth(0x0800, ipv4_fragments("10.0.0.1", "10.0.0.2", 17, l4, 1480)[0]))
    assert not s.udp_ and [e.kind for e in s.errors] == ["truncated"] and s.errors[0].frame == 1


def test_icmp_port_unreachable_names_the_quoted_flow() -> None:
    quoted = UDP4[:28]
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + quoted
    s = decode(1, eth(0x0800, ip_packet("10.0.0.2", "10.0.0.1", 1, icmp)))
    assert [(m.proto, m.src, m.dst, m.dport, m.code) for m in s.icmp_] == [("udp", "10.0.0.1", "10.0.0.2", 5060, 3)]


def test_tcp_segment_fields() -> None:
    s = decode(1, eth(0x0800, ipv4_tcp("10.0.0.1", 40000, "10.0.0.2", 5060, 1000, 2000, 0x18, b"hello")))
    seg = s.tcp_[0]
    assert (seg.sport, seg.dport, seg.seq, seg.ack, seg.flags, seg.payload) == (40000, 5060, 1000, 2000, 0x18, b"hello")


def test_malformed_frames_become_error_items() -> None:
    bad_udp_len = ip_packet("10.0.0.1", "10.0.0.2", 17, b"\x13\xc4\x13\xc4\x00\x02\x00\x00")
    s = decode(1, eth(0x0800, b"\x45" + bytes(5)), eth(0x0800, bad_udp_len))
    assert [e.kind for e in s.errors] == ["malformed", "malformed"] and [e.frame for e in s.errors] == [1, 2]


# -- hostile bytes ------------------------------------------------------------------------------

LINKTYPES = [0, 1, 9, 12, 14, 101, 108, 113, 228, 229, 276]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(LINKTYPES), st.binary(max_size=200))
def test_link_and_ip_parsers_raise_only_parse_error(linktype: int, data: bytes) -> None:
    try:
        version, ip = link_payload(linktype, data)
        if version:
            parse_ip(version, ip)
    except ParseError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(LINKTYPES), st.sampled_from([b"", eth(0x0800, b"")[:14], eth(0x86DD, b"")[:14],
                                                     b"\x45", b"\x60"]), st.binary(max_size=200))
def test_decoder_never_raises(linktype: int, prefix: bytes, data: bytes) -> None:
    sink = Sink()
    Decoder(sink).decode(1, 0.0, linktype, prefix + data)
    assert all(e.frame == 1 for e in sink.errors)


# -- real captures --------------------------------------------------------------------------------

def decode_file(name: str) -> tuple[Sink, Decoder]:
    path: Path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {name} not found in {PCAPS}")
    sink = Sink()
    dec = Decoder(sink)
    cf = CaptureFile(path)
    for b in cf.batches():
        for i in range(len(b)):
            o, c = int(b.data_off[i]), int(b.caplen[i])
            dec.decode(b.first_frame + i, float(b.ts[i]), int(b.linktype[i]), b.buf[o:o + c], c < int(b.orig_len[i]))
    dec.finish()
    assert cf.problem is None
    return sink, dec


def test_real_sll2() -> None:
    s, dec = decode_file("zeek_linux_dlt_sll2.pcap")
    assert not s.errors and dec.non_ip == 2  # the two ARP frames; the rest is ICMP/ICMPv6


def test_real_dlt_null_ipv4_and_ipv6() -> None:
    s, _ = decode_file("rtpproxy_DLT_NULL.a.pcap")
    assert len(s.udp_) == 600 and not s.errors
    assert {":" in p.src for p in s.udp_} == {False, True}


def test_real_gre_ppp_multi_interface() -> None:
    s, _ = decode_file("ndpi_gre_multi-if.pcapng")
    assert len(s.udp_) == 1 and s.udp_[0].payload.startswith(b"SIP/2.0 100 Trying")


def test_real_erspan_every_packet_is_sip() -> None:
    s, _ = decode_file("heplify_erspan_sip_ipv4_udp.pcapng")
    assert len(s.udp_) == 140 and not s.errors
    assert all(p.payload[:3] in (b"SIP", b"INV", b"ACK", b"BYE", b"SUB", b"NOT", b"REF") for p in s.udp_)


def test_real_ip_in_ip() -> None:
    s, _ = decode_file("sngrep_ipip.pcap")
    assert len(s.tcp_) == 4 and not s.errors


def test_real_ipv6_fragments() -> None:
    s, _ = decode_file("sngrep_ipv6frag.pcap")
    invites = [p for p in s.udp_ if p.payload.startswith(b"INVITE")]
    assert len(s.udp_) == 32 and len(invites) == 2 and not s.errors
    assert all(len(p.payload) > 1500 for p in invites)


def test_real_qinq() -> None:
    s, _ = decode_file("arkime_twovlan.pcap")
    assert len(s.tcp_) == 6 and not s.errors


def test_real_raw_ipv4_long_sip() -> None:
    s, _ = decode_file("zeek_sip-long-request-response-paths.pcap")
    assert len(s.udp_) == 2 and s.udp_[0].payload.startswith(b"OPTIONS")


def test_real_pppoe() -> None:
    s, _ = decode_file("pcpp_sip_reqs.pcap")
    methods = sorted(p.payload.split(b" ", 1)[0] for p in s.udp_)
    assert methods == [b"ACK", b"BYE", b"CANCEL", b"INVITE"]


def test_real_sctp_and_gtp_are_unsupported() -> None:
    s, _ = decode_file("heplify_sip_sctp.pcap")
    assert {(e.kind, e.layer) for e in s.errors} == {("unsupported", "sctp")}
    s, _ = decode_file("arkime_gtp-iphone_volte.pcap")
    assert {(e.kind, e.layer) for e in s.errors} == {("unsupported", "gtp")}


def test_real_icmp_unreachable() -> None:
    s, _ = decode_file("ipfixprobe_sip.pcap")
    assert len(s.icmp_) == 5 and {m.proto for m in s.icmp_} == {"udp"}


def test_unknown_link_type_is_unsupported() -> None:
    s = decode(147, b"\x00" * 40)
    assert [(e.kind, e.layer, e.frame) for e in s.errors] == [("unsupported", "link", 1)]


def test_fragment_past_64k_is_malformed_and_pending_datagrams_are_bounded() -> None:
    src, dst = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    past = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 16, 7, 8190, 64, 17, 0, src, dst) + bytes(16)  # ends at 65536
    s = decode(1, eth(0x0800, past))
    assert [e.kind for e in s.errors] == ["malformed"] and "beyond 65535" in s.errors[0].message
    sink = Sink()
    dec = Decoder(sink)
    for i in range(1000):  # first fragments of 1000 different datagrams, never completed
        frag = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, i, 0x2000, 64, 17, 0, src, dst) + bytes(8)
        dec.decode(i + 1, float(i) * 0.001, 1, eth(0x0800, frag))
    assert len(dec.frags.leftovers()) <= dec.frags.max_pending and dec.frags.expired == 1000 - len(dec.frags.leftovers())
