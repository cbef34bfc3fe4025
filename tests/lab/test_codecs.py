"""Property tests of the lab's sans-IO codecs: SIP framing, digest auth, STUN, RTP/A-law."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ParseError
from core.lab.calls import sdp, sdp_peer
from core.lab.media import (
    TONE,
    _alaw,
    rtp_packet,
    stun_parse,
    stun_request,
    stun_success,
    xor_mapped_address,
)
from core.lab.sipmsg import (
    Framer,
    SipMessage,
    authorization,
    build,
    check_authorization,
    parse,
    parse_auth_params,
    uri_user,
)

INVITE = build("INVITE sip:+49897007100@phoneapp.unify.com SIP/2.0", [
    ("Via", "SIP/2.0/TLS 127.0.0.2:5061;branch=z9hG4bK1"), ("From", "<sip:200@x>;tag=1"),
    ("To", "<sip:+49897007100@phoneapp.unify.com>"), ("Call-ID", "abc@127.0.0.2"), ("CSeq", "1 INVITE"),
], sdp("127.0.0.2", 30000, 1))
OK = build("SIP/2.0 200 OK", [("v", "SIP/2.0/TLS 127.0.0.2:5061;branch=z9hG4bK1"), ("i", "abc"),
                              ("CSeq", "1 INVITE")])


def _events(framer: Framer, chunks: list[bytes]) -> list[str]:
    out: list[str] = []
    for chunk in chunks:
        for item in framer.feed(chunk):
            out.append(item.raw.decode() if isinstance(item, SipMessage) else item)
    return out


def test_framer_splits_messages_and_keepalives() -> None:
    stream = b"\r\n\r\n" + INVITE + OK + b"\r\n"
    items = Framer(server=False).feed(stream)
    assert items[0] == "ping"
    assert isinstance(items[1], SipMessage) and items[1].method == "INVITE"
    assert items[1].call_id == "abc@127.0.0.2" and items[1].cseq == (1, "INVITE")
    assert isinstance(items[2], SipMessage) and items[2].status == 200
    assert items[2].call_id == "abc"  # compact form i = Call-ID (RFC 3261 §7.3.3)
    assert items[3] == "pong"
    assert sdp_peer(items[1].body) == ("127.0.0.2", 30000)


def test_framer_roles_for_a_lone_crlf() -> None:
    assert Framer(server=False).feed(b"\r\n") == ["pong"]  # the client sees its pong at once
    server = Framer(server=True)
    assert server.feed(b"\r\n") == []  # could be half a ping
    assert server.feed(b"\r\n") == ["ping"]
    assert server.feed(b"\r\n" + OK)[0] == "pong"  # a stray CRLF before a message


@given(st.lists(st.integers(1, 64), min_size=1, max_size=40))
def test_framer_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    stream = b"\r\n\r\n" + INVITE + b"\r\n\r\n" + OK + INVITE
    chunks, pos = [], 0
    for cut in cuts:
        chunks.append(stream[pos:pos + cut])
        pos += cut
    chunks.append(stream[pos:])
    assert _events(Framer(server=True), chunks) == _events(Framer(server=True), [stream])


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_framer_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    for server in (False, True):
        with contextlib.suppress(ParseError):
            Framer(server=server).feed(data)


@given(st.binary(max_size=300))
def test_parse_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse(data)


def test_parse_rejects_garbage_with_parse_error() -> None:
    with pytest.raises(ParseError):
        parse(b"HELLO\r\n\r\n")
    with pytest.raises(ParseError):
        Framer().feed(b"X" * 70000)


def test_digest_round_trip_and_wrong_key() -> None:
    challenge = 'Digest realm="phoneapp.unify.com", nonce="n1", algorithm=MD5, qop="auth"'
    auth = authorization(challenge, "osbiz-lab", "key-1", "REGISTER", "sip:phoneapp.unify.com")
    assert "key-1" not in auth  # the password never travels
    assert parse_auth_params(auth)["username"] == "osbiz-lab"
    assert check_authorization(auth, "key-1", "REGISTER", "n1")
    assert not check_authorization(auth, "key-2", "REGISTER", "n1")
    assert not check_authorization(auth, "key-1", "REGISTER", "other-nonce")


def test_uri_user() -> None:
    assert uri_user('"Anna" <sip:+49897007100@phoneapp.unify.com;user=phone>;tag=1') == "+49897007100"
    assert uri_user("garbage") == ""


@given(st.binary(min_size=12, max_size=12), st.integers(1, 65535),
       st.tuples(*[st.integers(0, 255)] * 4))
def test_stun_binding_round_trip(txid: bytes, port: int, octets: tuple[int, ...]) -> None:
    ip = ".".join(map(str, octets))
    mtype, tid, attrs = stun_parse(stun_success(txid, (ip, port)))
    assert (mtype, tid) == (0x0101, txid)
    assert xor_mapped_address(attrs[0x0020]) == (ip, port)
    assert stun_parse(stun_request(txid))[:2] == (0x0001, txid)


@given(st.binary(max_size=200))
def test_stun_any_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        stun_parse(data)


def test_rtp_packet_and_alaw() -> None:
    pkt = rtp_packet(65535, 160, 0x1234, TONE, marker=True)
    v, mpt, seq, ts, ssrc = struct.unpack("!BBHII", pkt[:12])
    assert (v >> 6, mpt & 0x7F, mpt >> 7, seq, ts, ssrc) == (2, 8, 1, 65535, 160, 0x1234)
    assert len(pkt) == 12 + 160  # 20 ms of G.711 at 8 kHz
    # ITU-T G.711 A-law reference points: +0 → 0xD5, -0 side → 0x55, full scale → 0xAA / 0x2A
    assert _alaw(0) == 0xD5 and _alaw(-8) == 0x55
    assert _alaw(32767) == 0xAA and _alaw(-32768) == 0x2A


@given(st.text(max_size=300))
def test_header_helpers_take_any_text(text: str) -> None:
    from core.lab.sipmsg import param

    assert isinstance(parse_auth_params(text), dict)
    assert isinstance(uri_user(text), str)
    assert param(text, "expires") is None or isinstance(param(text, "expires"), str)


@given(st.binary(max_size=400))
def test_sdp_peer_takes_any_body(body: bytes) -> None:
    peer = sdp_peer(body)
    assert peer is None or (isinstance(peer[0], str) and 0 < peer[1] < 65536)
    assert sdp_peer(b"c=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 8\r\n") is None
    assert sdp_peer(b"c=IN IP4 999.2.3.4\r\nm=audio 9 RTP/AVP 8\r\n") is None


def test_sdp_offer_round_trip() -> None:
    assert sdp_peer(sdp("127.0.0.1", 40000, 7)) == ("127.0.0.1", 40000)
    assert sdp_peer(b"v=0\r\nm=audio 1 RTP/AVP 8\r\n") is None  # no c= line
