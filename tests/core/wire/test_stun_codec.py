"""STUN codec: messages (RFC 5389/8489, TURN methods, RFC 3489) and the TCP stream framer."""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from counting import CountingBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.wire.stun import (
    CLASSES,
    MAGIC_COOKIE,
    MAX_FRAME,
    METHODS,
    SOFTWARE,
    XOR_MAPPED_ADDRESS,
    ChannelData,
    StunMessage,
    StunStreamFramer,
    build_binding_request,
    build_binding_success,
    build_stun,
    is_stun,
    looks_like_stun_stream,
    parse_datagram,
    parse_stun,
    xor_address,
)
from tests.core.wire.framing import drain

PCAPS = Path(__file__).resolve().parents[3] / ".." / "shared" / "pcaps"
TID = bytes(range(1, 13))


def attr(atype: int, value: bytes) -> bytes:
    return struct.pack("!HH", atype, len(value)) + value + b"\0" * (-len(value) % 4)


def message(mtype: int, *attrs: bytes, tid: bytes = TID) -> bytes:
    body = b"".join(attrs)
    return struct.pack("!HHI", mtype, len(body), MAGIC_COOKIE) + tid + body


def xor_v4(ip: str, port: int) -> bytes:
    x = int(ipaddress.IPv4Address(ip)) ^ MAGIC_COOKIE
    return struct.pack("!BBHI", 0, 1, port ^ (MAGIC_COOKIE >> 16), x)


def xor_v6(ip: str, port: int, tid: bytes = TID) -> bytes:
    raw = ipaddress.IPv6Address(ip).packed
    mask = struct.pack("!I", MAGIC_COOKIE) + tid
    return struct.pack("!BBH", 0, 2, port ^ (MAGIC_COOKIE >> 16)) + bytes(a ^ b for a, b in zip(raw, mask, strict=True))


def test_binding_success_with_xor_mapped_address_v4_and_v6() -> None:
    m = parse_stun(message(0x0101, attr(0x0020, xor_v4("203.0.113.7", 40000)), attr(0x8022, b"upscope")))
    assert (m.method, m.klass, m.transaction_id, m.classic) == ("Binding", "success", TID.hex(), False)
    assert m.mapped_address == "203.0.113.7:40000"
    m6 = parse_stun(message(0x0101, attr(0x0020, xor_v6("2001:db8::42", 3478))))
    assert m6.mapped_address == "[2001:db8::42]:3478"


def test_error_code_and_turn_method_names() -> None:
    err = attr(0x0009, struct.pack("!HBB", 0, 4, 1) + b"Unauthorized")
    m = parse_stun(message(0x0113, err))  # Allocate error response (RFC 8656)
    assert (m.method, m.klass, m.error_code, m.error_reason) == ("Allocate", "error", 401, "Unauthorized")
    assert parse_stun(message(0x0016)).klass == "indication" and parse_stun(message(0x0016)).method == "Send"


def test_classic_rfc3489_without_cookie() -> None:
    mapped = attr(0x0001, struct.pack("!BBH", 0, 1, 5060) + ipaddress.IPv4Address("198.51.100.1").packed)
    data = struct.pack("!HH", 0x0101, len(mapped)) + bytes(range(16)) + mapped
    assert is_stun(data)
    m = parse_stun(data)
    assert m.classic and m.transaction_id == bytes(range(16)).hex() and m.mapped_address == "198.51.100.1:5060"


@pytest.mark.parametrize("data", [
    b"",  # no header
    b"\x00\x01\x00\x00",  # header cut short
    message(0x0001)[:-1],  # header cut short by one byte
    struct.pack("!HHI", 0x0001, 4, MAGIC_COOKIE) + TID + b"\x00\x20\x00\x08",  # attribute beyond message
    message(0x0101, attr(0x0020, b"\x00\x07\x00\x01")),  # unknown address family
    message(0x0111, attr(0x0009, b"\x00")),  # ERROR-CODE too short
    b"\xc0\x01" + message(0x0001)[2:],  # top bits set
])
def test_bad_stun_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_stun(data)


def test_is_stun_rejects_rtp_dtls_and_sip() -> None:
    assert not is_stun(b"\x80\x08" + bytes(170))  # RTP
    assert not is_stun(b"\x16\xfe\xfd" + bytes(40))  # DTLS
    assert not is_stun(b"OPTIONS sip:a SIP/2.0\r\n\r\n")




pieces = st.lists(st.sampled_from([message(0x0003), message(0x0103, attr(0x0020, xor_v4("1.2.3.4", 5))),
                                   struct.pack("!HH", 0x4001, 3) + b"abc\0"]), max_size=6)


@settings(max_examples=50, deadline=None)
@given(pieces)
def test_stream_whole_and_byte_at_a_time_agree(parts: list[bytes]) -> None:
    stream = b"".join(parts)
    whole = StunStreamFramer()
    whole.feed(stream)
    one = StunStreamFramer()
    evs: list[object] = []
    for i in range(len(stream)):
        one.feed(stream[i:i + 1])
        evs += drain(one)
    assert drain(whole) == evs
    assert len(evs) == len(parts)
    assert all(isinstance(e, StunMessage | ChannelData) for e in evs)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.binary(max_size=120).map(lambda b: message(0x0101) [:20] + b))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_stun(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_framer_any_bytes_terminates(chunks: list[bytes]) -> None:
    f = StunStreamFramer()
    for c in chunks:
        f.feed(c)
        drain(f)


def _rfc4571(frame: bytes) -> bytes:
    return struct.pack("!H", len(frame)) + frame


def test_a_hundred_thousand_non_stun_frames_are_skipped_in_linear_work() -> None:
    # ICE-TCP carries RTP in the same RFC 4571 framing; 100 000 of them between two requests.
    rtp = b"\x80\x08" + bytes(170)
    stream = _rfc4571(message(0x0001)) + _rfc4571(rtp) * 100_000 + _rfc4571(message(0x0101))
    for chunk in (len(stream), 1400):
        f = StunStreamFramer()
        f._buf = CountingBuffer()
        CountingBuffer.touched = 0
        evs: list[object] = []
        for i in range(0, len(stream), chunk):
            f.feed(stream[i:i + chunk])
            evs += drain(f)
        assert [(e.method, e.klass) for e in evs if isinstance(e, StunMessage)] == [
            ("Binding", "request"), ("Binding", "success")]
        assert len(evs) == 2 and f.offset == len(stream)
        assert CountingBuffer.touched <= 4 * len(stream), CountingBuffer.touched / len(stream)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=4096) | st.sampled_from([message(0x0001), _rfc4571(message(0x0101))]),
                max_size=40))
