"""Write a SIP/RTP trunk capture for the analysis benchmark.

Two profiles:

* ``realistic`` (the default; ``benchmarks/realistic.py``): what a trunk capture looks like —
  per-packet arrival jitter (σ 0.3–20 ms per stream), mixed codecs and packetisation (G.711,
  G.729 20/30 ms, G.722, Opus at 48 kHz), telephone-event bursts, silence suppression, bursty
  loss 0–5 %, duplicates, reordering, sequence wraps, SSRC changes, RTCP, SIP over UDP, TCP and
  TLS, failed and cancelled calls.
* ``ideal``: the earlier benchmark, kept for comparison — one OSBiz (192.168.1.10) and a
  connector (35.246.178.13:5060) over SIP/UDP, REGISTER every 60 s, OPTIONS every 30 s, and
  ``--calls`` calls (INVITE / 100 / 180 / 200 / ACK, G.711 PCMA both ways every 20 ms, BYE / 200);
  every 10th call loses ≈ 2 % on one stream, every 7th has 0–6 ms arrival jitter.

Packets are written in time order, streaming (memory does not grow with the number of calls).

    python benchmarks/gen_capture.py --packets 1000000 -o /tmp/bench-1m.pcap
    python benchmarks/gen_capture.py --profile ideal --packets 1000000 -o /tmp/bench-ideal-1m.pcap
"""

from __future__ import annotations

import argparse
import heapq
import random
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from traces.pcap_writer import PcapWriter, eth_udp, ethernet, ip_packet

PBX, PBX_MEDIA = "192.168.1.10", "192.168.1.10"
CONNECTOR, FAR_MEDIA = "35.246.178.13", "35.246.178.20"
SIP_PORT = 5060
MS = 1_000_000  # ns
PTIME = 20 * MS
START_NS = 1_764_000_000 * 1_000_000_000
CALL_SPACING = 200 * MS  # a new call every 0.2 s
Event = tuple[int, int, bytes]  # (ts_ns, tiebreak, frame)


def sip(first: str, call_id: str, cseq: str, body: str = "", via_branch: str = "z9hG4bK1",
        src: str = PBX, dst: str = CONNECTOR, extra: str = "") -> bytes:
    headers = (
        f"{first}\r\nVia: SIP/2.0/UDP {src}:{SIP_PORT};branch={via_branch}\r\n"
        f"From: <sip:+49897007100@{PBX}>;tag=a{call_id[:8]}\r\nTo: <sip:+4930123456@{CONNECTOR}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:100@{src}:{SIP_PORT}>\r\n"
        f"Max-Forwards: 70\r\n{extra}"
    )
    if body:
        headers += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    else:
        headers += "Content-Length: 0\r\n\r\n"
    return headers.encode()


def sdp(addr: str, port: int, sess: int) -> str:
    return (f"v=0\r\no=- {sess} 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")


def _udp(src: str, dst: str, payload: bytes, sport: int = SIP_PORT, dport: int = SIP_PORT) -> bytes:
    return eth_udp(src, sport, dst, dport, payload)


def rtp_stream(rng: random.Random, t0: int, count: int, src: str, sport: int, dst: str, dport: int,
               ssrc: int, loss: float, jitter_ms: float) -> Iterator[Event]:
    """G.711 20-ms packets; the UDP checksum is 0 (legal over IPv4) so the headers are a template."""
    udp_hdr = struct.pack("!HHHH", sport, dport, 8 + 12 + 160, 0)
    prefix = ethernet(ip_packet(src, dst, 17, udp_hdr + bytes(172)))[:42]
    payload = bytes([0xD5]) * 160
    seq0, ts0 = rng.randrange(65536), rng.randrange(1 << 32)
    for k in range(count):
        if loss and rng.random() < loss:
            continue
        arrival = t0 + k * PTIME + (int(rng.random() * jitter_ms * MS) if jitter_ms else 0)
        hdr = struct.pack("!BBHII", 0x80, 8 | (0x80 if k == 0 else 0), (seq0 + k) & 0xFFFF,
                          (ts0 + k * 160) & 0xFFFFFFFF, ssrc)
        yield arrival, ssrc, prefix + hdr + payload


def call(rng: random.Random, i: int, t0: int, rtp_per_dir: int) -> Iterator[Event]:
    cid = f"{i:08x}-bench@{PBX}"
    pbx_port, far_port = 10000 + 2 * (i % 10000), 20000 + 2 * (i % 10000)
    inv = sip(f"INVITE sip:+4930123456@{CONNECTOR} SIP/2.0", cid, "1 INVITE", sdp(PBX_MEDIA, pbx_port, i))
    resp = [("SIP/2.0 100 Trying", 5), ("SIP/2.0 180 Ringing", 80)]
    yield t0, 0, _udp(PBX, CONNECTOR, inv)
    for line, dt in resp:
        yield t0 + dt * MS, 0, _udp(CONNECTOR, PBX, sip(line, cid, "1 INVITE", src=CONNECTOR))
    ans = t0 + (1000 + rng.randrange(2000)) * MS
    ok = sip("SIP/2.0 200 OK", cid, "1 INVITE", sdp(FAR_MEDIA, far_port, i), src=CONNECTOR)
    yield ans, 0, _udp(CONNECTOR, PBX, ok)
    yield ans + 3 * MS, 0, _udp(PBX, CONNECTOR, sip(f"ACK sip:{CONNECTOR} SIP/2.0", cid, "1 ACK"))
    loss = 0.02 if i % 10 == 3 else 0.0
    jitter = 6.0 if i % 7 == 5 else 0.0
    media_t0 = ans + 10 * MS
    a = rtp_stream(rng, media_t0, rtp_per_dir, PBX_MEDIA, pbx_port, FAR_MEDIA, far_port,
                   0x10000000 + i, loss, jitter)
    b = rtp_stream(rng, media_t0 + 7 * MS, rtp_per_dir, FAR_MEDIA, far_port, PBX_MEDIA, pbx_port,
                   0x20000000 + i, 0.0, jitter / 2)
    yield from heapq.merge(a, b)
    end = media_t0 + rtp_per_dir * PTIME + 20 * MS
    yield end, 0, _udp(PBX, CONNECTOR, sip(f"BYE sip:{CONNECTOR} SIP/2.0", cid, "2 BYE", via_branch="z9hG4bK2"))
    yield end + 30 * MS, 0, _udp(CONNECTOR, PBX, sip("SIP/2.0 200 OK", cid, "2 BYE", src=CONNECTOR))


