"""SDP parser: connection addresses, media, rtpmap, ptime, direction; hostile input."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.wire.sdp import DIRECTIONS, STATIC_PAYLOAD_TYPES, Sdp, SdpMedia, build_sdp, parse_sdp
from tests.core.wire.sdp_reference import reference_parse_sdp

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


def outcome(parse: Callable[[bytes], Sdp], data: bytes) -> Sdp | tuple[str, int | None]:
    try:
        return parse(data)
    except ParseError as exc:
        return str(exc), exc.offset


# SDP-shaped lines, right and damaged: blank and whitespace lines, bare CR, missing '=', bad
# numbers and addresses, non-ASCII text (its error offsets count UTF-8 bytes), more m= than allowed
SDP_LINES = st.sampled_from([
    "v=0", "o=- 1 2 IN IP4 192.0.2.1", "o=short", "s=-", "t=0 0", "c=IN IP4 192.0.2.7", "c=IN IP6 2001:DB8::1",
    "c=IN IP4 224.2.1.1/127/3", "c=IN IP4 host.example", "c=IN", "c=XX IP4 1.2.3.4", "m=audio 4000 RTP/AVP 0 8 101",
    "m=audio 4000/2 RTP/AVP 96", "m=video 0 RTP/AVP 31", "m=image 5000 udptl t38", "m=audio 70000 RTP/AVP 0",
    "m=audio", "a=rtpmap:101 telephone-event/8000", "a=rtpmap:96 opus/48000/2", "a=rtpmap:x y", "a=rtpmap:8",
    "a=ptime:20", "a=ptime: 22.5 ", "a=ptime:inf", "a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv",
    "a=fmtp:101 0-15", "", " ", "\t", "\r", "x", "=v", "1=2", "é=1", "a=é", "s=Ünïcode", " a=sendonly",
])


@settings(max_examples=500, deadline=None)
@given(st.lists(SDP_LINES, max_size=70), st.sampled_from(["\r\n", "\n", "\r\r\n"]), st.booleans())
def test_parse_sdp_equals_the_plain_line_by_line_parser(lines: list[str], eol: str, v_first: bool) -> None:
    data = eol.join((["v=0"] if v_first else []) + lines).encode()
    assert outcome(parse_sdp, data) == outcome(reference_parse_sdp, data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_sdp_equals_the_plain_parser_on_any_bytes(data: bytes) -> None:
    assert outcome(parse_sdp, b"v=0\r\n" + data) == outcome(reference_parse_sdp, b"v=0\r\n" + data)


HUGE = "9" * 5000  # over Python's 4 300-digit limit of int()
SDP_HEAD = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"


@pytest.mark.parametrize(("media", "ok"), [
    (f"m=audio {HUGE} RTP/AVP 8\r\n", False),  # port
    (f"m=audio {HUGE}/2 RTP/AVP 8\r\n", False),  # port with a count
    (f"m=audio 4000 RTP/AVP {HUGE}\r\n", True),  # format: not a payload type, kept as text
    (f"m=audio 4000 RTP/AVP 96\r\na=rtpmap:{HUGE} opus/48000\r\n", True),  # rtpmap payload type
    (f"m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/{HUGE}\r\n", True),  # clock rate
    (f"m=audio 4000 RTP/AVP 8\r\na=ptime:{HUGE}\r\n", False),  # float("9"*5000) is infinite
    ("m=audio 4000 RTP/AVP 8\r\na=ptime:nan\r\n", False),
])
def test_numbers_of_any_length_are_bounded_before_conversion(media: str, ok: bool) -> None:
    data = (SDP_HEAD + media).encode()
    if not ok:
        with pytest.raises(ParseError):
            parse_sdp(data)
        return
    (m,) = parse_sdp(data).media
    assert m.port == 4000 and 96 not in m.payload_map and all(pt < 128 for pt in m.payload_map)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["m=audio {n} RTP/AVP {n}", "a=rtpmap:{n} PCMA/{n}", "a=ptime:{n}",
                                 "m=video {n}/{n} RTP/AVP 96", "c=IN IP4 10.0.0.{n}"]), min_size=1, max_size=6),
       st.integers(1, 6000))
def test_long_digit_runs_in_any_field_parse_or_raise_parse_error(lines: list[str], digits: int) -> None:
    text = SDP_HEAD + "".join(line.format(n="7" * digits) + "\r\n" for line in lines)
    with contextlib.suppress(ParseError):
        parse_sdp(text.encode())


@st.composite
def sdps(draw: st.DrawFn) -> Sdp:
    """An SDP value in the form parse_sdp returns (addresses normalised, payload maps complete)."""
    session = draw(st.none() | st.ip_addresses().map(str))
    media = []
    for _ in range(draw(st.integers(0, 3))):
        pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=4, unique=True))
        pmap: dict[int, tuple[str, int]] = {}
        for pt in pts:
            if pt in STATIC_PAYLOAD_TYPES and draw(st.booleans()):
                pmap[pt] = STATIC_PAYLOAD_TYPES[pt]
            elif pt >= 96 or pt in STATIC_PAYLOAD_TYPES or draw(st.booleans()):
                pmap[pt] = (draw(st.sampled_from(["opus", "telephone-event", "PCMA", "G722"])),
                            draw(st.sampled_from([8000, 16000, 48000])))
        address = draw(st.ip_addresses().map(str)) if session is None or draw(st.booleans()) else session
        media.append(SdpMedia(draw(st.sampled_from(["audio", "video"])), draw(st.integers(0, 65535)),
                              draw(st.sampled_from(["RTP/AVP", "RTP/SAVP"])), tuple(map(str, pts)), address,
                              pmap, draw(st.none() | st.sampled_from([10.0, 20.0, 22.5, 30.0])),
                              draw(st.sampled_from(DIRECTIONS))))
    return Sdp(draw(st.ip_addresses().map(str)), session, tuple(media))


@settings(max_examples=200, deadline=None)
@given(sdps(), st.integers(0, 2**32))
def test_built_sdp_parses_back_to_the_same_value(sdp: Sdp, session_id: int) -> None:
    assert parse_sdp(build_sdp(sdp, session_id=session_id)) == sdp


def test_the_lab_offer_is_the_usual_text() -> None:
    offer = Sdp("10.0.0.1", "10.0.0.1", (SdpMedia("audio", 4000, "RTP/AVP", ("8",), "10.0.0.1",
                                                   {8: ("PCMA", 8000)}, 20.0, "sendrecv"),))
    assert build_sdp(offer, session_id=7, session_name="upscope-lab") == (
        b"v=0\r\no=- 7 7 IN IP4 10.0.0.1\r\ns=upscope-lab\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na=sendrecv\r\n")
