"""Test-only driver: feed a capture file to ``RtpAnalyzer`` with scapy doing the decoding.

Stands in for the capture pipeline (``collectors.analyze``) so the media statistics can be
checked against tshark on their own. SDP is found by a minimal scan of UDP/TCP payloads (every
``c=``/``m=audio|video``/``a=rtpmap`` of a SIP body), announced in capture order like the SIP
analyser does it.
"""

from __future__ import annotations

import re
from pathlib import Path

from collectors.media.rtp import RtpAnalyzer

_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 18: ("G729", 8000), 9: ("G722", 8000), 13: ("CN", 8000)}
_CALL_ID = re.compile(rb"^(?:Call-ID|i)\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def sdp_endpoints(payload: bytes) -> list[tuple[str, int, dict[int, tuple[str, int]], str | None, bool]]:
    """(addr, port, payload map, call id, is RTP) of every m= line in a SIP message body."""
    body_at = payload.find(b"\r\n\r\n")
    if not payload.startswith((b"INVITE", b"SIP/2.0", b"ACK", b"UPDATE", b"PRACK")) or body_at < 0:
        return []
    body = payload[body_at + 4 :].decode("latin-1")
    if "m=" not in body:
        return []
    call = _CALL_ID.search(payload[:body_at])
    call_id = call.group(1).decode("latin-1") if call else None
    session_addr = None
    out = []
    current: list[object] | None = None
    for line in body.splitlines():
        if line.startswith("c=") and len(line.split()) >= 3:
            addr = line.split()[2].split("/")[0]
            if current is None:
                session_addr = addr
            else:
                current[0] = addr
        elif line.startswith("m="):
            parts = line[2:].split()
            fmts = {int(f): _STATIC.get(int(f), ("", 0)) for f in parts[3:] if f.isdigit()}
            port = parts[1].split("/")[0]
            current = [session_addr, int(port) if port.isdigit() else 0, fmts, parts[2].upper()]
            out.append(current)
        elif line.startswith("a=rtpmap:") and current is not None:
            pt, _, enc = line[9:].partition(" ")
            name, _, rate = enc.partition("/")
            if pt.isdigit():
                current[2][int(pt)] = (name, int(rate.split("/")[0]) if rate.split("/")[0].isdigit() else 0)  # type: ignore[index]
    return [
        (str(m[0]), int(m[1]), m[2], call_id, "RTP" in str(m[3]))  # type: ignore[call-overload, misc]
        for m in out
        if m[0]
    ]


def _link_to_ip(linktype: int, data: bytes) -> bytes | None:
    """Strip the link layer (Ethernet/802.1Q, Linux SLL/SLL2, BSD NULL/LOOP, raw IP)."""
    if linktype == 1:
        off, etype = 14, int.from_bytes(data[12:14], "big")
        while etype in (0x8100, 0x88A8) and len(data) >= off + 4:
            etype, off = int.from_bytes(data[off + 2 : off + 4], "big"), off + 4
        return data[off:] if etype in (0x0800, 0x86DD) else None
    if linktype == 113:
        return data[16:] if int.from_bytes(data[14:16], "big") in (0x0800, 0x86DD) else None
    if linktype == 276:
        return data[20:] if int.from_bytes(data[0:2], "big") in (0x0800, 0x86DD) else None
    if linktype in (0, 108):
        return data[4:]
    if linktype in (12, 14, 101, 228, 229):
        return data
    return None


def _udp_tcp(ip: bytes) -> tuple[str, str, int, bytes, bytes] | None:
    """(src, dst, protocol, L4 header, L4 payload) of an unfragmented IPv4/IPv6 packet."""
    import ipaddress

    if not ip:
        return None
    if ip[0] >> 4 == 4 and len(ip) >= 20:
        ihl, proto = (ip[0] & 0x0F) * 4, ip[9]
        if int.from_bytes(ip[6:8], "big") & 0x3FFF:
            return None  # fragment
        src, dst = str(ipaddress.IPv4Address(ip[12:16])), str(ipaddress.IPv4Address(ip[16:20]))
        body = ip[ihl : int.from_bytes(ip[2:4], "big")]
    elif ip[0] >> 4 == 6 and len(ip) >= 40:
        proto = ip[6]
        src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
        body = ip[40 : 40 + int.from_bytes(ip[4:6], "big")]
    else:
        return None
    if proto == 17 and len(body) >= 8:
        return src, dst, 17, body[:8], body[8 : int.from_bytes(body[4:6], "big")]
    if proto == 6 and len(body) >= 20:
        return src, dst, 6, body[:4], body[(body[12] >> 4) * 4 :]
    return None


def feed(path: Path, analyzer: RtpAnalyzer | None = None) -> RtpAnalyzer:
    """Decode ``path`` (scapy reads the file format) and offer every UDP datagram to the analyser;
    SDP in UDP or TCP payloads is announced first."""
    from scapy.utils import RawPcapReader

    rtp = analyzer or RtpAnalyzer()
    reader = RawPcapReader(str(path))
    try:
        for frame, (data, meta) in enumerate(reader, start=1):
            if hasattr(meta, "tshigh"):
                linktype = meta.linktype
                ts = ((meta.tshigh << 32) | meta.tslow) / meta.tsresol
            else:
                linktype = reader.linktype
                ts = meta.sec + meta.usec / (1e9 if getattr(reader, "nano", False) else 1e6)
            ip = _link_to_ip(linktype, data)
            decoded = _udp_tcp(ip) if ip else None
            if decoded is None:
                continue
            src, dst, proto, hdr, payload = decoded
            sport, dport = int.from_bytes(hdr[0:2], "big"), int.from_bytes(hdr[2:4], "big")
            if b"m=" in payload and b"v=0" in payload:
                for addr, port, pmap, call_id, is_rtp in sdp_endpoints(payload):
                    rtp.expect(addr, port, pmap, call_id, rtp=is_rtp)
                continue
            if proto == 17 and 5060 not in (sport, dport):
                rtp.on_udp_fields(frame, ts, src, sport, dst, dport, payload)
    finally:
        reader.close()
    return rtp
