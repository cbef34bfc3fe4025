"""Streams join the call whose SDP announced their port most recently — PBXs reuse media ports."""

from __future__ import annotations

from dataclasses import dataclass

from collectors.analyze import associate
from core.analysis import CallInfo, RtpStreamStats


@dataclass
class Ep:
    addr: str
    port: int
    ts: float
    sender: str
    direction: str = "sendrecv"
    media: str = "audio"


def _call(cid: str, start: float) -> CallInfo:
    return CallInfo(cid, "sip:a@x", "sip:b@x", "a", "b", "10.0.0.1", "10.0.0.2", start, 1, 200, "OK", True, 100.0,
                    50.0, start + 0.1, start + 4, 3.9, False, "caller", None, None, 0, "answered", 7)


def _stream(src: str, dst: str, port: int, first: float, tagged: str | None = None) -> RtpStreamStats:
    return RtpStreamStats(src, port, dst, port, int(first * 1000), 8, "PCMA", 8000, 200, 200, 0, 0.0, 0, 0,
                          19.0, 20.0, 21.0, 0.5, 1.0, 4.4, first, first + 4, 1, 200, call_id=tagged)


def test_reused_ports_go_to_the_call_of_their_time() -> None:
    calls = (_call("c1", 100.0), _call("c2", 110.0))
    # Both calls announce the same two ports; the SDP of the first comes 0.05 s before its RTP.
    media = {cid: [Ep("10.0.0.1", 4000, t, "10.0.0.1"), Ep("10.0.0.2", 4000, t + 0.05, "10.0.0.2")]
             for cid, t in (("c1", 100.0), ("c2", 110.0))}
    # The RTP analyser saw the RTP before any SDP (trace log fed last) and tagged nothing or wrongly.
    streams = (_stream("10.0.0.2", "10.0.0.1", 4000, 100.2), _stream("10.0.0.1", "10.0.0.2", 4000, 100.2, "c2"),
               _stream("10.0.0.2", "10.0.0.1", 4000, 110.2), _stream("10.0.0.1", "10.0.0.2", 4000, 110.2))
    out_streams, out_calls = associate(streams, calls, media)
    assert [s.call_id for s in out_streams] == ["c1", "c1", "c2", "c2"]
    assert [c.streams for c in out_calls] == [(0, 1), (2, 3)]
    assert not any(c.one_way_audio for c in out_calls)


def test_rtp_just_before_its_sdp_still_belongs_to_it() -> None:
    calls = (_call("c1", 100.0),)
    media = {"c1": [Ep("10.0.0.1", 4000, 100.5, "10.0.0.1"), Ep("10.0.0.2", 4000, 100.5, "10.0.0.2")]}
    streams = (_stream("10.0.0.2", "10.0.0.1", 4000, 99.5),)  # early media, 1 s ahead of the answer
    out_streams, out_calls = associate(streams, calls, media)
    assert out_streams[0].call_id == "c1"
    assert out_calls[0].one_way_audio  # only one direction flowed