def test_the_framer_holds_less_than_one_frame(chunks: list[bytes]) -> None:
    f = StunStreamFramer()
    for c in chunks:
        f.feed(c)
        drain(f)
        assert f.buffered < MAX_FRAME


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([_rfc4571(message(0x0001)), _rfc4571(b"\x80\x00" + bytes(30)),
                                 _rfc4571(message(0x0111, attr(0x0009, b"\x00")))]), max_size=8),
       st.lists(st.integers(1, 30), min_size=1, max_size=8))
def test_rfc4571_stream_events_do_not_depend_on_chunking(parts: list[bytes], cuts: list[int]) -> None:
    stream = _rfc4571(message(0x0003)) + b"".join(parts)
    whole = StunStreamFramer()
    whole.feed(stream)
    expected = drain(whole)
    f = StunStreamFramer()
    evs: list[object] = []
    pos = i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        f.feed(stream[pos:pos + n])
        pos, i = pos + n, i + 1
        evs += drain(f)
    assert evs == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(METHODS)), st.sampled_from(CLASSES), st.binary(min_size=12, max_size=12),
       st.ip_addresses(), st.integers(0, 65535), st.text(max_size=30))
def test_built_messages_parse_back(method: int, klass: str, tid: bytes, ip: object, port: int, software: str) -> None:
    attrs = [(XOR_MAPPED_ADDRESS, xor_address(str(ip), port, tid))]
    if software:
        attrs.append((SOFTWARE, software.encode()))
    data = build_stun(method, klass, tid, attrs)
    assert is_stun(data) and parse_datagram(data) == parse_stun(data)
    m = parse_stun(data)
    host = f"[{ip}]" if ":" in str(ip) else str(ip)
    assert (m.method, m.klass, m.transaction_id, m.classic) == (METHODS[method], klass, tid.hex(), False)
    assert m.mapped_address == f"{host}:{port}"
    assert dict(m.attributes).get(SOFTWARE, b"") == software.encode()


def test_binding_request_and_success_layout() -> None:
    assert build_binding_request(TID) == struct.pack("!HHI", 0x0001, 0, MAGIC_COOKIE) + TID
    req = build_binding_request(TID, "upscope-probe")
    assert req[:8] == bytes.fromhex("000100142112a442") and req.endswith(b"upscope-probe\0\0\0")
    ok = parse_stun(build_binding_success(TID, ("198.51.100.7", 40000), "lab"))
    assert (ok.method, ok.klass, ok.mapped_address) == ("Binding", "success", "198.51.100.7:40000")
    assert ok == parse_stun(message(0x0101, attr(0x0020, xor_v4("198.51.100.7", 40000)), attr(0x8022, b"lab")))


@pytest.mark.parametrize("data", [message(0x0001) + b"\0\0\0\0", struct.pack("!HHI", 1, 8, MAGIC_COOKIE) + TID,
                                  b"\x80" * 20])
def test_a_datagram_must_be_exactly_one_message(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_datagram(data)


@pytest.mark.parametrize("name", ["arkime_stun-ice-testcall.pcap", "zeek_webrtc-stun.pcap"])
def test_stun_codec_agrees_with_tshark(name: str) -> None:
    pcap = PCAPS / name
    if not pcap.is_file():
        pytest.skip(f"{pcap} absent (the shared captures are not next to the repository)")
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "stun", "-T", "fields", "-E", "separator=|",
         "-e", "frame.number", "-e", "udp.payload", "-e", "stun.type", "-e", "stun.att.type",
         "-e", "stun.att.ipv4", "-e", "stun.att.port", "-e", "stun.att.error.class", "-e", "stun.att.error"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line]
    assert len(rows) >= 10  # 108 and 10 STUN frames in the two captures
    for frame, payload, msg_type, att_types, ipv4, port, err_class, err_number in rows:
        msg = parse_stun(bytes.fromhex(payload))
        raw_type = struct.unpack("!H", bytes.fromhex(payload)[:2])[0]
        assert f"0x{raw_type:04x}" == msg_type, frame
        assert [f"0x{t:04x}" for t, _ in msg.attributes] == (att_types.split(",") if att_types else []), frame
        assert msg.mapped_address == (f"{ipv4}:{port}" if ipv4 else None), frame
        if err_class:
            assert msg.error_code == int(err_class) * 100 + int(err_number), frame


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120) | st.binary(max_size=60).map(lambda b: message(0x0001)[:8] + b))
def test_detectors_and_datagram_parser_take_any_bytes(data: bytes) -> None:
    assert looks_like_stun_stream(data) in (True, False)
    try:
        msg = parse_datagram(data)
    except ParseError:
        return
    assert is_stun(data) and msg.length == len(data)
