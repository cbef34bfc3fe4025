"""DTMF key presses: RFC 4733 events against tshark on the shared captures, a whole call with
RFC 4733 and SIP INFO through the pipeline, the de-duplication rules, and any-bytes safety."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.analyze import analyze_files
from collectors.media.dtmf import DtmfTap, digits, parse_info_body
from core.analysis import SipMessageInfo
from tests.collectors.media.dtmf_call import CALLEE, CALLER, write_dtmf_call

PCAPS = Path(__file__).resolve().parents[3] / ".." / "shared" / "pcaps"
#: The shared captures with RFC 4733 events (INVENTORY.md) and the keys tshark decodes in them.
CAPTURES = ["asterisk_ulaw-2013785496_dtmf.pcap", "rtpproxy_dtmf.pcapng", "sipp_dtmf_2833_1.pcap",
            "ndpi_rtp.pcapng"]


def _tshark_events(path: Path) -> dict[int, list[tuple[int, int]]]:
    """Per SSRC: (RTP timestamp, event code) of each event in order of its first packet, as
    tshark decodes them (``-Y rtpevent``), packets with the same timestamp and code merged."""
    out = subprocess.run(
        ["tshark", "-o", "rtp.heuristic_rtp:TRUE", "-r", str(path), "-Y", "rtpevent", "-T", "fields",
         "-e", "rtp.ssrc", "-e", "rtp.timestamp", "-e", "rtpevent.event_id"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    events: dict[int, list[tuple[int, int]]] = {}
    for line in out.splitlines():
        ssrc, stamp, code = line.split("\t")
        key = (int(stamp), int(code))
        seen = events.setdefault(int(ssrc, 16), [])
        if key not in seen:
            seen.append(key)
    return events


@pytest.mark.parametrize("name", CAPTURES)
def test_events_equal_tshark(name: str) -> None:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"{path} not present (the shared capture corpus lives in ../shared/pcaps)")
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    expected = _tshark_events(path)
    result = analyze_files([path])
    ours = {s.ssrc: [e.event for e in s.dtmf] for s in result.rtp_streams if s.dtmf}
    assert ours == {ssrc: [code for _, code in events] for ssrc, events in expected.items()}
    # every event packet tshark sees is counted by exactly one event
    packets = sum(e.packets for s in result.rtp_streams for e in s.dtmf)
    assert packets == sum(s.events for s in result.rtp_streams)


def test_the_asterisk_capture_dials_its_own_name() -> None:
    """ulaw-2013785496: the digits 2013785496, each ended, 200 ms (1600 units at 8 kHz)."""
    path = PCAPS / "asterisk_ulaw-2013785496_dtmf.pcap"
    if not path.exists():
        pytest.skip(f"{path} not present")
    (stream,) = analyze_files([path]).rtp_streams
    assert digits(stream.dtmf) == "2013785496"
    assert all(e.ended and e.duration_ms == 200.0 and e.packets == 12 for e in stream.dtmf)


def test_end_packets_sent_three_times_are_one_event() -> None:
    path = PCAPS / "sipp_dtmf_2833_1.pcap"
    if not path.exists():
        pytest.skip(f"{path} not present")
    (stream,) = analyze_files([path]).rtp_streams
    (press,) = stream.dtmf
    assert (press.digit, press.ended, press.packets, press.duration_ms, press.frame) == ("1", True, 10, 280.0, 1)


def test_a_call_with_rfc4733_and_info_keys(tmp_path: Path) -> None:
    """INVITE with telephone-event/8000, events 5 and 9 from the caller, an INFO dtmf-relay '#' and
    an INFO application/dtmf '7' from the callee: all four keys on the call, in time order."""
    pcap = write_dtmf_call(tmp_path / "call.pcap")
    result = analyze_files([pcap])
    (call,) = result.calls
    assert digits(call.dtmf) == "59#7"
    assert [e.source for e in call.dtmf] == ["rfc4733", "rfc4733", "sip-info", "sip-info"]
    assert [e.src for e in call.dtmf] == [CALLER, CALLER, CALLEE, CALLEE]
    assert call.dtmf[2].duration_ms == 160.0 and call.dtmf[3].duration_ms is None
    (caller_stream,) = [result.rtp_streams[i] for i in call.streams if result.rtp_streams[i].src == CALLER]
    assert digits(caller_stream.dtmf) == "59"
    if shutil.which("tshark") is not None:  # the oracle agrees on the RFC 4733 part (SDP-mapped PT 101)
        codes = [c for events in _tshark_events(pcap).values() for _, c in events]
        assert codes == [5, 9]


def _rtp_event(seq: int, stamp: int, code: int, end: bool, duration: int, ssrc: int = 7, pt: int = 101) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, stamp, ssrc) + bytes((code, 0x80 | 10 if end else 10)) \
        + duration.to_bytes(2, "big")


@given(st.integers(1, 20), st.integers(1, 3), st.integers(0, 0xFFFFFFFF), st.integers(0, 15))
@settings(max_examples=100, deadline=None)
def test_repeats_and_end_retransmissions_make_one_press(steps: int, ends: int, stamp: int, code: int) -> None:
    tap = DtmfTap()
    seq = 0
    for k in range(steps):
        tap.on_udp(seq, float(seq), "10.0.0.1", 4000, "10.0.0.2", 5000, _rtp_event(seq, stamp, code, False, 160 * k))
        seq += 1
    for _ in range(ends):
        tap.on_udp(seq, float(seq), "10.0.0.1", 4000, "10.0.0.2", 5000, _rtp_event(seq, stamp, code, True, 160 * steps))
        seq += 1
    presses = tap._events[("10.0.0.1", 4000, "10.0.0.2", 5000, 7)]
    assert len(presses) == 1
    (press,) = [e.result() for e in presses]
    assert (press.event, press.ended, press.packets, press.duration_ms) == (code, True, steps + ends, 20.0 * steps)


def test_a_long_event_in_segments_is_one_press() -> None:
    """RFC 4733 §2.5.1.3: a 65535-unit segment, then the next from timestamp + 65535."""
    tap = DtmfTap()
    packets = [(1000, 0xFFFF, False), (1000 + 0xFFFF, 800, False), (1000 + 0xFFFF, 1600, True)]
    for n, (stamp, duration, end) in enumerate(packets):
        tap.on_udp(n, float(n), "10.0.0.1", 4000, "10.0.0.2", 5000, _rtp_event(n, stamp, 3, end, duration))
    (press,) = [e.result() for e in tap._events[("10.0.0.1", 4000, "10.0.0.2", 5000, 7)]]
    assert press.duration_ms == round((0xFFFF + 1600) / 8, 3) and press.ended and press.digit == "3"


def test_sdp_decides_which_payload_type_is_an_event() -> None:
    tap = DtmfTap()
    tap.expect("10.0.0.2", 5000, {8: ("PCMA", 8000), 96: ("telephone-event", 16000)})
    for pt in (96, 101):  # 101 is no event on an endpoint whose SDP maps 96
        tap.on_udp(pt, 1.0, "10.0.0.1", 4000, "10.0.0.2", 5000, _rtp_event(pt, 1000 + pt, 1, True, 1600, pt=pt))
    (press,) = [e.result() for e in tap._events[("10.0.0.1", 4000, "10.0.0.2", 5000, 7)]]
    assert press.duration_ms == 100.0  # 1600 units at the 16 kHz the rtpmap says


@pytest.mark.parametrize(("ctype", "body", "expected"), [
    ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", (5, 160.0)),
    ("Application/DTMF-Relay; charset=x", b"signal= #\r\n", (11, None)),
    ("application/dtmf-relay", b"Signal=10\r\nDuration=100\r\n", (10, 100.0)),
    ("application/dtmf", b"7\r\n", (7, None)),
    ("application/dtmf", b"*", (10, None)),
    ("application/dtmf-relay", b"Signal=Z\r\n", None),
    ("application/sdp", b"v=0\r\n", None),
])
def test_info_bodies(ctype: str, body: bytes, expected: tuple[int, float | None] | None) -> None:
    assert parse_info_body(ctype, body) == expected


@given(st.binary(max_size=64), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
@settings(max_examples=300, deadline=None)
def test_any_datagram_is_an_event_or_nothing(payload: bytes, sport: int, dport: int) -> None:
    tap = DtmfTap()
    tap.on_udp(1, 1.0, "10.0.0.1", sport, "10.0.0.2", dport, payload)
    tap.on_sip(SipMessageInfo(2, 1.0, "10.0.0.1", 5060, "10.0.0.2", 5060, "udp", "INFO", None, "", "c", 2, "INFO"),
               "application/dtmf-relay", payload)
    for events in tap._events.values():
        assert all(0 <= e.event <= 255 for e in events)
