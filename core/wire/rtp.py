"""Sans-IO parsers for RTP (RFC 3550 §5.1), RTCP compound packets (RFC 3550 §6) and
RFC 4733 telephone events. Every function takes bytes and returns frozen values or raises
``core.errors.ParseError`` (with the byte offset inside the given buffer); nothing else escapes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from core.errors import ParseError

RTP_HEADER_LEN = 12
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP = 200, 201, 202, 203, 204
_RTCP_NAMES = {200: "SR", 201: "RR", 202: "SDES", 203: "BYE", 204: "APP", 205: "RTPFB", 206: "PSFB", 207: "XR"}
# RFC 3550 §6.5: SDES item types
_SDES_ITEMS = {1: "CNAME", 2: "NAME", 3: "EMAIL", 4: "PHONE", 5: "LOC", 6: "TOOL", 7: "NOTE", 8: "PRIV"}
# RFC 4733 §3.2 / RFC 4734: DTMF events 0-15
_DTMF = "0123456789*#ABCD"

_HDR = struct.Struct("!BBHII")
_RTCP_HDR = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IIIIII")


@dataclass(frozen=True, slots=True)
class RtpHeader:
    version: int
    padding: bool
    extension: bool
    csrc_count: int
    marker: bool
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload_offset: int  # where the payload starts (after CSRCs and extension)
    payload_len: int  # payload bytes excluding padding


def parse_rtp(data: bytes) -> RtpHeader:
    """Parse the RTP fixed header, CSRC list, header extension and padding of one datagram."""
    n = len(data)
    if n < RTP_HEADER_LEN:
        raise ParseError(f"RTP packet of {n} bytes is shorter than the 12-byte header", 0)
    b0, b1, seq, ts, ssrc = _HDR.unpack_from(data, 0)
    version = b0 >> 6
    if version != 2:
        raise ParseError(f"RTP version {version} is not 2", 0)
    cc = b0 & 0x0F
    offset = RTP_HEADER_LEN + 4 * cc
    if offset > n:
        raise ParseError(f"RTP CSRC list of {cc} entries runs past the end ({n} bytes)", RTP_HEADER_LEN)
    extension = bool(b0 & 0x10)
    if extension:
        if offset + 4 > n:
            raise ParseError("RTP header extension header truncated", offset)
        ext_words = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4 + 4 * ext_words
        if offset > n:
            raise ParseError(f"RTP header extension of {ext_words} words runs past the end", offset)
    payload_len = n - offset
    padding = bool(b0 & 0x20)
    if padding:
        pad = data[-1]
        if pad == 0 or pad > payload_len:
            raise ParseError(f"RTP padding count {pad} does not fit the {payload_len}-byte payload", n - 1)
        payload_len -= pad
    return RtpHeader(
        version=version,
        padding=padding,
        extension=extension,
        csrc_count=cc,
        marker=bool(b1 & 0x80),
        payload_type=b1 & 0x7F,
        seq=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload_offset=offset,
        payload_len=payload_len,
    )


def build_rtp(payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, *,
              marker: bool = False) -> bytes:
    """An RTP packet with the 12-byte fixed header only (RFC 3550 §5.1)."""
    return _HDR.pack(0x80, (0x80 if marker else 0) | (payload_type & 0x7F), seq & 0xFFFF,
                     timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF) + payload


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One RFC 4733 §2.3 named-event payload."""

    event: int
    end: bool
    volume: int  # dBm0 below 0 (0..63)
    duration: int  # in RTP timestamp units

    @property
    def digit(self) -> str | None:
        return _DTMF[self.event] if self.event < len(_DTMF) else None


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """Parse the 4-byte event block (the first one; RFC 2198 redundancy is not unpacked)."""
    if len(payload) < 4:
        raise ParseError(f"telephone-event payload of {len(payload)} bytes is shorter than 4", 0)
    return TelephoneEvent(
        event=payload[0],
        end=bool(payload[1] & 0x80),
        volume=payload[1] & 0x3F,
        duration=int.from_bytes(payload[2:4], "big"),
    )


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """RFC 3550 §6.4.1 reception report block."""

    ssrc: int
    fraction_lost: int  # 0..255, fraction of 256
    cumulative_lost: int  # signed 24-bit (negative with duplicates), never truncated
    highest_seq: int  # extended highest sequence number received
    jitter: int  # interarrival jitter in RTP timestamp units
    lsr: int  # middle 32 bits of the NTP timestamp of the last SR, 0 if none
    dlsr: int  # delay since last SR in 1/65536 s

    @property
    def fraction_lost_pct(self) -> float:
        return self.fraction_lost * 100.0 / 256.0


