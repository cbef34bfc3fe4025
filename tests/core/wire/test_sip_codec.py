"""SIP message parser and stream framer: hand-written messages and properties."""

from __future__ import annotations

import contextlib

import pytest
from counting import CountingBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.wire.sip import (
    MAX_BUFFERED,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    NEED_DATA,
    CrlfPing,
    CrlfPong,
    SipFrame,
    SipStreamFramer,
    header_param,
    looks_like_sip,
    parse_message,
    uri_of,
    user_of,
)
from core.wire.sip_build import build_message, build_request, build_response
from tests.core.wire.framing import drain

SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n"

INVITE_LONG = (
    b"INVITE sip:+4989700@pbx.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK0\r\n"
    b"From: \"Alice, A.\" <sip:100@pbx.example>;tag=a1\r\n"
    b"To: <sip:+4989700@pbx.example>\r\n"
    b"Call-ID: abc@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:100@10.0.0.1:5060>\r\n"
    b"Supported: timer,\r\n 100rel\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
INVITE_COMPACT = (
    b"INVITE sip:+4989700@pbx.example SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"V: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK0\r\n"
    b"f: \"Alice, A.\" <sip:100@pbx.example>;tag=a1\r\n"
    b"t: <sip:+4989700@pbx.example>\r\n"
    b"i: abc@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"m: <sip:100@10.0.0.1:5060>\r\n"
    b"k: timer, 100rel\r\n"
    b"c: application/sdp\r\n"
    b"l: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
OK_200 = (
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: abc@10.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def test_request_fields_and_multi_values() -> None:
    m = parse_message(INVITE_LONG)
    assert (m.method, m.uri, m.status) == ("INVITE", "sip:+4989700@pbx.example", None)
    assert m.get("i") == m.get("Call-ID") == "abc@10.0.0.1"
    assert m.get_all("via") == ["SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1",
                                "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK0"]
    # The comma inside the quoted display name is not a list separator; From is not a list.
    assert m.get_all("from") == ['"Alice, A." <sip:100@pbx.example>;tag=a1']
    assert m.get("supported") == "timer, 100rel"  # folded line joined (RFC 3261 §7.3.1)
    assert m.body == SDP


def test_compact_and_long_forms_are_equivalent() -> None:
    a, b = parse_message(INVITE_LONG), parse_message(INVITE_COMPACT)
    for name in ("via", "from", "to", "call-id", "cseq", "contact", "supported", "content-type"):
        assert a.get_all(name) == b.get_all(name), name
    assert a.body == b.body


def test_status_line_and_reason_phrase() -> None:
    m = parse_message(b"SIP/2.0 486 Busy Here\r\nCall-ID: x\r\nCSeq: 2 INVITE\r\n\r\n")
    assert (m.status, m.reason, m.method) == (486, "Busy Here", None)
    assert parse_message(b"SIP/2.0 200\r\nCall-ID: x\r\n\r\n").reason == ""


def test_invalid_content_length_on_udp_is_tolerated_with_warning() -> None:
    m = parse_message(b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: xyz\r\n\r\nbody")
    assert m.body == b"body"
    assert m.warnings == ("invalid Content-Length",)


def test_content_length_bounds_the_udp_body() -> None:
    m = parse_message(b"MESSAGE sip:a@b SIP/2.0\r\nl: 2\r\n\r\nhello")
    assert m.body == b"he"
    short = parse_message(b"MESSAGE sip:a@b SIP/2.0\r\nl: 20\r\n\r\nhello")
    assert short.body == b"hello" and "truncated" in short.warnings[0]


@pytest.mark.parametrize("data", [
    b"", b"HELLO\r\n\r\n", b"INVITE sip:a SIP/2.0\r\nno colon here\r\n\r\n",
    b"\x00\x00\x00\x00", b"SIP/2.0 20 OK\r\n\r\n", b"INVITE sip:a SIP/2.0\r\n folded-first\r\n\r\n",
])
def test_garbage_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message(data)


def test_header_count_is_capped() -> None:
    data = b"OPTIONS sip:a SIP/2.0\r\n" + b"X-A: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    with pytest.raises(ParseError, match="header count"):
        parse_message(data)


def test_looks_like_sip() -> None:
    assert looks_like_sip(INVITE_LONG) and looks_like_sip(OK_200)
    assert not looks_like_sip(b"\x00\x00\x00\x00")
    assert not looks_like_sip(b"GET / HTTP/1.1\r\n")




def test_stream_framing_several_messages_and_keepalives() -> None:
    stream = b"\r\n\r\n" + INVITE_LONG + OK_200 + b"\r\n" + OK_200
    f = SipStreamFramer()
    f.feed(stream)
    evs = drain(f)
    assert isinstance(evs[0], CrlfPing) and (evs[0].offset, evs[0].end) == (0, 4)
    assert isinstance(evs[1], SipFrame) and evs[1].message.body == SDP
    assert isinstance(evs[2], SipFrame) and evs[2].message.status == 200
    assert isinstance(evs[3], CrlfPong)
    assert isinstance(evs[4], SipFrame) and evs[4].end == len(stream)


def test_lone_crlf_is_a_pong_only_at_a_segment_boundary() -> None:
    f = SipStreamFramer()
    f.feed(b"\r\n")
    assert f.next_event() is NEED_DATA  # could still be the first half of a ping
    f.segment_boundary()
    assert isinstance(f.next_event(), CrlfPong)
    g = SipStreamFramer()
    g.feed(b"\r\n")
    assert g.next_event() is NEED_DATA
    g.feed(b"\r\n")
    assert isinstance(g.next_event(), CrlfPing)


def test_stream_resynchronises_after_garbage() -> None:
    f = SipStreamFramer()
    f.feed(b"garbage line\r\nmore garbage\r\n" + OK_200)
    evs = drain(f)
    assert evs[0] == ("error", 0)
    assert isinstance(evs[1], SipFrame) and evs[1].message.status == 200
    assert len(evs) == 2


def test_stream_bad_content_length_is_an_error_then_continues() -> None:
    bad = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: bad\r\n\r\n"
    f = SipStreamFramer()
    f.feed(bad + OK_200)
    evs = drain(f)
    assert evs[0] == ("error", 0)
    assert [e.message.status for e in evs[1:] if isinstance(e, SipFrame)] == [200]


def _describe(evs: list[object]) -> list[object]:
    return [(type(e).__name__, e.offset, e.end, e.raw if isinstance(e, SipFrame) else None)
            if not isinstance(e, tuple) else e for e in evs]


sip_pieces = st.lists(st.sampled_from([INVITE_LONG, INVITE_COMPACT, OK_200, b"\r\n\r\n", b"\r\n"]),
                      max_size=8)


@settings(max_examples=60, deadline=None)
@given(sip_pieces)
def test_whole_and_byte_at_a_time_yield_the_same_messages(pieces: list[bytes]) -> None:
    stream = b"".join(pieces)
    whole = SipStreamFramer()
    whole.feed(stream)
    one = SipStreamFramer()
    evs: list[object] = []
    for i in range(len(stream)):
        one.feed(stream[i:i + 1])
        evs += drain(one)
    assert _describe(drain(whole)) == _describe(evs)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_message(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80), st.sampled_from([OK_200, b"\r\n", b"INVITE "])),
                max_size=10))
def test_framer_any_bytes_terminates_with_events_or_parse_errors(chunks: list[bytes]) -> None:
    f = SipStreamFramer()
    for chunk in chunks:
        f.feed(chunk)
        drain(f)  # only ParseError may escape next_event (caught inside), and it terminates
    assert f.offset <= sum(len(c) for c in chunks)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300).filter(lambda b: b"\n" not in b and b[:1] not in (b"\r", b"S", b"I", b"O")),
       st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_resync_after_garbage_finds_the_messages_whatever_the_chunking(garbage: bytes, cuts: list[int]) -> None:
    stream = b"X" + garbage + b"\r\n" + OK_200 + INVITE_COMPACT
    f = SipStreamFramer()
    evs: list[object] = []
    pos = i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        f.feed(stream[pos:pos + n])
        pos, i = pos + n, i + 1
        evs += drain(f)
    frames = [e for e in evs if isinstance(e, SipFrame)]
    assert [fr.raw for fr in frames] == [OK_200, INVITE_COMPACT]
    assert frames[0].offset == len(stream) - len(OK_200) - len(INVITE_COMPACT)


