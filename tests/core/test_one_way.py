"""``core.one_way``: the one judgement behind the analyser's flag, the finding and the firewall."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from core.analysis import CallInfo, RtpStreamStats, SdpMedia
from core.one_way import OneWayThresholds, judge_call, judge_media

A, B = "192.168.1.10", "35.246.178.20"
T0 = 1_800_000_000.0


def stream(src: str, sport: int, dst: str, dport: int, first: float = T0 + 1, packets: int = 500,
           call_id: str | None = "c1") -> RtpStreamStats:
    return RtpStreamStats(src, sport, dst, dport, 7, 8, "PCMA", 8000, packets, packets, 0, 0.0, 0, 0, 20.0, 20.0,
                          20.0, 0.5, 1.0, 4.41, first, first + packets * 0.02, 100, 100 + packets, call_id=call_id)


def call(media: tuple[SdpMedia, ...] = (), streams: tuple[int, ...] = (0,), duration: float = 10.0,
         answered: bool = True) -> CallInfo:
    return CallInfo("c1", "sip:a@x", "sip:b@y", "a", "b", A, B, T0, 1, 200 if answered else 486, "", answered,
                    500.0, 100.0, T0 + 0.5 if answered else None, T0 + 0.5 + duration if answered else T0 + 1,
                    duration if answered else None, False, "caller", None, None, 0,
                    "answered" if answered else "failed", 7, (1, 2, 3), streams, media=media)


SDP = (SdpMedia(A, A, 20000, "audio", "sendrecv", T0), SdpMedia(B, B, 30000, "audio", "sendrecv", T0 + 0.5))


def test_rtp_to_one_announced_side_only() -> None:
    out = stream(A, 20000, B, 30000)
    v = judge_call(call(SDP), [out])
    assert v is not None and v.kind == "no-return" and v.unheard == (A,) and v.streams == (out,)
    # the answer reaches A's announced port: two-way
    assert judge_call(call(SDP, (0, 1)), [out, stream(B, 30000, A, 20000)]) is None
    # asymmetric RTP (sent from one port, received on another) is still two-way by the SDP
    assert judge_call(call(SDP, (0, 1)), [out, stream(B, 30002, A, 20000)]) is None


def test_nat_latching_counts_as_heard() -> None:
    private = (dataclasses.replace(SDP[0], addr="10.0.0.5"), SDP[1])
    out, back = stream(A, 20000, B, 30000), stream(B, 30000, A, 20000)  # back to where A sends from
    assert judge_call(call(private, (0, 1)), [out, back]) is None


def test_hold_short_calls_and_bursts_are_not_one_way() -> None:
    out = stream(A, 20000, B, 30000)
    held = (SDP[0], dataclasses.replace(SDP[1], direction="recvonly"))
    assert judge_call(call(held), [out]) is None
    assert judge_call(call(SDP, duration=1.5), [out]) is None
    assert judge_call(call(SDP), [stream(A, 20000, B, 30000, packets=49)]) is None
    assert judge_call(call(SDP, answered=False), [out]) is None
    # thresholds are the caller's
    assert judge_call(call(SDP), [stream(A, 20000, B, 30000, packets=49)], OneWayThresholds(min_packets=40))


def test_without_sdp_each_stream_needs_one_back() -> None:
    out = stream(A, 20000, B, 30000)
    assert judge_call(call(), [out]) is not None
    assert judge_call(call(streams=(0, 1)), [out, stream(B, 30000, A, 20000)]) is None
    # a stream back that flowed at another time does not answer this one
    late = stream(B, 30000, A, 20000, first=out.last_ts + 30)
    assert judge_call(call(streams=(0, 1), duration=60.0), [out, late]) is not None


def test_one_side_falling_silent() -> None:
    out = stream(A, 20000, B, 30000, packets=1000)  # 20 s
    back = stream(B, 30000, A, 20000, packets=400)  # 8 s
    v = judge_call(call(SDP, (0, 1), duration=25.0), [out, back])
    assert v is not None and v.kind == "silent-side" and v.streams == (back,)
    assert v.silent_for_s is not None and abs(v.silent_for_s - 12.0) < 1e-6
    assert judge_call(call(SDP, (0, 1), duration=25.0), [out, back], OneWayThresholds(silence_s=15.0)) is None


def test_streams_of_no_call() -> None:
    lone = stream(A, 20000, B, 30000, call_id=None)
    media = judge_media([], [lone])
    assert media.loose == (lone,) and not media.calls and bool(media)
    assert not judge_media([], [lone, stream(B, 30000, A, 20000, call_id=None)])
    assert not judge_media([], [stream(A, 20000, B, 30000, packets=20, call_id=None)])
    # early media of a call that was never answered is the call's, and flows one way by design
    ringing = call(SDP, answered=False)
    assert not judge_media([dataclasses.replace(ringing, streams=(0,))], [lone])


@given(st.integers(50, 3000), st.integers(0, 3000), st.floats(2.0, 600.0))
def test_a_stream_back_to_the_unheard_side_always_clears_no_return(out_n: int, back_n: int, duration: float) -> None:
    out = stream(A, 20000, B, 30000, packets=out_n)
    v = judge_call(call(SDP, duration=duration), [out])
    assert v is not None and v.kind == "no-return"
    if back_n:
        back = stream(B, 30000, A, 20000, packets=back_n)
        w = judge_call(call(SDP, (0, 1), duration=duration), [out, back])
        assert w is None or w.kind == "silent-side"
