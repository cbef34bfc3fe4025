"""What the probes send and show: the OPTIONS request, transcript redaction, target parsing.

The answers are parsed by the wire codecs (tests in tests/core/wire).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.probes import ProbeConfigError, parse_target
from collectors.probes.record import redact
from collectors.probes.sip_options import build_options
from core.wire.sip import SipFrame, SipStreamFramer, parse_message


def _options() -> bytes:
    return build_options(target_host="10.0.0.2", target_port=65061, transport="tls", local_host="10.0.0.1",
                         local_port=40000, call_id="c1", branch="z9hG4bK1", tag="t1")


def test_options_request_is_well_formed() -> None:
    msg = parse_message(_options(), datagram=False)
    assert msg.method == "OPTIONS" and msg.status is None
    assert msg.uri == "sip:10.0.0.2:65061;transport=tls"
    assert msg.get("via") == "SIP/2.0/TLS 10.0.0.1:40000;branch=z9hG4bK1;rport"
    assert msg.get("i") == "c1" and msg.cseq == (1, "OPTIONS")
    assert msg.get("Content-Length") == "0" and msg.body == b""
    framer = SipStreamFramer()
    framer.feed(_options())
    assert isinstance(framer.next_event(), SipFrame)


def test_options_to_ipv6_brackets_the_hosts() -> None:
    msg = parse_message(build_options(target_host="2001:db8::2", target_port=5060, transport="udp",
                                      local_host="2001:db8::1", local_port=40000, call_id="c", branch="b", tag="t"))
    assert msg.uri == "sip:[2001:db8::2]:5060;transport=udp"
    assert msg.get("contact") == "<sip:upscope@[2001:db8::1]:40000;transport=udp>"


def test_redact_fingerprints_credentials() -> None:
    text = 'Authorization: Digest username="u", response="deadbeef"\nWWW-Authenticate: Digest nonce="n"\nX: y'
    out = redact(text)
    assert "deadbeef" not in out and 'nonce="n"' not in out
    assert out.splitlines()[0].startswith("Authorization: <redacted sha256:")
    assert out.splitlines()[2] == "X: y"


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
