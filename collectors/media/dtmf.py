"""DTMF key presses: RFC 4733 telephone-events in RTP, and SIP INFO bodies.

Theory of operation. Telephone-event packets are rare (a few dozen per key press, none in most
calls), so this module is a tap beside the RTP statistics rather than part of them: the capture
pipeline shows it the payload-type map of every SDP announcement (``expect``), the datagrams that
go to the media analyser (``on_udp`` one by one, ``on_rows`` for a batch of the capture fast lane,
where one vectorised look at the payload-type byte passes on only the few candidate rows) and
every SIP message (``on_sip``). At the end ``attach`` hands each RTP stream its key presses and
each call those of its streams plus its INFO requests.

Which packets are events. Like the media analyser: an address:port announced in SDP decides by
its rtpmap (``telephone-event/RATE``; the destination's announcement wins over the source's);
unannounced flows follow Wireshark's heuristic table (payload types 100 and 101). Only packets of
a stream the media analyser kept are attached to anything.

One key press, many packets (RFC 4733 §2.5). A sender repeats an event every packetisation
interval with the same RTP timestamp and a growing duration, and sends the end packet (E bit)
three times. Packets with the same SSRC and timestamp are therefore one event; its duration is
the longest one sent and ``ended`` says whether an end packet arrived. A long event is sent in
segments (§2.5.1.3): a new timestamp equal to the previous one plus its duration, same event,
previous segment not ended — that continues the same key press.

Bounds: at most ``MAX_EVENTS`` events per stream and ``MAX_STREAMS`` streams, ``MAX_INFO`` INFO
key presses, ``MAX_ENDPOINTS`` announced endpoints; beyond them input is counted, not kept.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from collectors.capture.packets import UdpBatch
from core.analysis import CallInfo, DtmfEvent, RtpStreamStats, SipMessageInfo
from core.errors import ParseError
from core.wire.rtp import parse_rtp, parse_telephone_event

#: RFC 4733 §3.2 (Table 1): the DTMF events; everything else is named by its code.
EVENT_NAMES: dict[int, str] = {**{n: str(n) for n in range(10)}, 10: "*", 11: "#", 12: "A", 13: "B",
                               14: "C", 15: "D", 16: "flash"}
#: Wireshark's rtp.pt table names these dynamic payload types rtpevent when no SDP says otherwise.
HEURISTIC_EVENT_PTS = frozenset({100, 101})
#: RFC 4733 §7.1.1: telephone-event's default clock (the rtpmap gives the real one).
DEFAULT_RATE = 8000

MAX_EVENTS = 1000
MAX_STREAMS = 10_000
MAX_INFO = 10_000
MAX_ENDPOINTS = 100_000

StreamKey = tuple[str, int, str, int, int]  # src, sport, dst, dport, SSRC


def event_name(code: int) -> str:
    return EVENT_NAMES.get(code, f"event {code}")


_RELAY_SIGNAL = re.compile(r"(?im)^\s*signal\s*=\s*(\S+)\s*$")
_RELAY_DURATION = re.compile(r"(?im)^\s*duration\s*=\s*(\d{1,9})\s*$")
#: INFO signals some gateways send as numbers (Cisco "dtmf-relay": 10 = *, 11 = #, 16 = flash).
_SIGNAL_CODES = {**{name: code for code, name in EVENT_NAMES.items()}, "!": 16, "10": 10, "11": 11, "16": 16}


def parse_info_body(content_type: str, body: bytes) -> tuple[int, float | None] | None:
    """(event code, duration ms) of a SIP INFO DTMF body, or None when it is none.

    ``application/dtmf-relay`` carries ``Signal=5`` and ``Duration=160`` lines; ``application/dtmf``
    carries the key alone."""
    kind = content_type.split(";", 1)[0].strip().lower()
    text = body[:1024].decode("ascii", "replace")
    if kind == "application/dtmf-relay":
        signal = _RELAY_SIGNAL.search(text)
        if signal is None:
            return None
        duration = _RELAY_DURATION.search(text)
        code = _SIGNAL_CODES.get(signal.group(1).upper())
        return (code, float(duration.group(1)) if duration else None) if code is not None else None
    if kind == "application/dtmf":
        code = _SIGNAL_CODES.get(text.strip().upper())
        return (code, None) if code is not None else None
    return None


@dataclass(slots=True)
class _Event:
    timestamp: int
    event: int
    ts: float
    frame: int
    src: str
    rate: int
    base: int = 0  # duration of the earlier segments of a long event
    seg: int = 0  # duration of the current segment (the longest one sent)
    ended: bool = False
    packets: int = 0

    def result(self) -> DtmfEvent:
        return DtmfEvent(event_name(self.event), self.event, self.ts,
                         round((self.base + self.seg) * 1000.0 / self.rate, 3), self.ended, self.src, self.frame,
                         "rfc4733", self.packets)


class DtmfTap:
    """Collects key presses from a capture's media and SIP; see the module docstring."""

    def __init__(self) -> None:
        # announced address:port → {payload type: clock rate} of its telephone-event types
        self._endpoints: dict[tuple[str, int], dict[int, int]] = {}
        self._pts = np.array(sorted(HEURISTIC_EVENT_PTS), dtype=np.uint8)
        self._events: dict[StreamKey, list[_Event]] = {}
        self._info: dict[str, list[DtmfEvent]] = {}
        self._info_count = 0
        self.dropped = 0  # events beyond the bounds

    # -- inputs ------------------------------------------------------------------------------
    def expect(self, addr: str, port: int, payload_map: Mapping[int, tuple[str, int]]) -> None:
        """An SDP announcement: which of its payload types are telephone-events, at which clock."""
        if len(self._endpoints) >= MAX_ENDPOINTS and (addr, port) not in self._endpoints:
            return
        events = {pt: rate or DEFAULT_RATE for pt, (name, rate) in payload_map.items()
                  if name.lower().startswith("telephone-event") and 96 <= pt <= 127}
        self._endpoints[(addr, port)] = events
        if events and not set(events) <= set(self._pts.tolist()):
            self._pts = np.array(sorted(set(self._pts.tolist()) | set(events)), dtype=np.uint8)

    def on_udp(self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes) -> None:
        """One datagram on its way to the media analyser."""
        if len(payload) < 16 or payload[0] >> 6 != 2:
            return
        pt = payload[1] & 0x7F
        if pt < 96:
            return
        rate = self._event_rate(src, sport, dst, dport, pt)
        if rate:
            self._packet(frame, ts, src, sport, dst, dport, bytes(payload), rate)

    def on_rows(self, batch: UdpBatch, lo: int, hi: int) -> None:
        """Rows ``lo:hi`` of a fast-lane batch, on their way to the media analyser."""
        if hi <= lo:
            return
        if batch.head is not None:
            pt = np.asarray(batch.head[lo:hi, 1]) & 0x7F
        else:
            offs = np.asarray(batch.payload_off[lo:hi], dtype=np.int64)
            pt = np.frombuffer(batch.buf, dtype=np.uint8)[offs + 1] & 0x7F
        for i in (np.flatnonzero(np.isin(pt, self._pts)) + lo).tolist():
            pkt = batch.packet(i)
            self.on_udp(pkt.frame, pkt.ts, pkt.src, pkt.sport, pkt.dst, pkt.dport, pkt.payload)

    def on_sip(self, info: SipMessageInfo, content_type: str | None, body: bytes) -> None:
        """A SIP message: an INFO with a DTMF body is a key press of its call."""
        if info.method != "INFO" or not content_type or not body or not info.call_id:
            return
        found = parse_info_body(content_type, body)
        if found is None or info.retransmission:
            return
        if self._info_count >= MAX_INFO:
            self.dropped += 1
            return
        self._info_count += 1
        code, duration = found
        self._info.setdefault(info.call_id, []).append(
            DtmfEvent(event_name(code), code, info.ts, duration, True, info.src, info.frame, "sip-info"))

    # -- the rest --------------------------------------------------------------------------------
    def _event_rate(self, src: str, sport: int, dst: str, dport: int, pt: int) -> int:
        """The clock of ``pt`` when it is a telephone-event on this flow, else 0."""
        for addr in ((dst, dport), (src, sport)):
            events = self._endpoints.get(addr)
            if events is not None:
                return events.get(pt, 0)
        return DEFAULT_RATE if pt in HEURISTIC_EVENT_PTS and sport >= 1024 and dport >= 1024 else 0

    def _packet(self, frame: int, ts: float, src: str, sport: int, dst: str, dport: int, payload: bytes,
                rate: int) -> None:
        try:
            head = parse_rtp(payload)
            ev = parse_telephone_event(payload[head.payload_offset:head.payload_offset + head.payload_len])
        except ParseError:
            return
        key = (src, sport, dst, dport, head.ssrc)
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= MAX_STREAMS:
                self.dropped += 1
                return
            events = self._events[key] = []
        current = next((e for e in reversed(events[-4:]) if e.timestamp == head.timestamp and e.event == ev.event),
                       None)
        if current is None and events:
            last = events[-1]
            if last.event == ev.event and not last.ended and last.seg \
                    and head.timestamp == (last.timestamp + last.seg) & 0xFFFFFFFF:
                # the next segment of a long event (RFC 4733 §2.5.1.3): the same key press
                last.timestamp, last.base, last.seg = head.timestamp, last.base + last.seg, 0
                current = last
        if current is None:
            if len(events) >= MAX_EVENTS:
                self.dropped += 1
                return
            current = _Event(head.timestamp, ev.event, ts, frame, src, rate)
            events.append(current)
        current.packets += 1
        current.seg = max(current.seg, ev.duration)
        current.ended = current.ended or ev.end

    def attach(self, streams: Iterable[RtpStreamStats],
               calls: Iterable[CallInfo]) -> tuple[tuple[RtpStreamStats, ...], tuple[CallInfo, ...]]:
        """Each stream with its key presses, each call with those of its streams and INFOs."""
        out_streams = []
        for s in streams:
            found = self._events.get((s.src, s.src_port, s.dst, s.dst_port, s.ssrc))
            out_streams.append(dataclasses.replace(s, dtmf=tuple(e.result() for e in found)) if found else s)
        out_calls = []
        for c in calls:
            presses = [e for i in c.streams if 0 <= i < len(out_streams) for e in out_streams[i].dtmf]
            presses += self._info.get(c.call_id, [])
            out_calls.append(dataclasses.replace(c, dtmf=tuple(sorted(presses, key=_order))) if presses else c)
        return tuple(out_streams), tuple(out_calls)


def _order(e: DtmfEvent) -> tuple[float, int]:
    return e.ts, e.frame


def digits(events: Iterable[DtmfEvent] | Iterable[dict[str, Any]]) -> str:
    """The keys pressed, in order, as one string ("2013785496"); flash as "!". Other
    telephone-events (fax and modem tones, RFC 4734) are no keys and are left out."""
    out = []
    for e in events:
        digit = e.digit if isinstance(e, DtmfEvent) else str(e.get("digit", ""))
        if digit == "flash":
            out.append("!")
        elif len(digit) == 1:
            out.append(digit)
    return "".join(out)
