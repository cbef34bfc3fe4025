"""The plain line-by-line SDP parser that ``core.wire.sdp.parse_sdp`` replaced for speed: the
oracle of the property test that both give the same value, or the same error at the same offset."""

from __future__ import annotations

import ipaddress
import math

from core.errors import ParseError
from core.wire.digits import decimal
from core.wire.sdp import (
    DIRECTIONS,
    MAX_MEDIA,
    MAX_SDP_BYTES,
    MAX_SDP_LINES,
    STATIC_PAYLOAD_TYPES,
    Sdp,
    SdpMedia,
)


def _address(value: str, offset: int) -> str:
    # c=<nettype> <addrtype> <connection-address>; multicast may carry /ttl/count suffixes.
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN":
        raise ParseError(f"SDP c= line malformed: {value[:40]!r}", offset)
    addr = parts[2].split("/")[0]
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr  # an FQDN is legal (RFC 8866 §5.7); keep it as given


def reference_parse_sdp(data: bytes) -> Sdp:
    """What ``parse_sdp`` returns or raises for ``data``, read line by line the plain way."""
    if len(data) > MAX_SDP_BYTES:
        raise ParseError(f"SDP body exceeds {MAX_SDP_BYTES} bytes", 0)
    text = data.decode("utf-8", "replace")
    ascii_text = data.isascii()  # then a line's length in characters is its length in bytes
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > MAX_SDP_LINES:
        raise ParseError(f"SDP has more than {MAX_SDP_LINES} lines", 0)
    origin: str | None = None
    session_addr: str | None = None
    session_dir = "sendrecv"
    media: list[dict[str, object]] = []
    offset = 0
    seen_v = False
    for raw in lines:
        line = raw.rstrip("\r")
        here = offset
        offset += (len(raw) if ascii_text else len(raw.encode("utf-8", "replace"))) + 1
        if not line.strip():
            continue
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise ParseError(f"SDP line is not <type>=<value>: {line[:40]!r}", here)
        kind, value = line[0], line[2:].strip()
        if not seen_v:
            if kind != "v":
                raise ParseError("SDP does not start with v=", here)
            seen_v = True
            continue
        cur = media[-1] if media else None
        if kind == "o":
            parts = value.split()
            origin = parts[5] if len(parts) >= 6 else None
        elif kind == "c":
            addr = _address(value, here)
            if cur is None:
                session_addr = addr
            else:
                cur["address"] = addr
        elif kind == "m":
            if len(media) >= MAX_MEDIA:
                raise ParseError(f"SDP has more than {MAX_MEDIA} m= lines", here)
            parts = value.split()
            if len(parts) < 3:
                raise ParseError(f"SDP m= line malformed: {value[:40]!r}", here)
            port = decimal(parts[1].split("/")[0])
            if port is None or port > 65535:
                raise ParseError(f"SDP m= port invalid: {parts[1][:12]!r}", here)
            media.append({"media": parts[0], "port": port, "proto": parts[2],
                          "formats": tuple(parts[3:]), "address": None, "rtpmap": {},
                          "ptime": None, "direction": None})
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if cur is None:
                    session_dir = name
                else:
                    cur["direction"] = name
            elif cur is not None and name == "rtpmap":
                pt_s, _, enc = arg.strip().partition(" ")
                enc_parts = enc.strip().split("/")
                pt = decimal(pt_s)
                rate = decimal(enc_parts[1]) if len(enc_parts) >= 2 else None
                if pt is not None and rate is not None:
                    rtpmap = cur["rtpmap"]
                    assert isinstance(rtpmap, dict)
                    rtpmap[pt] = (enc_parts[0], rate)
            elif cur is not None and name == "ptime":
                try:
                    ptime = float(arg.strip())
                except ValueError:
                    ptime = math.nan
                if not math.isfinite(ptime):
                    raise ParseError(f"SDP a=ptime not a number: {arg[:20]!r}", here)
                cur["ptime"] = ptime
    if not seen_v:
        raise ParseError("SDP is empty", 0)
    out: list[SdpMedia] = []
    for m in media:
        rtpmap = m["rtpmap"]
        assert isinstance(rtpmap, dict)
        formats = m["formats"]
        assert isinstance(formats, tuple)
        pmap: dict[int, tuple[str, int]] = {}
        for f in formats:
            pt = decimal(f)
            if pt is not None and pt < 128:
                if pt in rtpmap:
                    pmap[pt] = rtpmap[pt]
                elif pt in STATIC_PAYLOAD_TYPES:
                    pmap[pt] = STATIC_PAYLOAD_TYPES[pt]
        address = m["address"] if m["address"] is not None else session_addr
        direction = m["direction"] or session_dir
        out.append(SdpMedia(str(m["media"]), int(str(m["port"])), str(m["proto"]), formats,
                            None if address is None else str(address), pmap,
                            m["ptime"] if isinstance(m["ptime"], float) else None, str(direction)))
    return Sdp(origin, session_addr, tuple(out))