def test_long_request_line_is_sip_in_datagrams_and_after_garbage_in_streams() -> None:
    long_req = b"OPTIONS sip:" + b"a" * 600 + b"@x SIP/2.0\r\nCall-ID: 1\r\nContent-Length: 0\r\n\r\n"
    assert looks_like_sip(long_req) and parse_message(long_req).method == "OPTIONS"
    stream = b"garbage line\r\n" + long_req
    for size in (1, 7, len(stream)):
        f = SipStreamFramer()
        evs: list[object] = []
        for i in range(0, len(stream), size):
            f.feed(stream[i:i + size])
            evs += drain(f)
        assert evs[0] == ("error", 0)
        assert [e.raw for e in evs[1:] if isinstance(e, SipFrame)] == [long_req]


_HEADER_LINE = st.one_of(
    st.sampled_from(["Via: SIP/2.0/UDP a;branch=z9hG4bK1", "v : x", " folded", "\tfolded", "", "\r", "no colon",
                     "Bad Name: x", "i:abc", "CALL-ID:  x ", "Content-Length: 0", "X-\x7f: y", "f:<sip:a@b>\r"]),
    st.text(st.characters(min_codepoint=0, max_codepoint=127, blacklist_characters="\n"), max_size=30),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_HEADER_LINE, max_size=8), st.integers(0, 100))
