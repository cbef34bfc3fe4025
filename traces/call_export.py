"""Which packets belong to one call: the selection behind ``upscope analyze --call ID --export-pcap``.

Pure (no I/O): built from an ``AnalysisResult``. SIP packets are recognised by the Call-ID in
their payload (long ``Call-ID:`` or compact ``i:`` form, RFC 3261 §20.8), which works across
several input files and for SIP over TCP; RTP/RTCP packets by the 5-tuples of the call's streams
(RTCP on the next port up, RFC 3550 §11) inside the call's time window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.analysis import AnalysisResult
from core.errors import UpscopeError

# Some slack around the call: media often starts before the 200 OK reaches the capture point.
WINDOW_SLACK_S = 5.0


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
    media: set[tuple[str, int, str, int]] = set()
    start = call.start_ts
    end = call.end_ts if call.end_ts is not None else (result.last_ts or call.start_ts)
    for i in call.streams:
        s = result.rtp_streams[i]
        media.add((s.src, s.src_port, s.dst, s.dst_port))
        media.add((s.src, s.src_port + 1, s.dst, s.dst_port + 1))
        start, end = min(start, s.first_ts), max(end, s.last_ts)
    escaped = re.escape(call_id.encode("utf-8", "surrogateescape"))
    pattern = re.compile(rb"(?im)^(?:call-id|i)[ \t]*:[ \t]*" + escaped + rb"[ \t]*\r?$")
    return CallSelection(call_id, frozenset(media), start - WINDOW_SLACK_S, end + WINDOW_SLACK_S, pattern)