@dataclass(frozen=True, slots=True)
class RtcpPacket:
    """One packet of a compound RTCP datagram (SR, RR, SDES, BYE, APP or another type)."""

    packet_type: int
    count: int  # RC / SC / subtype, the 5 low bits of the first octet
    ssrc: int | None  # sender SSRC (SR/RR/APP), first source of SDES/BYE
    offset: int  # byte offset of this packet in the datagram
    ntp_timestamp: int | None = None  # SR: 64-bit NTP
    rtp_timestamp: int | None = None  # SR
    sender_packets: int | None = None  # SR
    sender_octets: int | None = None  # SR
    reports: tuple[ReportBlock, ...] = ()
    sdes: tuple[tuple[int, str, str], ...] = ()  # (ssrc, item name, text)
    bye_sources: tuple[int, ...] = ()
    reason: str | None = None  # BYE
    app_name: str | None = None  # APP

    @property
    def name(self) -> str:
        return _RTCP_NAMES.get(self.packet_type, str(self.packet_type))

    @property
    def ntp_middle32(self) -> int | None:
        """The 32 middle bits of the SR's NTP timestamp, which an RR quotes as LSR."""
        return None if self.ntp_timestamp is None else (self.ntp_timestamp >> 16) & 0xFFFFFFFF


def _report_blocks(data: bytes, offset: int, count: int, end: int) -> tuple[ReportBlock, ...]:
    if offset + 24 * count > end:
        raise ParseError(f"RTCP: {count} report blocks do not fit the packet length", offset)
    blocks = []
    for i in range(count):
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset + 24 * i)
        cum = lost_word & 0xFFFFFF
        if cum & 0x800000:  # two's complement 24-bit (RFC 3550 §6.4.1: "signed")
            cum -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost_word >> 24, cum, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _sdes(data: bytes, offset: int, count: int, end: int) -> tuple[tuple[int, str, str], ...]:
    items: list[tuple[int, str, str]] = []
    pos = offset
    for _ in range(count):
        if pos + 4 > end:
            raise ParseError("RTCP SDES chunk truncated", pos)
        ssrc = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        while True:
            if pos >= end:
                raise ParseError("RTCP SDES item list not terminated", pos)
            item_type = data[pos]
            if item_type == 0:
                pos = (pos + 4) & ~3  # the terminating null and padding up to the next word
                break
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                raise ParseError("RTCP SDES item runs past the packet", pos)
            length = data[pos + 1]
            # a NUL some senders count into the item length is not part of the text
            text = data[pos + 2 : pos + 2 + length].rstrip(b"\x00").decode("utf-8", "replace")
            items.append((ssrc, _SDES_ITEMS.get(item_type, str(item_type)), text))
            pos += 2 + length
    return tuple(items)


