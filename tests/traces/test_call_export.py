"""Which packets belong to a call (``traces.call_export``): Call-ID in long or compact form, media 5-tuples."""

from __future__ import annotations

import dataclasses

import pytest

from core.analysis import AnalysisResult, CallInfo, RtpStreamStats, SdpMedia
from core.errors import UpscopeError
from traces.call_export import BYE_SLACK_S, select_call


def _call(call_id: str, streams: tuple[int, ...] = ()) -> CallInfo:
    return CallInfo(call_id, "sip:a@x", "sip:b@y", "a", "b", "10.0.0.1", "10.0.0.2", 100.0, 1, 200, "OK", True,
                    50.0, 20.0, 100.05, 160.0, 59.95, False, "caller", None, None, 0, "answered", 6, (1, 2),
                    streams)


def _stream(src: str, sport: int, dst: str, dport: int) -> RtpStreamStats:
    return RtpStreamStats(src, sport, dst, dport, 1, 8, "PCMA", 8000, 10, 10, 0, 0.0, 0, 0, 20.0, 20.0, 20.0, 0.0,
                          0.0, 4.4, 100.1, 159.9, 3, 500)


def _result(*calls: CallInfo) -> AnalysisResult:
    return AnalysisResult(("x.pcap",), 500, 100.0, 170.0, False, {}, {}, (), calls, (), (),
                          (_stream("10.0.0.1", 4000, "10.0.0.2", 6000), _stream("10.0.0.2", 6000, "10.0.0.1", 4000)),
                          (), (), (), ())


def test_signalling_by_call_id_in_long_and_compact_form() -> None:
    sel = select_call(_result(_call("abc@host", (0, 1))), "abc@host")
    assert sel.wants_signalling(b"INVITE sip:x SIP/2.0\r\nCall-ID: abc@host\r\n\r\n")
    assert sel.wants_signalling(b"BYE sip:x SIP/2.0\r\ni:abc@host\r\n\r\n")
    assert not sel.wants_signalling(b"BYE sip:x SIP/2.0\r\nCall-ID: abc@host.other\r\n\r\n")
    assert not sel.wants_signalling(b"BYE sip:x SIP/2.0\r\nX-Note: Call-ID: abc@host\r\n\r\n")


def test_media_by_five_tuple_rtcp_next_port_and_time_window() -> None:
    sel = select_call(_result(_call("abc@host", (0, 1))), "abc@host")
    assert sel.wants_media("10.0.0.1", 4000, "10.0.0.2", 6000, 120.0)
    assert sel.wants_media("10.0.0.2", 6001, "10.0.0.1", 4001, 120.0)  # RTCP
    assert sel.wants_media("10.0.0.1", 4000, "10.0.0.2", 6000, 160.0 + BYE_SLACK_S - 0.1)  # in flight
    assert not sel.wants_media("10.0.0.1", 4000, "10.0.0.2", 6000, 160.0 + BYE_SLACK_S + 0.1)
    assert not sel.wants_media("10.0.0.1", 4000, "10.0.0.2", 6000, 99.9)  # before the INVITE
    assert not sel.wants_media("10.0.0.9", 4000, "10.0.0.2", 6000, 120.0)


def test_reused_ports_keep_each_calls_audio_apart() -> None:
    """The next call on the same media ports ends this call's window; the previous one never
    reaches into it (PBXs hand the same ports to call after call)."""
    first = _call("one", (0, 1))
    second = dataclasses.replace(_call("two"), start_ts=161.0, answer_ts=161.05, end_ts=None, state="answered-open",
                                 media=(SdpMedia("10.0.0.1", "10.0.0.1", 4000, "audio", "sendrecv", 161.0),))
    base = _result(first, second)
    # one stream (same ports and SSRC) carries both calls' audio, as a PBX reusing ports sends it
    spanning = tuple(dataclasses.replace(st, last_ts=190.0) for st in base.rtp_streams)
    result = dataclasses.replace(base, last_ts=200.0, rtp_streams=spanning)
    sel = select_call(result, "one")
    assert sel.end == 161.0  # not 160 + slack: the next call's INVITE
    sel2 = select_call(result, "two")
    assert (sel2.start, sel2.end) == (161.0, 200.0)  # an open call runs to the end of the capture
    # the second call has no stream of its own yet, but its announced port is in its selection
    assert sel2.wants_media("10.0.0.2", 6000, "10.0.0.1", 4000, 170.0)
    assert not sel2.wants_media("10.0.0.2", 6000, "10.0.0.1", 4000, 150.0)  # the first call's audio


def test_unknown_call_names_the_calls_there_are() -> None:
    with pytest.raises(UpscopeError, match=r"'nope' not found \(calls in the capture: abc@host\)"):
        select_call(_result(_call("abc@host")), "nope")
    with pytest.raises(UpscopeError, match="has no calls"):
        select_call(dataclasses.replace(_result(), calls=()), "nope")


def test_regex_metacharacters_in_call_id_are_literal() -> None:
    sel = select_call(_result(_call("a.b*c+(1)")), "a.b*c+(1)")
    assert sel.wants_signalling(b"Call-ID: a.b*c+(1)\r\n") and not sel.wants_signalling(b"Call-ID: aXb*c+(1)\r\n")
