"""A capture of one SIP/UDP call with DTMF both ways RFC 4733 from the caller (digits 5 and 9, as a
SIP phone sends them: 20-ms packets with growing durations, the end packet three times) and SIP
INFO from the callee (``application/dtmf-relay`` '#', ``application/dtmf`` '7'), with G.711 A-law
RTP in both directions around them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from traces.pcap_writer import PcapWriter, eth_udp

CALLER, CALLEE = "192.0.2.10", "198.51.100.20"
CALLER_RTP, CALLEE_RTP = 20000, 30000
CALL_ID = "dtmf-call-1@192.0.2.10"
T0 = 1_700_000_000.0


def _sdp(addr: str, port: int, session: int) -> bytes:
    return (f"v=0\r\no=- {session} 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=fmtp:101 0-15\r\na=sendrecv\r\n").encode()


def _sip(start: str, cseq: str, src: str, dst: str, *, body: bytes = b"", ctype: str = "",
         to_tag: bool = True) -> bytes:
    headers = [
        start,
        f"Via: SIP/2.0/UDP {src}:5060;branch=z9hG4bK-{zlib.crc32((start + cseq).encode()):08x}",
        f"From: <sip:+4989700710@{CALLER}>;tag=a1",
        f"To: <sip:+4930123456@{CALLEE}>" + (";tag=b2" if to_tag else ""),
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq}",
        f"Contact: <sip:{src}:5060>",
        "Max-Forwards: 70",
    ]
    if ctype:
        headers.append(f"Content-Type: {ctype}")
    headers.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def _rtp(seq: int, stamp: int, ssrc: int, pt: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, stamp & 0xFFFFFFFF, ssrc) + payload


def write_dtmf_call(path: Path) -> Path:
    frames: list[tuple[float, bytes]] = []

    def sip(t: float, src: str, dst: str, data: bytes) -> None:
        frames.append((T0 + t, eth_udp(src, 5060, dst, 5060, data)))

    sip(0.0, CALLER, CALLEE, _sip(f"INVITE sip:+4930123456@{CALLEE} SIP/2.0", "1 INVITE", CALLER, CALLEE,
                                  body=_sdp(CALLER, CALLER_RTP, 1), ctype="application/sdp", to_tag=False))
    sip(0.05, CALLEE, CALLER, _sip("SIP/2.0 100 Trying", "1 INVITE", CALLEE, CALLER, to_tag=False))
    sip(0.5, CALLEE, CALLER, _sip("SIP/2.0 200 OK", "1 INVITE", CALLEE, CALLER, body=_sdp(CALLEE, CALLEE_RTP, 2),
                                  ctype="application/sdp"))
    sip(0.55, CALLER, CALLEE, _sip(f"ACK sip:+4930123456@{CALLEE} SIP/2.0", "1 ACK", CALLER, CALLEE))
    # 4 s of audio both ways; the caller presses 5 at 1.0 s and 9 at 2.0 s (RFC 4733, PT 101)
    for side, (src, sport, dst, dport, ssrc) in enumerate(((CALLER, CALLER_RTP, CALLEE, CALLEE_RTP, 0x1111),
                                                           (CALLEE, CALLEE_RTP, CALLER, CALLER_RTP, 0x2222))):
        seq, stamp = 1000 * (side + 1), 160_000 * (side + 1)
        n = 0
        while n < 200:
            t = 0.6 + 0.02 * n
            key = {50: 5, 100: 9}.get(n) if side == 0 else None
            if key is not None:
                start = stamp
                for k in range(8):  # 7 packets with growing duration, then 3 end packets
                    end = k >= 5
                    duration = 160 * (k + 1) if not end else 160 * 6
                    payload = bytes((key, (0x80 if end else 0) | 10)) + duration.to_bytes(2, "big")
                    frames.append((T0 + t + 0.02 * k, eth_udp(src, sport, dst, dport,
                                                              _rtp(seq, start, ssrc, 101, payload, marker=k == 0))))
                    seq += 1
                n += 8
                stamp += 160 * 8
                continue
            frames.append((T0 + t, eth_udp(src, sport, dst, dport, _rtp(seq, stamp, ssrc, 8, b"\xd5" * 160))))
            seq += 1
            stamp += 160
            n += 1
    sip(3.0, CALLEE, CALLER, _sip(f"INFO sip:{CALLER}:5060 SIP/2.0", "1 INFO", CALLEE, CALLER,
                                  body=b"Signal=#\r\nDuration=160\r\n", ctype="application/dtmf-relay"))
    sip(3.02, CALLER, CALLEE, _sip("SIP/2.0 200 OK", "1 INFO", CALLER, CALLEE))
    sip(3.5, CALLEE, CALLER, _sip(f"INFO sip:{CALLER}:5060 SIP/2.0", "2 INFO", CALLEE, CALLER,
                                  body=b"7", ctype="application/dtmf"))
    sip(3.52, CALLER, CALLEE, _sip("SIP/2.0 200 OK", "2 INFO", CALLER, CALLEE))
    sip(4.7, CALLER, CALLEE, _sip(f"BYE sip:+4930123456@{CALLEE} SIP/2.0", "2 BYE", CALLER, CALLEE))
    sip(4.75, CALLEE, CALLER, _sip("SIP/2.0 200 OK", "2 BYE", CALLEE, CALLER))
    frames.sort(key=lambda f: f[0])
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        for ts, frame in frames:
            writer.write(ts, frame)
    return path
