"""The sans-IO parsers of the probes: SIP framing, STUN, targets — examples, properties, tshark."""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.probes import ProbeConfigError, parse_target
from collectors.probes.sip import SipStreamParser, build_options, parse_datagram, redact
from collectors.probes.stun import build_binding_request, parse_message
from core.errors import ParseError

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"

RESPONSE = (
    b"SIP/2.0 200 OK\r\nv: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bKx\r\ni: abc@h\r\n"
    b"CSeq: 1 OPTIONS\r\nServer: conn\r\n  folded\r\nl: 4\r\n\r\nbody"
)


def _options() -> bytes:
    return build_options(target_host="10.0.0.2", target_port=65061, transport="tls", local_host="10.0.0.1",
                         local_port=40000, call_id="c1", branch="z9hG4bK1", tag="t1")


def test_options_request_is_well_formed() -> None:
    msg = parse_datagram(_options())
    assert msg.method == "OPTIONS" and msg.status is None
    assert msg.header("via") == "SIP/2.0/TLS 10.0.0.1:40000;branch=z9hG4bK1;rport"
    assert msg.header("i") == "c1"
    assert msg.cseq_method == "OPTIONS"
    assert msg.header("Content-Length") == "0"


def test_compact_headers_folding_and_body() -> None:
    msg = parse_datagram(RESPONSE)
    assert (msg.status, msg.reason) == (200, "OK")
    assert msg.header("Call-ID") == "abc@h"
    assert msg.header("server") == "conn folded"
    assert msg.body == b"body"


def test_stream_framing_with_pongs_and_two_messages_in_one_read() -> None:
    parser = SipStreamParser()
    parser.feed(b"\r\n\r\n" + RESPONSE + b"\r\n" + RESPONSE[:30])
    first = parser.next_message()
    assert first is not None and first.body == b"body"
    assert parser.next_message() is None  # second one incomplete
    parser.feed(RESPONSE[30:])
    second = parser.next_message()
    assert second is not None and second.header("i") == "abc@h"
    assert parser.next_message() is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "not a SIP start line"),
        (b"SIP/2.0 200 OK\r\nbroken header\r\nContent-Length: 0\r\n\r\n", "malformed header"),
        (b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", "exceeds"),
        (b"SIP/2.0 200 OK\r\n\r\n", "without Content-Length"),
        (b"SIP/2.0 200 OK\r\nX: \xff\r\nContent-Length: 0\r\n\r\n", "not UTF-8"),
    ],
)
def test_stream_errors_are_parse_errors(data: bytes, message: str) -> None:
    parser = SipStreamParser()
    parser.feed(data)
    with pytest.raises(ParseError, match=message):
        parser.next_message()


def test_stream_header_block_is_bounded() -> None:
    parser = SipStreamParser()
    parser.feed(b"SIP/2.0 200 OK\r\n" + b"X: y\r\n" * 20000)
    with pytest.raises(ParseError, match="no end of headers"):
        parser.next_message()


def test_redact_fingerprints_credentials() -> None:
    text = 'Authorization: Digest username="u", response="deadbeef"\nWWW-Authenticate: Digest nonce="n"\nX: y'
    out = redact(text)
    assert "deadbeef" not in out and 'nonce="n"' not in out
    assert out.splitlines()[0].startswith("Authorization: <redacted sha256:")
    assert out.splitlines()[2] == "X: y"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_datagram(data)
    parser = SipStreamParser()
    parser.feed(data)
    try:
        for _ in range(10):
            if parser.next_message() is None:
                break
    except ParseError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_whole_vs_chunked_feeding_gives_the_same_messages(cuts: list[int]) -> None:
    stream = b"\r\n".join([RESPONSE, _options(), RESPONSE]) + b"\r\n\r\n"
    whole = SipStreamParser()
    whole.feed(stream)
    expected = []
    while (m := whole.next_message()) is not None:
        expected.append(m)
    chunked, got, pos = SipStreamParser(), [], 0
    for size in cuts * 100:
        if pos >= len(stream):
            break
        chunked.feed(stream[pos:pos + size])
        pos += size
        while (m := chunked.next_message()) is not None:
            got.append(m)
    chunked.feed(stream[pos:])
    while (m := chunked.next_message()) is not None:
        got.append(m)
    assert got == expected and len(expected) == 3


