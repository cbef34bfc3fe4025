"""SDP parser: connection addresses, media, rtpmap, ptime, direction; hostile input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.wire.sdp import parse_sdp

OFFER = (
    b"v=0\r\no=osbiz 123 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"a=sendrecv\r\n"
    b"m=audio 30000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
    b"m=video 0 RTP/AVP 96\r\n"
    b"m=audio 30002 RTP/SAVP 9\r\nc=IN IP6 2001:db8::1\r\na=sendonly\r\n"
)


def test_offer_media_addresses_payloads_and_directions() -> None:
    sdp = parse_sdp(OFFER)
    assert sdp.origin_address == "192.0.2.10" and sdp.session_address == "192.0.2.10"
    audio, video, audio6 = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.address) == ("audio", 30000, "RTP/AVP", "192.0.2.10")
    assert audio.payload_map == {8: ("PCMA", 8000), 0: ("PCMU", 8000), 101: ("telephone-event", 8000)}
    assert audio.ptime_ms == 20.0 and audio.direction == "sendrecv"
    assert video.port == 0
    # media-level c= overrides the session one; IPv6 addresses are normalised
    assert audio6.address == "2001:db8::1" and audio6.direction == "sendonly"
    assert audio6.payload_map == {9: ("G722", 8000)}


def test_lf_only_and_session_level_inactive() -> None:
    sdp = parse_sdp(b"v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\na=inactive\nm=audio 5 RTP/AVP 18\n")
    (m,) = sdp.media
    assert m.address is None and m.direction == "inactive" and m.payload_map == {18: ("G729", 8000)}


@pytest.mark.parametrize("data", [
    b"", b"o=- 1 1 IN IP4 1.2.3.4\r\n", b"v=0\r\nm=audio\r\n", b"v=0\r\nm=audio 99999 RTP/AVP 0\r\n",
    b"v=0\r\nc=IN\r\n", b"v=0\r\nnot a line\r\n", b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=ptime:x\r\n",
])
def test_bad_sdp_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_sdp(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(alphabet="vocmat=IN P46 0123456789./:\r\n", max_size=300).map(str.encode))
def test_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_sdp(data)
