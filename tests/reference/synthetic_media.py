"""A deterministic synthetic call with every RTP quirk the shared corpus lacks.

Used by ``make_tshark_refs.py`` (to store tshark's numbers for it) and by
``tests/collectors/test_tshark_agreement.py`` (to check the pipeline against them and against
live tshark). The bytes depend only on the arguments, so the stored references stay valid.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

# variant name → (link layer, IPv6); Ethernet/IPv4 takes the pipeline's batch path, the others
# the per-packet path
VARIANTS = {"ethernet": ("ethernet", False), "vlan": ("vlan", False), "sll": ("sll", False),
            "ipv6": ("ethernet", True)}

def _sip(first: str, src: str, dst: str, cseq: str, body: str) -> bytes:
    head = (f"{first}\r\nVia: SIP/2.0/UDP {src}:5060;branch=z9hG4bK{len(first)}\r\n"
            f"From: <sip:100@{_host(src)}>;tag=a1\r\nTo: <sip:+4930123456@{_host(dst)}>"
            f"{';tag=b1' if first[0] == 'S' else ''}\r\n"
            f"Call-ID: synthetic-1\r\nCSeq: {cseq}\r\nContact: <sip:100@{_host(src)}:5060>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    return head.encode()


def _host(addr: str) -> str:
    return f"[{addr}]" if ":" in addr else addr


def _sdp(addr: str, port: int) -> str:
    fam = "IP6" if ":" in addr else "IP4"
    return (f"v=0\r\no=- 1 1 IN {fam} {addr}\r\ns=-\r\nc=IN {fam} {addr}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 13 101 11 96\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=rtpmap:11 L16/44100\r\na=rtpmap:96 opus/48000/2\r\n")


def _rtp(seq: int, ts: int, ssrc: int, pt: int, marker: bool = False, size: int = 160) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + bytes(size)


def _link_udp(link: str) -> Any:
    """A frame builder for Ethernet, 802.1Q-tagged Ethernet or Linux SLL (the pipeline's fast lane
    takes plain Ethernet/IPv4 only, so the other two exercise the per-packet path)."""
    from traces.pcap_writer import eth_udp, ip_packet, udp_segment

    def build(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
        if link == "ethernet":
            return eth_udp(src, sport, dst, dport, payload)
        ip = ip_packet(src, dst, 17, udp_segment(src, sport, dst, dport, payload))
        if link == "vlan":
            return bytes.fromhex("020000000002020000000001") + struct.pack("!HHH", 0x8100, 100, 0x0800) + ip
        return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + ip  # Linux cooked (SLL)

    return build


def write_quirky_call(path: Path, seed: int = 7, link: str = "ethernet", ipv6: bool = False) -> None:
    """SIP offer/answer, then: PCMA with seq and timestamp wrap, loss, duplicates, reordering,
    markers, comfort noise, a telephone-event burst and a timestamp restart; opus (48 kHz, dynamic)
    with an SSRC change; L16 at 44.1 kHz (Wireshark's integer clock/1000); and a G.729 stream that
    no SDP announces (heuristic)."""
    from traces.pcap_writer import PcapWriter

    eth_udp = _link_udp(link)
    side_a, side_b, hx, hy = ("2001:db8::10", "2001:db8:1::20", "2001:db8::99", "2001:db8::98") if ipv6 else (
        "192.168.1.10", "35.246.178.20", "10.9.9.9", "10.9.9.8")
    rng = random.Random(seed)
    t0 = 1_764_000_000.0
    ev: list[tuple[float, bytes]] = [
        (t0, eth_udp(side_a, 5060, side_b, 5060, _sip(f"INVITE sip:+4930123456@{_host(side_b)} SIP/2.0", side_a, side_b, "1 INVITE",
                                               _sdp(side_a, 40000)))),
        (t0 + 0.5, eth_udp(side_b, 5060, side_a, 5060, _sip("SIP/2.0 200 OK", side_b, side_a, "1 INVITE", _sdp(side_b, 20000)))),
    ]
    start = t0 + 1.0
    # PCMA A→B
    seq, ts = 65500, (1 << 32) - 8000
    for k in range(1500):
        seq += 1
        ts += 160
        if k == 1200:
            ts -= 100_000  # a timestamp restart: tshark calls what follows out of time
        arrive = start + 0.02 * k + rng.uniform(0, 0.003)
        if rng.random() < 0.01:
            continue  # lost
        pt, marker = 8, k % 250 == 0
        if 700 <= k < 712:
            if k % 4:
                continue  # silence: comfort noise every 4th slot only
            pt = 13
        if 900 <= k < 908:
            pt, marker = 101, k == 900
            data = _rtp(seq, ts - 160 * (k - 900), 0x1111, pt, marker, 4)
        else:
            data = _rtp(seq, ts, 0x1111, pt, marker)
        if k % 97 == 0:
            arrive += 0.025  # reordered behind the next packet
        ev.append((arrive, eth_udp(side_a, 40000, side_b, 20000, data)))
        if rng.random() < 0.005:
            ev.append((arrive + 0.001, eth_udp(side_a, 40000, side_b, 20000, data)))  # duplicate
    # opus B→A, SSRC change half way
    seq, ts = rng.randrange(65536), rng.randrange(1 << 32)
    for k in range(1000):
        ssrc = 0x2222 if k < 500 else 0x2AAA
        if k == 500:
            seq, ts = rng.randrange(65536), rng.randrange(1 << 32)
        seq += 1
        ts += 960
        if rng.random() < 0.02:
            continue
        ev.append((start + 0.02 * k + rng.uniform(0, 0.008), eth_udp(side_b, 20000, side_a, 40000, _rtp(seq, ts, ssrc, 96))))
    # L16 44.1 kHz on the PCMA flow, another SSRC
    for k in range(300):
        ev.append((start + 0.013 + 0.02 * k + rng.uniform(0, 0.002),
                   eth_udp(side_a, 40000, side_b, 20000, _rtp(1000 + k, 882 * k, 0x3333, 11, size=200))))
    # G.729 that no SDP announces
    for k in range(200):
        ev.append((start + 0.007 + 0.02 * k + rng.uniform(0, 0.004),
                   eth_udp(hx, 30000, hy, 30002, _rtp(5 + k, 160 * k, 0x4444, 18, size=20))))
    ev.sort(key=lambda e: e[0])
    with path.open("wb") as fh:
        writer = PcapWriter(fh, linktype=113 if link == "sll" else 1)
        for t, frame in ev:
            writer.write(t, frame)