def test_ascii_header_loop_equals_the_decoding_loop(lines: list[str], pos: int) -> None:
    """The fast loop for ASCII header sections gives the same headers, or the same error at the
    same byte offset, as decoding line by line (twice: the second run uses the name cache)."""
    from core.wire.sip import _ascii_headers, _decoded_headers

    def outcome(fn: object, arg: list[object]) -> object:
        try:
            return fn(arg, pos)  # type: ignore[operator]
        except ParseError as exc:
            return str(exc), exc.offset

    want = outcome(_decoded_headers, [line.encode("ascii") for line in lines])
    assert outcome(_ascii_headers, lines) == want
    assert outcome(_ascii_headers, lines) == want


def _counted_run(stream: bytes, chunk: int) -> tuple[int, int, int]:
    """(frames, errors, bytes touched) of one framer fed ``stream`` in ``chunk``-byte pieces."""
    f = SipStreamFramer()
    f._buf = CountingBuffer()
    CountingBuffer.touched = 0
    frames = errors = 0
    for i in range(0, len(stream), chunk):
        f.feed(stream[i:i + chunk])
        for ev in drain(f):
            frames += isinstance(ev, SipFrame)
            errors += isinstance(ev, tuple)
    return frames, errors, CountingBuffer.touched


# Damage a real stream can carry: a start line whose header section is broken (one error each),
# lines of noise, and valid messages in between.
BROKEN = b"SIP/2.0 200 OK\r\nno colon here\r\n\r\n"
NOISE = b"\x17\x03\x03 binary noise \x00\xff\r\n"


@pytest.mark.parametrize("chunk", [1 << 20, 1400, 97])
def test_resync_over_a_megabyte_of_damage_is_linear(chunk: int) -> None:
    unit = BROKEN * 20 + NOISE * 20 + OK_200
    stream = unit * (1_000_000 // len(unit) + 1)
    units = len(stream) // len(unit)
    frames, errors, touched = _counted_run(stream, chunk)
    assert frames == units
    assert errors == units * 21  # each broken message, and the noise after the last one
    # Every byte is looked at a small, fixed number of times (quadratic work would be ~10⁵ × more).
    assert touched <= 8 * len(stream), touched / len(stream)


def test_a_stream_of_many_messages_in_one_chunk_is_framed_in_linear_work() -> None:
    stream = (INVITE_LONG + OK_200 + b"\r\n\r\n") * 10_000
    frames, errors, touched = _counted_run(stream, len(stream))
    assert (frames, errors) == (20_000, 0)
    assert touched <= 8 * len(stream), touched / len(stream)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([INVITE_LONG, OK_200, BROKEN, NOISE, b"garbage\r\n", b"\r\n\r\n"]),
                max_size=10),
       st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_damaged_streams_give_the_same_events_whatever_the_chunking(pieces: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pieces)
    whole = SipStreamFramer()
    whole.feed(stream)
    expected = _describe(drain(whole))
    for sizes in ([1], cuts):
        f = SipStreamFramer()
        evs: list[object] = []
        pos = i = 0
        while pos < len(stream):
            n = sizes[i % len(sizes)]
            f.feed(stream[pos:pos + n])
            pos, i = pos + n, i + 1
            evs += drain(f)
        assert _describe(evs) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=4096) | st.sampled_from([OK_200, INVITE_LONG]), max_size=40))
def test_the_framer_holds_at_most_one_incomplete_message(chunks: list[bytes]) -> None:
    f = SipStreamFramer()
    for c in chunks:
        f.feed(c)
        drain(f)
        assert f.buffered <= MAX_BUFFERED


def test_a_header_section_without_end_is_dropped_at_the_cap() -> None:
    f = SipStreamFramer()
    f.feed(b"INVITE sip:a SIP/2.0\r\n")
    for _ in range(200):
        f.feed(b"X-Filler: " + b"a" * 1000 + b"\r\n")
        evs = drain(f)
        assert f.buffered <= MAX_HEADER_BYTES
    assert ("error", 0) in evs or f.offset > 0


