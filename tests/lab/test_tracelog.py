"""The lab's OSBiz trace log (DOMAIN §11) reads back exactly through upscope's own trace reader."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.lab.artifacts import TraceLog, neutralize
from core.wire.sip_build import build_message
from traces.tracelog import TraceLogReader

_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20)
_VALUE = st.one_of(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ;=<>:@.+-_\"",
            min_size=0, max_size=60),
    st.sampled_from(["x <<OUT-END>> y", ">>IN-END<<", "(SIP_SA [ldh:1.2.3.4] 1"]),  # forged trace syntax
)
_BODY_LINE = st.one_of(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 =/:.+-", max_size=40),
                       st.just('(SIP_SA [ldh:10.0.0.1] 1f "01/01/2026 00:00:00.000000"'))


@st.composite
def sip_messages(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        method = draw(st.sampled_from(["INVITE", "REGISTER", "OPTIONS", "BYE", "ACK"]))
        start = f"{method} sip:{draw(_TOKEN)}@x SIP/2.0"
    else:
        start = f"SIP/2.0 {draw(st.integers(100, 699))} {draw(_TOKEN)}"
    headers = [(draw(_TOKEN).capitalize(), draw(_VALUE).strip()) for _ in range(draw(st.integers(0, 30)))]
    lines = draw(st.lists(_BODY_LINE, max_size=20))
    body = "\r\n".join(lines).encode()
    if lines and draw(st.booleans()):
        body += b"\r\n"
    return build_message(start, [("Call-ID", draw(_TOKEN)), ("CSeq", "1 INVITE"), *headers], body)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), sip_messages()), min_size=1, max_size=6),
       st.integers(1, 4096))
def test_trace_log_round_trips_through_the_reader(tmp_path_factory: pytest.TempPathFactory,
                                                  messages: list[tuple[bool, bytes]], chunk: int) -> None:
    path = tmp_path_factory.mktemp("trace") / "osbiz-trace.log"
    log = TraceLog(path, "127.0.0.2")
    pbx, connector = ("127.0.0.2", 40000), ("127.0.0.1", 65061)
    for outgoing, raw in messages:
        if outgoing:
            log("out", raw, pbx, connector)
        else:
            log("in", raw, connector, pbx)
    log.close()
    data = path.read_bytes()
    reader = TraceLogReader()
    got = []
    for i in range(0, len(data), chunk):  # any feeding gives the same messages
        got += reader.feed(data[i:i + chunk])
    got += reader.close()
    assert not reader.errors
    # a forged marker or block start inside a message is defused, at the same length
    assert [(m.outgoing, m.data) for m in got] == [
        (out, neutralize(raw.decode()).encode()) for out, raw in messages]
    assert all((m.src, m.sport) == (pbx if m.outgoing else connector) for m in got)
    assert all((m.dst, m.dport) == (connector if m.outgoing else pbx) for m in got)
