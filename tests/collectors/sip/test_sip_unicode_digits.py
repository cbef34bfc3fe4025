"""Non-ASCII digits ("²", Arabic-Indic) pass str.isdigit() but are no SIP/SDP digits: never a crash."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.packets import UdpPacket
from collectors.sip.analyzer import SipAnalyzer
from core.errors import ParseError
from core.wire.sdp import parse_sdp
from core.wire.sip import parse_message

ODD_DIGITS = ["²", "٣", "۵", "߁", "१", "①"]


@pytest.mark.parametrize("digit", ODD_DIGITS)
def test_sdp_with_unicode_digits_is_an_error_not_a_crash(digit: str) -> None:
    for body in (f"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio {digit} RTP/AVP 0\r\n",
                 f"v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP {digit}\r\na=rtpmap:{digit} PCMU/8000\r\n"):
        with contextlib.suppress(ParseError):
            parse_sdp(body.encode())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ODD_DIGITS), st.sampled_from(["CSeq", "Content-Length", "Expires", "Max-Forwards"]))
def test_sip_headers_with_unicode_digits_never_crash_the_analyser(digit: str, header: str) -> None:
    raw = (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nCall-ID: x\r\n"
           f"CSeq: 1 REGISTER\r\n{header}: {digit}{digit}\r\n\r\n").encode()
    with contextlib.suppress(ParseError):
        parse_message(raw)
    sip = SipAnalyzer()
    sip.on_udp(UdpPacket(1, 1.0, "192.0.2.1", 5060, "192.0.2.2", 5060, raw))
    sip.finish(2.0)