HUGE = b"9" * 5000  # over Python's 4 300-digit limit of int()


def test_a_content_length_of_any_length_is_an_error_not_a_crash() -> None:
    bad = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: " + HUGE + b"\r\n\r\n"
    assert parse_message(bad).warnings == ("invalid Content-Length",)
    with pytest.raises(ParseError, match="Content-Length is not a number"):
        parse_message(bad, datagram=False)
    f = SipStreamFramer()
    f.feed(bad + OK_200)
    evs = drain(f)
    assert evs[0] == ("error", 0)
    assert [e.raw for e in evs if isinstance(e, SipFrame)] == [OK_200]


@pytest.mark.parametrize(("cseq", "expected"), [
    (b"1 INVITE", (1, "INVITE")), (b"2147483647 BYE", (2147483647, "BYE")), (HUGE + b" INVITE", None),
    (b"12345678901 INVITE", None), (b"\xd9\xa3 INVITE", None), (b"1", None), (b"", None),
])
def test_cseq_number_is_bounded(cseq: bytes, expected: tuple[int, str] | None) -> None:
    msg = parse_message(b"OPTIONS sip:a SIP/2.0\r\nCSeq: " + cseq + b"\r\nContent-Length: 0\r\n\r\n")
    assert msg.cseq == expected


def test_header_parameters_and_uri_helpers() -> None:
    value = '"Anna" <sip:+4989700100@pbx.example;user=phone>;tag=ab12;Expires=60'
    assert uri_of(value) == "sip:+4989700100@pbx.example;user=phone"
    assert user_of(value) == "+4989700100" and user_of("<sip:pbx.example>") == "pbx.example"
    assert header_param(value, "tag") == "ab12" and header_param(value, "expires") == "60"
    assert header_param(value, "branch") is None


_NAMES = st.sampled_from(["Via", "From", "To", "Call-ID", "CSeq", "Contact", "X-Custom", "Supported", "Subject"])
_VALUES = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.just(" "),
                  min_size=1, max_size=40).map(str.strip).filter(bool)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=10), st.binary(max_size=200),
       st.sampled_from(["INVITE", "OPTIONS", "REGISTER", "BYE"]))
def test_built_requests_parse_back_the_same_and_frame_on_a_stream(
        headers: list[tuple[str, str]], body: bytes, method: str) -> None:
    raw = build_request(method, "sip:+4989700@pbx.example", headers, body)
    msg = parse_message(raw, datagram=False)
    assert (msg.method, msg.uri, msg.body) == (method, "sip:+4989700@pbx.example", body)
    assert msg.headers[:-1] == tuple((k.lower(), v) for k, v in headers)
    assert msg.headers[-1] == ("content-length", str(len(body)))
    f = SipStreamFramer()
    f.feed(raw + raw)
    assert [e.raw for e in drain(f) if isinstance(e, SipFrame)] == [raw, raw]


def test_a_response_copies_the_transaction_headers() -> None:
    request = parse_message(INVITE_COMPACT)
    raw = build_response(request, 486, [("Server", "lab")], to_tag="t1")
    resp = parse_message(raw, datagram=False)
    assert (resp.status, resp.reason) == (486, "Busy Here")
    assert resp.get_all("via") == request.get_all("via")
    assert resp.get("to") == "<sip:+4989700@pbx.example>;tag=t1"
    assert (resp.call_id, resp.cseq, resp.get("from"), resp.get("server")) == (
        "abc@10.0.0.1", (1, "INVITE"), request.get("from"), "lab")
    again = parse_message(build_response(resp, 200, to_tag="other"))
    assert again.get("to") == "<sip:+4989700@pbx.example>;tag=t1"  # a tag is never replaced
    assert build_message("SIP/2.0 200 OK", [("Content-Length", "99"), ("l", "5")]).endswith(
        b"\r\nContent-Length: 0\r\n\r\n")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.binary(max_size=200), st.integers(0, 50))
def test_the_helpers_take_any_input(text: str, data: bytes, pos: int) -> None:
    assert isinstance(uri_of(text), str) and isinstance(user_of(text), str)
    assert header_param(text, "tag") is None or ";" in text
    assert looks_like_sip(data, pos) in (True, False)
    with contextlib.suppress(ParseError):
        msg = parse_message(b"SIP/2.0 200 OK\r\nCSeq: " + text.encode("utf-8", "replace") + b"\r\n\r\n")
        assert msg.cseq is None or 0 <= msg.cseq[0] < 10**10


