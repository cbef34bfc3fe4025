"""One-way audio: the one judgement behind ``CallInfo.one_way_audio``, the ``media.one-way-audio``
finding and the firewall's RTP verdicts, so every face says the same about the same call.

Theory of operation. An answered call has one-way audio when, while it lasted, RTP reached one
side and not the other:

* *Sides* are the parties that announced audio in the call's SDP (``CallInfo.media``, keyed by
  the address that sent the SDP). A side is *heard* when some RTP packet went to an address:port
  it announced, or back to the address:port it sends its own RTP from (symmetric RTP, RFC 4961 —
  what a NAT-latching peer does when the announced address is a private one). With two or more
  sides of which some are heard and some not, the call is one-way.
* Without two announcing sides (SDP not captured, a trace of one leg), each of the call's streams
  needs a stream the other way between the same two address:ports while it flowed; when none
  has one, the call is one-way.
* A side that falls silent while the other keeps sending for longer than ``silence_s`` (a NAT
  binding or pinhole closing mid-call) is one-way too, from then on.

Hold (an audio line announced ``sendonly``, ``recvonly`` or ``inactive``) silences a side on
purpose and is never one-way. A few packets one way are not media flowing: the call must last
``min_duration_s`` and the one direction carry ``min_packets``. Streams that belong to no call
count when they last ``min_duration_s`` with ``min_packets`` and nothing came back while they
flowed — an RTP-only capture of one direction says exactly that much.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.analysis import CallInfo, RtpStreamStats, SdpMedia


@dataclass(frozen=True, slots=True)
class OneWayThresholds:
    """How much evidence one-way audio needs (``DiagnosisOptions`` carries the same three)."""

    min_duration_s: float = 2.0  # an answered call (or a lone stream) must last this long
    min_packets: int = 50  # the one direction must carry this many packets (1 s of 20-ms RTP)
    silence_s: float = 5.0  # one side silent this long while the other keeps sending


@dataclass(frozen=True, slots=True)
class OneWayCall:
    """Why one call counts as one-way audio.

    ``kind`` "no-return": RTP one way only (``streams`` are those that went unanswered);
    "silent-side": one side stopped ``silent_for_s`` before the other (``streams`` holds its last
    stream). ``unheard`` names the side(s) that got no RTP, when the SDP says who they are.
    """

    call: CallInfo
    kind: str
    streams: tuple[RtpStreamStats, ...]
    unheard: tuple[str, ...] = ()
    silent_for_s: float | None = None


@dataclass(frozen=True, slots=True)
class OneWayMedia:
    """Every one-way judgement of one analysis: calls, and streams that belong to no call."""

    calls: tuple[OneWayCall, ...] = ()
    loose: tuple[RtpStreamStats, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.calls or self.loose)

    def streams(self) -> tuple[RtpStreamStats, ...]:
        """The streams the judgements rest on, each once."""
        seen: dict[int, RtpStreamStats] = {}
        for v in self.calls:
            for s in v.streams:
                seen.setdefault(id(s), s)
        for s in self.loose:
            seen.setdefault(id(s), s)
        return tuple(seen.values())


Tuple4 = tuple[str, int, str, int]


class StreamIndex:
    """Streams by their address/port ends: the stream coming back, the streams towards an address."""

    def __init__(self, streams: Sequence[RtpStreamStats]) -> None:
        self.by_ends: dict[Tuple4, list[RtpStreamStats]] = defaultdict(list)
        self.by_dst: dict[tuple[str, int], list[RtpStreamStats]] = defaultdict(list)
        for s in streams:
            self.by_ends[(s.src, s.src_port, s.dst, s.dst_port)].append(s)
            self.by_dst[(s.dst, s.dst_port)].append(s)

    def has_return(self, s: RtpStreamStats) -> bool:
        """A stream the other way between the same two address:port ends while ``s`` flowed."""
        return any(r.packets and r.first_ts <= s.last_ts and r.last_ts >= s.first_ts
                   for r in self.by_ends.get((s.dst, s.dst_port, s.src, s.src_port), ()))

    def towards(self, ends: Iterable[tuple[str, int]], start: float, end: float | None) -> list[RtpStreamStats]:
        """Streams to any of ``ends`` that flowed between ``start`` and ``end``."""
        return _during((s for e in ends for s in self.by_dst.get(e, ())), start, end)


def _during(streams: Iterable[RtpStreamStats], start: float, end: float | None) -> list[RtpStreamStats]:
    stop = end if end is not None else float("inf")
    return [s for s in streams if s.packets and s.last_ts >= start and s.first_ts <= stop]


def call_streams(call: CallInfo, streams: Sequence[RtpStreamStats]) -> list[RtpStreamStats]:
    """The call's RTP streams that flowed while the call existed.

    Streams join calls through the SDP's address:port; where ports are reused a stream of an
    earlier call can be linked to a later one, so streams outside the call's time are dropped.
    """
    picked = [streams[i] for i in call.streams if 0 <= i < len(streams)]
    picked = picked or [s for s in streams if s.call_id == call.call_id]
    return _during(picked, call.start_ts, call.end_ts)


def _sides(media: Sequence[SdpMedia]) -> dict[str, set[tuple[str, int]]] | None:
    """Announced audio endpoints per SDP sender; None when a side put the audio on hold."""
    audio = [m for m in media if m.media == "audio"]
    if any(m.direction != "sendrecv" for m in audio):
        return None
    sides: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for m in audio:
        sides[m.sender].add((m.addr, m.port))
    return sides


def _no_return_by_sdp(sides: dict[str, set[tuple[str, int]]], index: StreamIndex, start: float,
                      end: float | None) -> tuple[list[str], list[RtpStreamStats]] | None:
    """(unheard sides, streams that reached the heard sides) when RTP reached some sides only."""
    # Where each side sends from: the sources of the streams towards the other sides' endpoints.
    sources: dict[str, set[tuple[str, int]]] = {}
    for side in sides:
        others = set().union(*(eps for other, eps in sides.items() if other != side))
        sources[side] = {(s.src, s.src_port) for s in index.towards(others, start, end)}
    reached = {side: index.towards(eps | sources[side], start, end) for side, eps in sides.items()}
    heard = [side for side, got in reached.items() if got]
    unheard = [side for side in sides if side not in heard]
    if not heard or not unheard:
        return None
    return unheard, list({id(s): s for h in heard for s in reached[h]}.values())


def _silent_side(streams: Sequence[RtpStreamStats], silence_s: float,
                 call_end: float | None) -> tuple[RtpStreamStats, float] | None:
    """The last stream of a side that went silent while the other kept sending for longer than
    ``silence_s``, with how long. Media after the call ended (a BYE that never reached the far
    end) does not count."""
    last: dict[tuple[str, int], RtpStreamStats] = {}
    for st in streams:
        key = (st.src, st.src_port)
        if key not in last or st.last_ts > last[key].last_ts:
            last[key] = st
    if len(last) < 2:
        return None
    latest = max(st.last_ts for st in last.values())
    if call_end is not None:
        latest = min(latest, call_end)
    quiet = min(last.values(), key=lambda st: st.last_ts)
    gap = latest - quiet.last_ts
    return (quiet, gap) if gap > silence_s else None


def judge_call(call: CallInfo, streams: Sequence[RtpStreamStats],
               thresholds: OneWayThresholds = OneWayThresholds(),
               index: StreamIndex | None = None) -> OneWayCall | None:
    """The one-way verdict of one call against all streams of its analysis, or None (``index``:
    the same streams indexed, when many calls are judged)."""
    if not call.answered:
        return None
    sides = _sides(call.media)
    if sides is None:
        return None  # on hold: one side silent by design
    own = call_streams(call, streams)
    lasted = (call.duration_s or 0.0) >= thresholds.min_duration_s
    idx = index if index is not None else StreamIndex(streams)
    if len(sides) >= 2:
        # Every stream of the call's time counts: the one that answers may sit with another call
        # whose SDP reused the port, or come back from a NAT-latched address.
        judged = _no_return_by_sdp(sides, idx, call.start_ts, call.end_ts)
        if judged is not None:
            unheard, reaching = judged
            if lasted and sum(s.packets for s in reaching) >= thresholds.min_packets:
                return OneWayCall(call, "no-return", tuple(reaching), tuple(sorted(unheard)))
            return None
    else:
        lone = [s for s in own if not idx.has_return(s)]
        if own and len(lone) == len(own) and lasted and sum(s.packets for s in lone) >= thresholds.min_packets:
            return OneWayCall(call, "no-return", tuple(lone))
    tail = _silent_side(own, thresholds.silence_s, call.end_ts)
    if tail is not None:
        quiet, gap = tail
        return OneWayCall(call, "silent-side", (quiet,), silent_for_s=gap)
    return None


def judge_media(calls: Sequence[CallInfo], streams: Sequence[RtpStreamStats],
                thresholds: OneWayThresholds = OneWayThresholds()) -> OneWayMedia:
    """One-way verdicts for every call and for the streams of no call."""
    index = StreamIndex(streams)
    verdicts = tuple(v for v in (judge_call(c, streams, thresholds, index) for c in calls) if v is not None)
    # Streams of any call (answered or not: early media of a call that was never answered flows
    # one way by design) are the calls' business.
    call_ids = {c.call_id for c in calls}
    claimed = {id(s) for c in calls for s in call_streams(c, streams)}
    claimed |= {id(s) for s in streams if s.call_id in call_ids}
    loose = tuple(s for s in streams
                  if id(s) not in claimed and s.packets >= thresholds.min_packets
                  and s.last_ts - s.first_ts >= thresholds.min_duration_s and not index.has_return(s))
    return OneWayMedia(verdicts, loose)
