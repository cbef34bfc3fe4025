"""Hostile input end to end: mutated SIP into the analyser never raises; compact ≡ long forms."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from test_sip_analyzer import SDP_PBX, req, resp

from collectors.capture.packets import StreamData, UdpPacket
from collectors.sip.analyzer import SipAnalyzer
from core.analysis import to_jsonable
from core.wire.sip import COMPACT_FORMS, parse_message

SEEDS = [
    req("INVITE", 1, body=SDP_PBX), resp(180, "Ringing", 1, "INVITE"), resp(200, "OK", 1, "INVITE", body=SDP_PBX),
    req("REGISTER", 1, call_id="r", extra="Contact: <sip:1@h>;expires=60\r\n"), resp(401, "Unauthorized", 1, "REGISTER", call_id="r"),
    req("BYE", 2, to_tag="t9", extra="Reason: Q.850;cause=999999999999\r\n"), req("OPTIONS", 5, call_id="o"),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:pos + draw(st.integers(1, 40))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=20))
    return bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(mutated(), min_size=1, max_size=12), st.lists(st.integers(1, 200), min_size=1, max_size=12))
def test_mutated_sip_never_raises(messages: list[bytes], cuts: list[int]) -> None:
    a = SipAnalyzer(keep_messages=5)
    stream = b"".join(messages)
    for i, m in enumerate(messages):
        a.on_udp(UdpPacket(i + 1, float(i), "10.0.0.1", 5060, "10.0.0.2", 5060, m))
    pos = 0
    for j, n in enumerate(cuts * 20):
        if pos >= len(stream):
            break
        a.on_stream(StreamData(100 + j, 100.0 + j, "10.0.0.1", 5061, "10.0.0.2", 5060, stream[pos:pos + n], 1))
        pos += n
    result = a.finish(1000.0)
    json.dumps(to_jsonable(result))
    assert a.finish(1000.0) == result  # finish() does not change the analyser
    assert len(result.sip_messages) <= 5


LONG_NAMES = sorted(set(COMPACT_FORMS.values()))
REVERSE = {v: k for k, v in COMPACT_FORMS.items()}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(LONG_NAMES), st.text("abc;=<>@:. ", min_size=1, max_size=20).map(str.strip)
                          .filter(bool), st.booleans(), st.booleans()), max_size=10))
def test_compact_and_long_headers_are_equivalent(headers: list[tuple[str, str, bool, bool]]) -> None:
    long_lines = "".join(f"{n}: {v}\r\n" for n, v, _, _ in headers)
    compact_lines = "".join(f"{REVERSE[n] if c else n.title()}{' ' if sp else ''}: {v}\r\n"
                            for n, v, c, sp in headers)
    a = parse_message(f"OPTIONS sip:x SIP/2.0\r\n{long_lines}\r\n".encode())
    b = parse_message(f"OPTIONS sip:x SIP/2.0\r\n{compact_lines}\r\n".encode())
    assert a.headers == b.headers
    for name in LONG_NAMES:
        assert a.get_all(name) == b.get_all(REVERSE[name])