def parse_rtcp(data: bytes) -> tuple[RtcpPacket, ...]:
    """Parse a compound RTCP datagram into its packets (RFC 3550 §6.1).

    Each packet's length field must fit the datagram; an inconsistent length (the AST-2017-012
    reproducer) raises ``ParseError`` with the offset of the offending packet.
    """
    data = bytes(data)  # a memoryview from the capture layer has no .decode for SDES/BYE text
    n = len(data)
    if n < 4:
        raise ParseError(f"RTCP datagram of {n} bytes is shorter than a header", 0)
    packets: list[RtcpPacket] = []
    pos = 0
    # fewer than 4 trailing bytes cannot be a packet: some stacks pad the datagram; ignored like
    # Wireshark does (it stops when less than a header remains)
    while n - pos >= 4:
        b0, pt, words = _RTCP_HDR.unpack_from(data, pos)
        if b0 >> 6 != 2:
            raise ParseError(f"RTCP version {b0 >> 6} is not 2", pos)
        end = pos + 4 * (words + 1)
        if end > n:
            raise ParseError(f"RTCP {_RTCP_NAMES.get(pt, pt)} length {words} runs past the datagram", pos)
        count = b0 & 0x1F
        body = pos + 4
        if b0 & 0x20:  # padding only allowed on the last packet; strip it from the body's end
            pad = data[end - 1]
            if pad == 0 or end - pad < body:
                raise ParseError(f"RTCP padding count {pad} invalid", end - 1)
            body_end = end - pad
        else:
            body_end = end
        if pt == RTCP_SR:
            if body + 24 > body_end:
                raise ParseError("RTCP SR sender info truncated", body)
            ssrc, ntp_hi, ntp_lo, rtp_ts, spk, soc = struct.unpack_from("!IIIIII", data, body)
            packets.append(
                RtcpPacket(
                    pt, count, ssrc, pos, (ntp_hi << 32) | ntp_lo, rtp_ts, spk, soc,
                    reports=_report_blocks(data, body + 24, count, body_end),
                )
            )
        elif pt == RTCP_RR:
            if body + 4 > body_end:
                raise ParseError("RTCP RR sender SSRC truncated", body)
            ssrc = int.from_bytes(data[body : body + 4], "big")
            packets.append(RtcpPacket(pt, count, ssrc, pos, reports=_report_blocks(data, body + 4, count, body_end)))
        elif pt == RTCP_SDES:
            sdes = _sdes(data, body, count, body_end)
            first = int.from_bytes(data[body : body + 4], "big") if count and body + 4 <= body_end else None
            packets.append(RtcpPacket(pt, count, first, pos, sdes=sdes))
        elif pt == RTCP_BYE:
            if body + 4 * count > body_end:
                raise ParseError(f"RTCP BYE with {count} sources truncated", body)
            sources = tuple(int.from_bytes(data[body + 4 * i : body + 4 * i + 4], "big") for i in range(count))
            rpos = body + 4 * count
            reason = None
            if rpos < body_end:
                rlen = data[rpos]
                if rpos + 1 + rlen > body_end:
                    raise ParseError("RTCP BYE reason runs past the packet", rpos)
                reason = data[rpos + 1 : rpos + 1 + rlen].decode("utf-8", "replace")
            packets.append(
                RtcpPacket(pt, count, sources[0] if sources else None, pos, bye_sources=sources, reason=reason)
            )
        elif pt == RTCP_APP:
            if body + 8 > body_end:
                raise ParseError("RTCP APP header truncated", body)
            ssrc = int.from_bytes(data[body : body + 4], "big")
            name = data[body + 4 : body + 8].decode("ascii", "replace")
            packets.append(RtcpPacket(pt, count, ssrc, pos, app_name=name))
        else:
            ssrc = int.from_bytes(data[body : body + 4], "big") if body + 4 <= body_end else None
            packets.append(RtcpPacket(pt, count, ssrc, pos))
        pos = end
    return tuple(packets)


def looks_like_rtcp(data: bytes) -> bool:
    """Cheap RFC 5761 §4 demultiplexing test: version 2 and packet type 192-223 (SR..XR and
    the reserved neighbours), which RTP cannot use with the marker bit set."""
    return len(data) >= 8 and data[0] >> 6 == 2 and 192 <= data[1] <= 223