# --- STUN ---


def test_binding_request_layout() -> None:
    data = build_binding_request(b"\x01" * 12, software="x")
    assert data[:8] == bytes.fromhex("000100082112a442")
    msg = parse_message(data)
    assert (msg.method, msg.msg_class, msg.transaction_id) == (1, "request", b"\x01" * 12)
    assert msg.attributes == ((0x8022, b"x"),)


def test_xor_mapped_ipv6() -> None:
    txid = bytes(range(12))
    ip = bytes.fromhex("20010db8000000000000000000000001")
    key = struct.pack("!I", 0x2112A442) + txid
    attr = struct.pack("!HHBBH", 0x0020, 20, 0, 2, 3478 ^ 0x2112) + bytes(a ^ b for a, b in zip(ip, key, strict=True))
    msg = parse_message(struct.pack("!HHI", 0x0101, len(attr), 0x2112A442) + txid + attr)
    assert msg.mapped_address == ("2001:db8::1", 3478)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01", "shorter than the 20-byte header"),
        (b"\xc0\x01\x00\x00" + b"\x21\x12\xa4\x42" + b"x" * 12, "leading bits"),
        (b"\x00\x01\x00\x03" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"abc", "multiple of 4"),
        (b"\x00\x01\x00\x08" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"abcd", "header says 8"),
        (b"\x00\x01\x00\x04" + b"\x21\x12\xa4\x42" + b"x" * 12 + b"\x00\x20\x00\x08", "runs past"),
    ],
)
def test_stun_errors(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_message(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_stun_any_bytes_parse_or_raise(data: bytes) -> None:
    try:
        msg = parse_message(data)
        _ = msg.mapped_address, msg.error
    except ParseError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=12), st.text(max_size=40))
def test_stun_build_parse_roundtrip(txid: bytes, software: str) -> None:
    msg = parse_message(build_binding_request(txid, software=software or None))
    assert msg.transaction_id == txid and msg.magic_cookie
    assert msg.attribute(0x8022) == (software.encode() if software else None)


@pytest.mark.parametrize("name", ["arkime_stun-ice-testcall.pcap", "zeek_webrtc-stun.pcap"])
def test_stun_parser_agrees_with_tshark(name: str) -> None:
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
        msg = parse_message(bytes.fromhex(payload))
        raw_type = struct.unpack("!H", bytes.fromhex(payload)[:2])[0]
        assert f"0x{raw_type:04x}" == msg_type, frame
        assert [f"0x{t:04x}" for t, _ in msg.attributes] == (att_types.split(",") if att_types else []), frame
        mapped = msg.mapped_address
        assert (mapped == (ipv4, int(port))) if ipv4 else mapped is None, frame
        if err_class:
            assert msg.error is not None and msg.error[0] == int(err_class) * 100 + int(err_number), frame


# --- targets ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:5060", ("127.0.0.1", 5060)), ("[::1]:5061", ("::1", 5061)), ("conn.example:65061",
     ("conn.example", 65061)), ("[::1]", ("::1", 3478)), ("host", ("host", 3478))],
)
def test_targets(text: str, expected: tuple[str, int]) -> None:
    t = parse_target(text, default_port=3478)
    assert (t.host, t.port) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_target_text_parses_or_raises_config_error(text: str) -> None:
    try:
        t = parse_target(text, default_port=None)
    except ProbeConfigError:
        return
    assert 1 <= t.port <= 65535 and t.host and not any(ch.isspace() for ch in t.host)
