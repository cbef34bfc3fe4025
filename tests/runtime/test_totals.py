from __future__ import annotations

from dataclasses import replace

from collectors.runtime.totals import Histogram, RunningTotals
from core.analysis import AnalysisResult, CallInfo, RtpStreamStats, SipMessageInfo


def _call(call_id: str, start: float, setup_ms: float, one_way: bool = False) -> CallInfo:
    return CallInfo(call_id, "sip:a@x", "sip:b@x", "a", "b", "1.1.1.1", "2.2.2.2", start, 1, 200, "OK", True,
                    setup_ms, 50.0, start + 0.1, start + 3, 2.9, False, "caller", None, None, 0, "answered", 7,
                    one_way_audio=one_way)


def _stream(ssrc: int, first: float, last: float, lost: int, jitter_ms: float, mos: float) -> RtpStreamStats:
    return RtpStreamStats("1.1.1.1", 4000, "2.2.2.2", 5000, ssrc, 8, "PCMA", 8000, 100, 100 + lost, lost, 0.0, 0, 0,
                          19.0, 20.0, 21.0, jitter_ms, jitter_ms * 2, mos, first, last, 1, 100)


def _msg(ts: float, method: str | None, status: int | None, cseq: int, cseq_method: str) -> SipMessageInfo:
    return SipMessageInfo(1, ts, "1.1.1.1", 5061, "2.2.2.2", 5061, "tls", method, status, "", "ka@x", cseq,
                          cseq_method)


def _result(calls=(), streams=(), messages=()) -> AnalysisResult:
    return AnalysisResult((), 0, None, None, False, {}, {}, tuple(messages), tuple(calls), (), (), tuple(streams),
                          (), (), (), ())


def test_overlapping_windows_count_each_item_once() -> None:
    t = RunningTotals(forget_after_s=600)
    a = _result(calls=[_call("c1", 100, 250.0, one_way=True)],
                streams=[_stream(1, 100, 103, lost=4, jitter_ms=5.0, mos=4.1)],
                messages=[_msg(100.0, "OPTIONS", None, 1, "OPTIONS"), _msg(100.02, None, 200, 1, "OPTIONS")])
    calls, streams = t.observe(a, now=110)
    assert (len(calls), len(streams)) == (1, 1)
    calls, streams = t.observe(a, now=111)  # the same window again: nothing new
    assert (calls, streams) == ([], [])
    b = replace(a, calls=(*a.calls, _call("c2", 105, 2500.0)))
    t.observe(b, now=112)
    totals = t.snapshot().to_dict()
    assert {k: v for k, v in totals.items() if k != "histograms"} == {
        "calls": {"answered": 2}, "sip_responses": {"OPTIONS 200": 1}, "rtp_streams": 1, "rtp_packets_lost": 4,
        "one_way_audio_calls": 1}
    h = totals["histograms"]
    assert h["call_setup_seconds"]["count"] == 2 and h["call_setup_seconds"]["buckets"]["0.25"] == 1
    assert h["call_setup_seconds"]["buckets"]["3.0"] == 2
    assert h["keepalive_rtt_seconds"]["count"] == 1 and abs(h["keepalive_rtt_seconds"]["sum"] - 0.02) < 1e-6
    assert h["rtp_mos"]["buckets"]["4.2"] == 1 and h["rtp_mos"]["buckets"]["4.0"] == 0


def test_running_streams_wait_until_they_end() -> None:
    t = RunningTotals(forget_after_s=600)
    running = _result(streams=[_stream(7, 100, 109, lost=0, jitter_ms=1.0, mos=4.4)])
    assert t.observe(running, now=110)[1] == []
    assert len(t.observe(running, now=113)[1]) == 1


def test_memory_is_bounded_by_forgetting() -> None:
    t = RunningTotals(forget_after_s=10)
    for i in range(100):
        t.observe(_result(calls=[_call(f"c{i}", i, 100.0)]), now=float(i))
    assert len(t._seen) <= 11
    assert t.snapshot().calls["answered"] == 100


def test_histogram_buckets_are_cumulative() -> None:
    h = Histogram((1.0, 2.0, 5.0))
    for v in (0.5, 1.0, 1.5, 7.0, float("nan")):
        h.observe(v)
    assert (h.counts, h.total, h.count) == ([2, 3, 3], 10.0, 4)
