"""Hostile frames through the whole pipeline: whatever the bytes, ``analyze`` returns a result."""

from __future__ import annotations

import struct
from pathlib import Path

from capture_craft import eth, ipv4_tcp, ipv4_udp, pcap_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.analyze import analyze

PREFIXES = [b"", b"INVITE sip:a SIP/2.0\r\n", b"SIP/2.0 200 OK\r\n", b"\x80\x08", b"\x81\xc8\x00\x06",
            b"\x00\x01\x00\x00\x21\x12\xa4\x42", b"\x16\x03\x01", b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n",
            b"v=0\r\nm=audio 1 RTP/AVP 0\r\n", b"\r\n\r\n"]


@st.composite
def frames(draw: st.DrawFn) -> list[tuple[float, bytes]]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        payload = draw(st.sampled_from(PREFIXES)) + draw(st.binary(max_size=120))
        sport, dport = draw(st.sampled_from([(5060, 5060), (40000, 5061), (10000, 20000), (3478, 50000)]))
        if draw(st.booleans()):
            frame = eth(0x0800, ipv4_udp("10.0.0.1", sport, "10.0.0.2", dport, payload))
        else:
            frame = eth(0x0800, ipv4_tcp("10.0.0.1", sport, "10.0.0.2", dport, draw(st.integers(0, 2**32 - 1)), 0,
                                         draw(st.sampled_from([0x02, 0x12, 0x18, 0x11, 0x04])), payload))
        if draw(st.booleans()):  # damage the frame somewhere
            pos = draw(st.integers(0, len(frame) - 1))
            frame = frame[:pos] + draw(st.binary(min_size=1, max_size=4)) + frame[pos + 1:]
        out.append((1.0 + i * 0.01, frame[:draw(st.integers(14, len(frame)))]))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames())
def test_hostile_frames_never_crash_the_pipeline(tmp_path: Path, fs: list[tuple[float, bytes]]) -> None:
    path = tmp_path / "fuzz.pcap"
    path.write_bytes(pcap_bytes(fs))
    result, _ = analyze([path])
    assert result.packets == len(fs)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_any_file_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "any.bin"
    path.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + bytes(8) + struct.pack("<II", 65535, 1) + data)
    analyze([path])
    path.write_bytes(data)
    analyze([path])
