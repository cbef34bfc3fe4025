"""Seed inputs per fuzz target: well-formed examples the mutators start from.

Capture targets start from the heads of the real captures in ``../shared/pcaps`` (when present);
the others from small protocol examples written here and the repository's example site files.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT.parent / "shared" / "pcaps"

SDP = (b"v=0\r\no=osbiz 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
       b"m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
       b"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")
INVITE = (b"INVITE sip:+4989123@phoneapp.unify.com SIP/2.0\r\n"
          b"Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds\r\n"
          b"Max-Forwards: 70\r\nTo: <sip:+4989123@phoneapp.unify.com>\r\n"
          b"From: \"Alice\" <sip:100@192.0.2.10>;tag=1928301774\r\nCall-ID: a84b4c76e66710@192.0.2.10\r\n"
          b"CSeq: 314159 INVITE\r\nContact: <sip:100@192.0.2.10:5061;transport=tls>\r\n"
          b"Content-Type: application/sdp\r\nContent-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP)
OK = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds\r\n"
      b"To: <sip:+4989123@phoneapp.unify.com>;tag=a6c85cf\r\nFrom: <sip:100@192.0.2.10>;tag=1928301774\r\n"
      b"Call-ID: a84b4c76e66710@192.0.2.10\r\nCSeq: 314159 INVITE\r\nContent-Length: 0\r\n\r\n")
REGISTER_401 = (b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKnashds7\r\n"
                b"To: <sip:100@example.com>;tag=x\r\nFrom: <sip:100@example.com>;tag=456248\r\n"
                b"Call-ID: 843817637684230@998sdasdh09\r\nCSeq: 1826 REGISTER\r\n"
                b'WWW-Authenticate: Digest realm="example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359"\r\n'
                b"Content-Length: 0\r\n\r\n")
STUN = (struct.pack("!HHI12s", 0x0001, 8, 0x2112A442, b"0123456789ab") + struct.pack("!HH4s", 0x8022, 4, b"test"))
STUN_OK = (struct.pack("!HHI12s", 0x0101, 12, 0x2112A442, b"0123456789ab")
           + struct.pack("!HHBBH4s", 0x0020, 8, 0, 1, 0x1234 ^ 0x2112, bytes(a ^ b for a, b in zip(
               bytes([192, 0, 2, 1]), b"\x21\x12\xa4\x42", strict=True))))
RTP = struct.pack("!BBHII", 0x80, 8, 1000, 160000, 0xDEADBEEF) + bytes(160)
RTCP = (struct.pack("!BBHI", 0x81, 200, 12, 0xDEADBEEF) + struct.pack("!IIII", 1, 2, 3, 4) + struct.pack("!II", 5, 6)
        + struct.pack("!I", 0xCAFEBABE) + struct.pack("!IIIII", 0x01000005, 7, 8, 9, 10))
TELEPHONE_EVENT = bytes([5, 0x8A, 0x03, 0x20])
TLS_HELLO = bytes.fromhex("16030100310100002d0303") + bytes(32) + bytes.fromhex("000002002f01000002ff01000100")
TRACE = (b'(SIP_SA [ldh:192.0.2.10] 2a01 "06/01/2026 10:00:00.000001" SIP message out)\r\n'
         b"from 192.0.2.10:5061 to 35.246.178.13:65061\r\n") + OK + b"<<OUT-END>>\r\n"
JWT = (b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0ZW5hbnQiLCJleHAiOjE4OTM0NTYwMDB9."
       b"c2lnbmF0dXJlLW5vdC1jaGVja2Vk")
GCP = b'{"syncToken": "1", "prefixes": [{"ipv4Prefix": "34.159.0.0/16", "scope": "europe-west3"}]}'
KEYLOG = (b"# keys\nCLIENT_RANDOM " + b"ab" * 32 + b" " + b"cd" * 48 + b"\n"
          b"CLIENT_TRAFFIC_SECRET_0 " + b"01" * 32 + b" " + b"ef" * 32 + b"\n")


def _capture_heads(limit: int) -> list[bytes]:
    if not PCAPS.is_dir():
        return []
    return [p.read_bytes()[:limit] for p in sorted(PCAPS.glob("*.pcap*"))]


def _frames() -> list[bytes]:
    """Link-layer frames (Ethernet, link type byte first) from the real captures' first packets."""
    from collectors.capture.decode import LINK_NAMES
    from collectors.capture.reader import CaptureParser
    from core.errors import ParseError

    types = sorted(LINK_NAMES)
    out: list[bytes] = []
    for head in _capture_heads(1 << 16):
        parser = CaptureParser()
        try:
            for batch in parser.feed(head):
                for off, cap, lt in zip(batch.data_off[:20].tolist(), batch.caplen[:20].tolist(),
                                        batch.linktype[:20].tolist(), strict=False):
                    if lt in types:
                        out.append(bytes([types.index(lt)]) + bytes(batch.buf[off:off + cap]))
        except ParseError:
            continue
    return out


def seeds(target: str) -> list[bytes]:
    if target in ("capture_reader", "pipeline"):
        return _capture_heads(16384 if target == "pipeline" else 8192)
    if target == "link_decode":
        return _frames()
    return {
        "trace_log": [TRACE],
        "sip_message": [INVITE, OK, REGISTER_401],
        "sip_stream": [b"\x05" + INVITE + OK + b"\r\n\r\n" + REGISTER_401],
        "sdp": [SDP],
        "digest_challenge": [b'Digest realm="example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", '
                             b'algorithm=SHA-256, qop="auth", opaque="5ccc069c403ebaf9f0171e9517f40e41"'],
        "digest_credentials": [b'Digest username="100", realm="example.com", nonce="ea9c8e88df84f1cec4341ae6", '
                               b'uri="sip:example.com", response="6629fae49393a05397450978507c4ef1", qop=auth, '
                               b'nc=00000001, cnonce="0a4f113b"'],
        "stun_message": [STUN, STUN_OK],
        "stun_datagram": [STUN, STUN_OK],
        "stun_stream": [b"\x04" + STUN + STUN_OK, b"\x07" + struct.pack("!H", len(STUN)) + STUN],
        "rtp": [RTP],
        "rtcp": [RTCP],
        "telephone_event": [TELEPHONE_EVENT],
        "tls_records": [b"\x10" + TLS_HELLO + bytes.fromhex("15030300020228")],
        "site_yaml": [p.read_bytes() for p in sorted((ROOT / "examples").glob("site-*.yaml"))],
        "jwt": [JWT],
        "gcp_ranges": [GCP],
        "keylog": [KEYLOG],
    }[target]


def write_seeds(target: str, directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    items = seeds(target)
    for data in items:
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return len(items)