def housekeeping(t0: int, t_end: int) -> Iterator[Event]:
    """REGISTER (401, then 200 with Expires) every 60 s and OPTIONS every 30 s until t_end."""
    n, t = 0, t0
    while t < t_end:
        n += 1
        cid = f"reg-{n}@{PBX}"
        reg = f"REGISTER sip:{CONNECTOR} SIP/2.0"
        yield t, 0, _udp(PBX, CONNECTOR, sip(reg, cid, f"{2 * n} REGISTER", extra="Expires: 120\r\n"))
        yield t + 20 * MS, 0, _udp(CONNECTOR, PBX, sip(
            "SIP/2.0 401 Unauthorized", cid, f"{2 * n} REGISTER", src=CONNECTOR,
            extra='WWW-Authenticate: Digest realm="bench", nonce="abc", algorithm=MD5\r\n'))
        yield t + 30 * MS, 0, _udp(PBX, CONNECTOR, sip(
            reg, cid, f"{2 * n + 1} REGISTER", via_branch="z9hG4bK3",
            extra='Expires: 120\r\nAuthorization: Digest username="x", realm="bench", nonce="abc", '
                  'uri="sip:bench", response="00000000000000000000000000000000"\r\n'))
        yield t + 55 * MS, 0, _udp(CONNECTOR, PBX, sip(
            "SIP/2.0 200 OK", cid, f"{2 * n + 1} REGISTER", src=CONNECTOR, extra="Expires: 120\r\n"))
        for off in (0, 30_000):
            ocid = f"opt-{n}-{off}@{PBX}"
            ts = t + (off + 500) * MS
            yield ts, 0, _udp(PBX, CONNECTOR, sip(f"OPTIONS sip:{CONNECTOR} SIP/2.0", ocid, "1 OPTIONS"))
            yield ts + 25 * MS, 0, _udp(CONNECTOR, PBX, sip("SIP/2.0 200 OK", ocid, "1 OPTIONS",
                                                           src=CONNECTOR))
        t += 60_000 * MS


def ideal(out: Path, packets: int, calls: int, seed: int) -> tuple[int, int]:
    """The ideal profile: (packets written, calls)."""
    calls = calls or max(1000, packets // 1000)
    rtp_per_dir = max(10, packets // calls // 2 - 4)
    rng = random.Random(seed)
    call_len = rtp_per_dir * PTIME + 3100 * MS
    t_end = START_NS + calls * CALL_SPACING + call_len
    sources = [housekeeping(START_NS, t_end)]
    sources += [call(rng, i, START_NS + 1000 * MS + i * CALL_SPACING, rtp_per_dir) for i in range(calls)]
    with out.open("wb") as fh:
        w = PcapWriter(fh)
        for ts, _tie, frame in heapq.merge(*sources, key=lambda e: e[0]):
            w.write(ts, frame)
    return w.count, calls


def realistic(out: Path, packets: int, calls: int, seed: int, concurrency: int, jitter_max_ms: float) -> tuple[int, int]:
    """The realistic profile (``benchmarks/realistic.py``): (packets written, calls)."""
    from benchmarks.realistic import TcpMessage, sources

    srcs, tcp, calls = sources(packets, calls, seed, concurrency=concurrency, jitter_max_ms=jitter_max_ms)
    with out.open("wb") as fh:
        w = PcapWriter(fh)
        for frame in tcp.handshake():
            w.write(START_NS, frame)
        for ts, item in heapq.merge(*srcs, key=lambda e: e[0]):
            if isinstance(item, TcpMessage):
                for k, frame in enumerate(tcp.message(item)):
                    w.write(ts + k * 50_000, frame)
            else:
                w.write(ts, item)
    return w.count, calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", required=True, type=Path)
    ap.add_argument("--profile", choices=("realistic", "ideal"), default="realistic")
    ap.add_argument("--packets", type=int, default=1_000_000, help="approximate packet count")
    ap.add_argument("--calls", type=int, default=0,
                    help="default: packets / 1000, at least 1000 (ideal); packets / 1600 (realistic)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=80, help="realistic: calls in progress at once")
    ap.add_argument("--jitter-max-ms", type=float, default=20.0,
                    help="realistic: the largest per-stream arrival jitter σ (ms)")
    args = ap.parse_args(argv)
    if args.profile == "ideal":
        count, calls = ideal(args.out, args.packets, args.calls, args.seed)
    else:
        count, calls = realistic(args.out, args.packets, args.calls, args.seed, args.concurrency,
                                 args.jitter_max_ms)
    print(f"{args.out}: {count} packets, {calls} calls ({args.profile})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
