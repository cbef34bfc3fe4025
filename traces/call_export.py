"""Which packets belong to one call: the selection behind ``upscope analyze --call ID --export-pcap``
and the dashboard's per-call capture.

Pure (no I/O): built from an ``AnalysisResult``. SIP packets are recognised by the Call-ID in
their payload (long ``Call-ID:`` or compact ``i:`` form, RFC 3261 §20.8), which works across
several input files and for SIP over TCP. RTP/RTCP packets are those of the call's streams and of
any stream to or from an address:port the call's SDP announced (RTCP on the next port up, RFC
3550 §11), and only while the call could carry media: from its INVITE (no RTP of a call precedes
its offer) to its BYE, plus the packets still in flight (``BYE_SLACK_S``), or to the end of the
capture for a call still up. PBXs hand the same media ports to call after call, so a window
reaching further back or forward would copy the previous or next call's audio: it also stops
where the next call using one of these address:ports begins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.analysis import AnalysisResult, CallInfo
from core.errors import UpscopeError

#: RTP still arriving after the BYE: the far end sends until the BYE reaches it.
BYE_SLACK_S = 2.0


@dataclass(frozen=True, slots=True)
class CallSelection:
    call_id: str
    media: frozenset[tuple[str, int, str, int]]  # (src, sport, dst, dport), RTCP ports included
    start: float
    end: float
    _pattern: re.Pattern[bytes]

    def wants_signalling(self, payload: bytes) -> bool:
        return self._pattern.search(payload) is not None

    def wants_media(self, src: str, sport: int, dst: str, dport: int, ts: float) -> bool:
        return (src, sport, dst, dport) in self.media and self.start <= ts <= self.end


def select_call(result: AnalysisResult, call_id: str) -> CallSelection:
    """The selection for ``call_id``; UpscopeError naming the problem when the call is unknown."""
    call = next((c for c in result.calls if c.call_id == call_id), None)
    if call is None:
        known = ", ".join(c.call_id for c in result.calls[:5])
        hint = f" (calls in the capture: {known}{' …' if len(result.calls) > 5 else ''})" if known else \
            " (the capture has no calls)"
        raise UpscopeError(f"call {call_id!r} not found{hint}")
    own = [result.rtp_streams[i] for i in call.streams if 0 <= i < len(result.rtp_streams)]
    ends = {(m.addr, m.port) for m in call.media} | {e for s in own for e in ((s.src, s.src_port), (s.dst, s.dst_port))}
    start = call.start_ts
    end = call.end_ts + BYE_SLACK_S if call.end_ts is not None else (result.last_ts or call.start_ts)
    for other in result.calls:
        if other.call_id != call_id and start < other.start_ts < end and ends & _ends(result, other):
            end = other.start_ts  # the next call on these media ports: its audio is not this call's
    media: set[tuple[str, int, str, int]] = set()
    for s in result.rtp_streams:
        if (s in own or (s.dst, s.dst_port) in ends or (s.src, s.src_port) in ends) \
                and s.last_ts >= start and s.first_ts <= end:
            media.add((s.src, s.src_port, s.dst, s.dst_port))
            media.add((s.src, s.src_port + 1, s.dst, s.dst_port + 1))
    escaped = re.escape(call_id.encode("utf-8", "surrogateescape"))
    pattern = re.compile(rb"(?im)^(?:call-id|i)[ \t]*:[ \t]*" + escaped + rb"[ \t]*\r?$")
    return CallSelection(call_id, frozenset(media), start, end, pattern)


def select_streams(result: AnalysisResult, indexes: Sequence[int]) -> CallSelection:
    """RTP/RTCP of these streams (indexes into ``result.rtp_streams``) over their own time span:
    the capture of one-way media no call announced. No SIP matches."""
    streams = [result.rtp_streams[i] for i in indexes if 0 <= i < len(result.rtp_streams)]
    media = {t for s in streams for t in ((s.src, s.src_port, s.dst, s.dst_port),
                                          (s.src, s.src_port + 1, s.dst, s.dst_port + 1))}
    start = min((s.first_ts for s in streams), default=0.0)
    end = max((s.last_ts for s in streams), default=0.0)
    return CallSelection("", frozenset(media), start, end, re.compile(rb"(?!)"))


def _ends(result: AnalysisResult, call: CallInfo) -> set[tuple[str, int]]:
    """The media address:ports a call announced or used."""
    out = {(m.addr, m.port) for m in call.media}
    for i in call.streams:
        if 0 <= i < len(result.rtp_streams):
            s = result.rtp_streams[i]
            out |= {(s.src, s.src_port), (s.dst, s.dst_port)}
    return out
