"""Sans-IO SDP parser (RFC 8866, with RFC 3264 direction attributes).

Only what ties RTP streams to calls is kept: the connection address (session level, overridden
per media), each m= line's port, transport and payload types, a=rtpmap, a=ptime and the
direction (sendrecv/sendonly/recvonly/inactive). Static payload types get their RFC 3551 §6
names when no rtpmap is given. Raises only ``ParseError``; numbers are bounded in length before
they are converted (``core.wire.digits``).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from core.errors import ParseError
from core.wire.digits import decimal

MAX_SDP_BYTES = 256 * 1024
MAX_SDP_LINES = 4096
MAX_MEDIA = 64

# RFC 3551 §6 table 4 (audio) and 5 (video): static payload type → (encoding, clock rate).
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 5: ("DVI4", 8000),
    6: ("DVI4", 16000), 7: ("LPC", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000),
    10: ("L16", 44100), 11: ("L16", 44100), 12: ("QCELP", 8000), 13: ("CN", 8000),
    14: ("MPA", 90000), 15: ("G728", 8000), 16: ("DVI4", 11025), 17: ("DVI4", 22050),
    18: ("G729", 8000), 25: ("CelB", 90000), 26: ("JPEG", 90000), 28: ("nv", 90000),
    31: ("H261", 90000), 32: ("MPV", 90000), 33: ("MP2T", 90000), 34: ("H263", 90000),
}

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True, slots=True)
class SdpMedia:
    media: str  # "audio", "video", "image", …
    port: int
    proto: str  # "RTP/AVP", "RTP/SAVP", "udptl", …
    formats: tuple[str, ...]
    address: str | None  # media-level c= or else session-level c=
    payload_map: dict[int, tuple[str, int]]  # payload type → (encoding name, clock rate)
    ptime_ms: float | None
    direction: str  # one of DIRECTIONS (media level overrides session level)


@dataclass(frozen=True, slots=True)
class Sdp:
    origin_address: str | None
    session_address: str | None
    media: tuple[SdpMedia, ...]


def _address(value: str) -> str | None:
    """The connection address of a c= value (None when malformed)."""
    # c=<nettype> <addrtype> <connection-address>; multicast may carry /ttl/count suffixes.
    known = _ADDRESSES.get(value)
    if known is not None:
        return known
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN":
        return None
    addr = parts[2].split("/")[0]
    try:
        norm = str(ipaddress.ip_address(addr))
    except ValueError:
        norm = addr  # an FQDN is legal (RFC 8866 §5.7); keep it as given
    if len(_ADDRESSES) >= _ADDRESSES_MAX:
        _ADDRESSES.clear()
    _ADDRESSES[value] = norm
    return norm


# c= value as written → connection address as returned: the same few hosts announce every
# call's media, and splitting plus ipaddress parsing cost several µs; bounded because the text
# comes from the input.
_ADDRESSES: dict[str, str] = {}
_ADDRESSES_MAX = 4096


class _Media:
    """An m= section while its attribute lines are read."""

    __slots__ = ("address", "direction", "formats", "media", "port", "proto", "ptime", "rtpmap")

    def __init__(self, media: str, port: int, proto: str, formats: tuple[str, ...]) -> None:
        self.media, self.port, self.proto, self.formats = media, port, proto, formats
        self.address: str | None = None
        self.rtpmap: dict[int, tuple[str, int]] = {}
        self.ptime: float | None = None
        self.direction: str | None = None

    def result(self, session_addr: str | None, session_dir: str) -> SdpMedia:
        pmap: dict[int, tuple[str, int]] = {}
        for f in self.formats:
            pt = decimal(f)
            if pt is not None and pt < 128:
                if pt in self.rtpmap:
                    pmap[pt] = self.rtpmap[pt]
                elif pt in STATIC_PAYLOAD_TYPES:
                    pmap[pt] = STATIC_PAYLOAD_TYPES[pt]
        return SdpMedia(self.media, self.port, self.proto, self.formats,
                        self.address if self.address is not None else session_addr, pmap, self.ptime,
                        self.direction or session_dir)


def _offset(lines: list[str], index: int, data: bytes) -> int:
    """Byte offset of ``lines[index]`` (after CRLF → LF), for error items: computed only when
    one is raised, not for every line."""
    if data.isascii():  # then a line's length in characters is its length in bytes
        return sum(len(raw) + 1 for raw in lines[:index])
    return sum(len(raw.encode("utf-8", "replace")) + 1 for raw in lines[:index])


def parse_sdp(data: bytes) -> Sdp:
    if len(data) > MAX_SDP_BYTES:
        raise ParseError(f"SDP body exceeds {MAX_SDP_BYTES} bytes", 0)
    text = data.decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").split("\n")
    if len(lines) > MAX_SDP_LINES:
        raise ParseError(f"SDP has more than {MAX_SDP_LINES} lines", 0)

    origin: str | None = None
    session_addr: str | None = None
    session_dir = "sendrecv"
    media: list[_Media] = []
    cur: _Media | None = None
    seen_v = False
    for index, raw in enumerate(lines):
        # The usual line is <letter>=<value>: tested first, so only the others (blank lines,
        # damage) pay for the trailing-CR and blank checks.
        if raw[1:2] != "=" or not raw[0].isalpha():
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
                raise ParseError(f"SDP line is not <type>=<value>: {line[:40]!r}", _offset(lines, index, data))
        kind, value = raw[0], raw[2:].strip()
        if not seen_v:
            if kind != "v":
                raise ParseError("SDP does not start with v=", _offset(lines, index, data))
            seen_v = True
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if cur is None:
                    session_dir = name
                else:
                    cur.direction = name
            elif cur is not None and name == "rtpmap":
                pt_s, _, enc = arg.strip().partition(" ")
                enc_parts = enc.strip().split("/")
                pt = decimal(pt_s)
                rate = decimal(enc_parts[1]) if len(enc_parts) >= 2 else None
                if pt is not None and rate is not None:
                    cur.rtpmap[pt] = (enc_parts[0], rate)
            elif cur is not None and name == "ptime":
                try:
                    ptime = float(arg.strip())
                except ValueError:
                    ptime = math.nan
                if not math.isfinite(ptime):
                    raise ParseError(f"SDP a=ptime not a number: {arg[:20]!r}", _offset(lines, index, data))
                cur.ptime = ptime
        elif kind == "m":
            if len(media) >= MAX_MEDIA:
                raise ParseError(f"SDP has more than {MAX_MEDIA} m= lines", _offset(lines, index, data))
            parts = value.split()
            if len(parts) < 3:
                raise ParseError(f"SDP m= line malformed: {value[:40]!r}", _offset(lines, index, data))
            port = decimal(parts[1].split("/")[0])
            if port is None or port > 65535:
                raise ParseError(f"SDP m= port invalid: {parts[1][:12]!r}", _offset(lines, index, data))
            cur = _Media(parts[0], port, parts[2], tuple(parts[3:]))
            media.append(cur)
        elif kind == "c":
            addr = _address(value)
            if addr is None:
                raise ParseError(f"SDP c= line malformed: {value[:40]!r}", _offset(lines, index, data))
            if cur is None:
                session_addr = addr
            else:
                cur.address = addr
        elif kind == "o":
            parts = value.split()
            origin = parts[5] if len(parts) >= 6 else None
    if not seen_v:
        raise ParseError("SDP is empty", 0)
    return Sdp(origin, session_addr, tuple(m.result(session_addr, session_dir) for m in media))


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _ptime(ms: float) -> str:
    return str(int(ms)) if ms.is_integer() else repr(ms)


def build_sdp(sdp: Sdp, *, session_id: int, session_name: str = "-") -> bytes:
    """Serialise ``sdp`` (RFC 8866 §5): what ``parse_sdp`` reads back as the same value.

    Every payload type gets an a=rtpmap line (static ones too, which RFC 3264 §5.1 recommends),
    the direction is written per media, and a media-level c= only where it differs.
    """
    origin = sdp.origin_address or sdp.session_address or "0.0.0.0"
    lines = ["v=0", f"o=- {session_id} {session_id} IN {_addrtype(origin)} {origin}", f"s={session_name}"]
    if sdp.session_address is not None:
        lines.append(f"c=IN {_addrtype(sdp.session_address)} {sdp.session_address}")
    lines.append("t=0 0")
    for m in sdp.media:
        lines.append(" ".join([f"m={m.media}", str(m.port), m.proto, *m.formats]))
        if m.address is not None and m.address != sdp.session_address:
            lines.append(f"c=IN {_addrtype(m.address)} {m.address}")
        lines += [f"a=rtpmap:{pt} {enc}/{rate}" for pt, (enc, rate) in m.payload_map.items()]
        if m.ptime_ms is not None:
            lines.append(f"a=ptime:{_ptime(m.ptime_ms)}")
        lines.append(f"a={m.direction}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
