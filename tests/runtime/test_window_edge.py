"""The live window's edge must not invent one-way audio: no stray ``media.one-way-audio``.

Regression for what ``upscope serve`` showed under load: a 2-s lab call's two RTP directions ended
2 ms apart (last packets at …717.2089 and …717.2127); a window edge falling between them kept one
direction only, and the rule reported one-way audio for that call until the edge moved on (plus the
hold-down). The figures below are the ones of that call, shifted to small timestamps.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.runtime.window import recent
from core.analysis import AnalysisResult, CallInfo, RtpStreamStats
from core.diagnosis import DiagnosisInputs, diagnose
from core.diagnosis.context import DiagnosisOptions

PBX, CONN = "127.0.0.1", "127.0.0.2"
CALL_START, CALL_END = 15.106, 17.213
OUT_LAST, BACK_LAST = 17.2089, 17.2127  # the direction towards the connector ended 3.8 ms earlier


def _stream(src: str, dst: str, first: float, last: float, call_id: str | None, ssrc: int) -> RtpStreamStats:
    return RtpStreamStats(src, 18500, dst, 18500, ssrc, 8, "PCMA", 8000, 101, 101, 0, 0.0, 0, 0, 19.9, 20.0, 20.1,
                          0.1, 0.3, 4.4, first, last, 1, 200, call_id=call_id)


def _call(streams: tuple[int, ...], call_id: str = "c1") -> CallInfo:
    return CallInfo(call_id, "sip:+49897007200@x", "sip:+49897007102@x", "+49897007200", "+49897007102", CONN, PBX,
                    CALL_START, 1, 200, "OK", True, 100.0, 50.0, CALL_START + 0.1, CALL_END, 2.004, False,
                    "caller", None, None, 0, "answered", 7, streams=streams)


def _analysis(streams: tuple[RtpStreamStats, ...], calls: tuple[CallInfo, ...]) -> AnalysisResult:
    return AnalysisResult((), 0, 0.0, 30.0, False, {}, {}, (), calls, (), (), streams, (), (), (), ())


def _two_way(with_call: bool = True) -> AnalysisResult:
    cid = "c1" if with_call else None
    streams = (_stream(PBX, CONN, 15.2085, OUT_LAST, cid, 1), _stream(CONN, PBX, 15.2091, BACK_LAST, cid, 2))
    return _analysis(streams, (_call((0, 1)),) if with_call else ())


def _one_way_ids(analysis: AnalysisResult, now: float = 21.3) -> list[str | None]:
    diag = diagnose(DiagnosisInputs(analysis=analysis, now=datetime.fromtimestamp(now, UTC),
                                    options=DiagnosisOptions()))
    return [f.subject for f in diag.findings if f.id == "media.one-way-audio"]


def _trim_streams_naively(result: AnalysisResult, since: float) -> AnalysisResult:
    """What the window did before the fix: streams only by their own last packet."""
    keep = [i for i, s in enumerate(result.rtp_streams) if s.last_ts >= since]
    new = {old: new for new, old in enumerate(keep)}
    calls = tuple(dataclasses.replace(c, streams=tuple(new[i] for i in c.streams if i in new)) for c in result.calls)
    return dataclasses.replace(result, rtp_streams=tuple(result.rtp_streams[i] for i in keep), calls=calls)


EDGE = (OUT_LAST + BACK_LAST) / 2  # a window starting here holds only the tail of one direction


def test_the_edge_case_reproduces_with_the_old_trim() -> None:
    # The fixture is the real failure: trimmed the old way, the rule fires on this call.
    assert _one_way_ids(_trim_streams_naively(_two_way(), EDGE)) == ["c1"]


def test_a_call_in_the_window_keeps_both_directions() -> None:
    live = recent(_two_way(), EDGE)
    assert [c.call_id for c in live.calls] == ["c1"]
    assert [s.ssrc for s in live.rtp_streams] == [1, 2] and live.calls[0].streams == (0, 1)
    assert _one_way_ids(live) == []


def test_streams_without_a_call_keep_their_way_back() -> None:
    # No SIP for these streams (e.g. a trace log that rotated away): the reverse stream still counts.
    live = recent(_two_way(with_call=False), EDGE)
    assert [s.ssrc for s in live.rtp_streams] == [1, 2]
    assert _one_way_ids(live) == []


def test_real_one_way_audio_is_still_reported_through_the_window() -> None:
    streams = (_stream(CONN, PBX, 15.2091, BACK_LAST, "c1", 2),)
    live = recent(_analysis(streams, (_call((0,)),)), EDGE)
    assert _one_way_ids(live) == ["c1"]


def test_a_call_wholly_before_the_window_is_gone() -> None:
    live = recent(_two_way(), CALL_END + 0.5)
    assert live.calls == () and live.rtp_streams == ()


def test_an_unrelated_older_reverse_stream_is_not_pulled_in() -> None:
    # Same ports reused by an earlier call: its reverse stream did not flow while the kept one did.
    old = _stream(CONN, PBX, 1.0, 3.0, "c0", 9)
    result = _analysis((old, _stream(PBX, CONN, 15.2085, OUT_LAST, None, 1)), ())
    assert [s.ssrc for s in recent(result, 10.0).rtp_streams] == [1]


@settings(max_examples=200, deadline=None)
@given(since=st.floats(min_value=CALL_START - 5, max_value=CALL_END + 5, allow_nan=False),
       with_call=st.booleans(), gap=st.floats(min_value=0.0, max_value=0.5))
def test_no_window_edge_makes_a_two_way_call_one_way(since: float, with_call: bool, gap: float) -> None:
    # Whatever the edge and however far apart the two directions ended, a two-way call stays two-way.
    base = _two_way(with_call)
    first = base.rtp_streams[0]
    base = dataclasses.replace(base, rtp_streams=(dataclasses.replace(first, last_ts=first.last_ts - gap),
                                                  base.rtp_streams[1]))
    assert _one_way_ids(recent(base, since)) == []
