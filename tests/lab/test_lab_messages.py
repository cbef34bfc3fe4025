"""What the lab's parties put on the wire and read back, all through the wire codecs:
requests and responses, SDP offers, keepalives on a real connection, STUN, RTP/A-law."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given
from hypothesis import strategies as st

from core.lab.calls import response, sdp, sdp_peer
from core.lab.media import TONE, StunServer, _alaw
from core.lab.sipconn import SipConnection
from core.wire import stun
from core.wire.rtp import build_rtp, parse_rtp
from core.wire.sip import SipMessage, parse_message
from core.wire.sip_build import build_request

INVITE = build_request("INVITE", "sip:+49897007100@phoneapp.unify.com", [
    ("Via", "SIP/2.0/TLS 127.0.0.2:5061;branch=z9hG4bK1"), ("From", "<sip:200@x>;tag=1"),
    ("To", "<sip:+49897007100@phoneapp.unify.com>"), ("Call-ID", "abc@127.0.0.2"), ("CSeq", "1 INVITE"),
    ("Content-Type", "application/sdp")], sdp("127.0.0.2", 30000, 1))


def test_a_lab_answer_is_a_response_to_its_request() -> None:
    req = parse_message(INVITE, datagram=False)
    ok = parse_message(response(req, 200, "t9", [("Contact", "<sip:lab@127.0.0.1:5061>")],
                                sdp("127.0.0.1", 40000, 2)), datagram=False)
    assert (ok.status, ok.reason, ok.cseq, ok.call_id) == (200, "OK", (1, "INVITE"), "abc@127.0.0.2")
    assert ok.get("to") == "<sip:+49897007100@phoneapp.unify.com>;tag=t9"
    assert (ok.get("server"), ok.get("content-type")) == ("upscope-lab", "application/sdp")
    assert sdp_peer(req.body) == ("127.0.0.2", 30000) and sdp_peer(ok.body) == ("127.0.0.1", 40000)
    busy = parse_message(response(req, 486, "t9"))
    assert (busy.status, busy.reason, busy.body) == (486, "Busy Here", b"")


def test_keepalives_on_a_real_connection() -> None:
    """The server side answers a CRLFCRLF ping (even split over two writes) with a pong, which the
    client counts; requests reach the handler, responses complete the client's transaction."""

    async def main() -> tuple[int, list[str], int | None]:
        seen: list[str] = []
        server_conns: list[SipConnection] = []

        async def on_request(conn: SipConnection, msg: SipMessage) -> None:
            seen.append(msg.method or "")
            conn.send(response(msg, 200))

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server_conns.append(SipConnection(reader, writer, on_request, server=True))

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def no_requests(conn: SipConnection, msg: SipMessage) -> None:
            raise AssertionError("the server sends no requests")

        client = SipConnection(reader, writer, no_requests)
        client.send_ping()
        options = build_request("OPTIONS", "sip:x", [("Via", "SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKo"),
                                                     ("Call-ID", "ka"), ("CSeq", "7 OPTIONS")])
        answer = await client.request(options, timeout=3.0)
        writer.write(b"\r\n")  # half a ping; the rest follows in another segment
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"\r\n")
        for _ in range(50):
            if client.pongs >= 2:
                break
            await asyncio.sleep(0.05)
        await client.close()
        for conn in server_conns:
            await conn.close()
        server.close()
        await server.wait_closed()
        return client.pongs, seen, answer.status if answer else None

    pongs, seen, status = asyncio.run(main())
    assert (pongs, seen, status) == (2, ["OPTIONS"], 200)


def test_the_lab_stun_server_answers_with_the_source_address() -> None:
    async def main() -> tuple[stun.StunMessage, tuple[str, int]]:
        loop = asyncio.get_running_loop()
        server, _ = await loop.create_datagram_endpoint(StunServer, local_addr=("127.0.0.1", 0))
        got: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                got.set_result(data)

        client, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))
        client.sendto(b"not stun at all, ignored", server.get_extra_info("sockname"))
        client.sendto(stun.build_binding_request(b"123456789012"), server.get_extra_info("sockname"))
        data = await asyncio.wait_for(got, 3.0)
        mine = client.get_extra_info("sockname")
        client.close()
        server.close()
        return stun.parse_datagram(data), (mine[0], mine[1])

    answer, (host, port) = asyncio.run(main())
    assert (answer.method, answer.klass, answer.transaction_id) == ("Binding", "success", b"123456789012".hex())
    assert answer.mapped_address == f"{host}:{port}"


def test_rtp_packet_and_alaw() -> None:
    pkt = build_rtp(8, 65535, 160, 0x1234, TONE, marker=True)
    h = parse_rtp(pkt)
    assert (h.payload_type, h.marker, h.seq, h.timestamp, h.ssrc, h.payload_len) == (8, True, 65535, 160, 0x1234, 160)
    assert struct.unpack("!B", pkt[:1])[0] >> 6 == 2 and len(pkt) == 12 + 160  # 20 ms of G.711 at 8 kHz
    # ITU-T G.711 A-law reference points: +0 → 0xD5, -0 side → 0x55, full scale → 0xAA / 0x2A
    assert _alaw(0) == 0xD5 and _alaw(-8) == 0x55
    assert _alaw(32767) == 0xAA and _alaw(-32768) == 0x2A


@given(st.binary(max_size=400))
def test_sdp_peer_takes_any_body(body: bytes) -> None:
    peer = sdp_peer(body)
    assert peer is None or (isinstance(peer[0], str) and 0 < peer[1] < 65536)
    assert sdp_peer(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 99999 RTP/AVP 8\r\n") is None
    assert sdp_peer(b"v=0\r\nc=IN IP4 999.2.3.4\r\nm=audio 9 RTP/AVP 8\r\n") is None


def test_sdp_offer_round_trip() -> None:
    assert sdp_peer(sdp("127.0.0.1", 40000, 7)) == ("127.0.0.1", 40000)
    assert sdp_peer(b"v=0\r\nm=audio 1 RTP/AVP 8\r\n") is None  # no c= line
    assert sdp_peer(b"v=0\r\nc=IN IP6 ::1\r\nm=audio 1 RTP/AVP 8\r\n") is None  # the lab's media is IPv4