# Header-section pieces with what the compiled scanner must refuse or get right: bare LF/CR,
# tabs, control and non-ASCII bytes, folding, spaces around names and values, repeated and
# compact names, empty lines, colons in values, the caps.
_PLAIN_LINE = st.sampled_from([b"Via: SIP/2.0/UDP a;branch=z9hG4bK1", b"v : x", b"i:abc", b"CALL-ID:  x \t",
                               b"Content-Length: 3", b"l: 99", b"f:<sip:a@b>", b"Max-Forwards:\t70",
                               b"Subject: a:b:c", b"CSeq: 1 INVITE", b"Call-ID:", b"To:\t <sip:b@c> \t"])
_SCAN_LINE = st.one_of(  # mostly lines the scanner takes, so that whole sections are plain often
    _PLAIN_LINE, _PLAIN_LINE, _PLAIN_LINE,
    st.sampled_from([b" folded", b"\tfolded", b"", b"no colon", b"Bad Name: x", b"X-\x7f: y", b"To: \xc3\xa9",
                     b"X-Ctl: a\x01b", b"X-Vt: a\x0bb", b":empty name"]),
    st.binary(max_size=30).filter(lambda b: b"\n" not in b),
)
_START = st.sampled_from([b"INVITE sip:a@b SIP/2.0", b"SIP/2.0 200 OK", b"SIP/2.0 180  Ringing ", b"BYE x SIP/2.0",
                          b"", b"garbage", b"SIP/2.0 99 X", b"OPTIONS sip:\xc3\xa9 SIP/2.0"])
_EOL = st.sampled_from([b"\r\n"] * 8 + [b"\n", b"\r", b"\r\r\n"])


_SECTION = st.one_of(
    # plain sections (what the scanner must read exactly like the Python parser) ...
    st.lists(_PLAIN_LINE, max_size=10).map(lambda lines: b"".join(line + b"\r\n" for line in lines) + b"\r\n"),
    # ... and anything else (what it must leave to the Python parser, or read the same)
    st.tuples(st.lists(st.tuples(_SCAN_LINE, _EOL), max_size=10), st.sampled_from([b"\r\n"] * 4 + [b"\n", b""]))
    .map(lambda t: b"".join(line + eol for line, eol in t[0]) + t[1]),
)


@settings(max_examples=500, deadline=None)
@given(_START, _SECTION, st.binary(max_size=12), st.booleans())
def test_the_compiled_header_scan_gives_what_the_python_parser_gives(
        start: bytes, section: bytes, body: bytes, datagram: bool) -> None:
    """parse_message with core/wire/_sipscan.c and without it: the same message, or the same
    error at the same offset, for any header section (twice: the second time the names the
    first run checked are known to the scanner)."""
    import core.wire.sip as sip

    if sip._sipscan is None:
        pytest.skip("the compiled SIP scanner is not built (pip install -e .)")
    data = start + b"\r\n" + section + body

    def outcome() -> object:
        try:
            return sip.parse_message(data, datagram=datagram)
        except ParseError as exc:
            return str(exc), exc.offset

    with_scan = [outcome(), outcome()]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sip, "_sipscan", None)
        assert with_scan == [outcome(), outcome()]


def test_the_compiled_header_scan_takes_plain_messages_and_refuses_the_rest() -> None:
    """The scanner reads a plain message itself (its result is not just the fallback's), and
    leaves folding, bare LF and unknown names to the Python parser."""
    import core.wire.sip as sip

    if sip._sipscan is None:
        pytest.skip("the compiled SIP scanner is not built (pip install -e .)")
    plain = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\ni:  abc \t\r\nContent-Length: 2\r\n\r\nxy"
    sip.parse_message(plain)  # the names are checked once by the Python parser
    names = sip._NAMES
    assert sip._sipscan.scan(plain, names, sip.MAX_HEADERS, sip.MAX_HEADER_BYTES) == (
        "SIP/2.0 200 OK", len(plain) - 2, [("via", "SIP/2.0/UDP h"), ("call-id", "abc"), ("content-length", "2")])
    for other in (plain.replace(b"i:  abc \t", b"i:  abc\r\n continued"), plain.replace(b"\r\nVia", b"\nVia"),
                  plain.replace(b"Via:", b"Vyy:"), plain.replace(b"abc", b"\xc3\xa9"), plain[:-4]):
        assert sip._sipscan.scan(other, names, sip.MAX_HEADERS, sip.MAX_HEADER_BYTES) is None
    many = b"OPTIONS x SIP/2.0\r\n" + b"Via: a\r\n" * (sip.MAX_HEADERS + 1) + b"\r\n"
    assert sip._sipscan.scan(many, names, sip.MAX_HEADERS, sip.MAX_HEADER_BYTES) is None
