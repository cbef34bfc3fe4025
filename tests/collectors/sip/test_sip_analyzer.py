"""SipAnalyzer on hand-written flows: calls, registrations, keepalives, KPIs, redaction."""

from __future__ import annotations

import json

from collectors.capture.packets import StreamData, UdpPacket
from collectors.sip.analyzer import SipAnalyzer, redact
from core.analysis import to_jsonable

PBX, ITSP = "10.0.0.1", "192.0.2.5"
SDP_PBX = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
SDP_ITSP = b"v=0\r\no=- 2 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\nm=audio 5000 RTP/AVP 8\r\n"


def req(method: str, cseq: int, call_id: str = "c1", *, to_tag: str | None = None, from_tag: str = "f1",
        extra: str = "", body: bytes = b"", uri: str = "sip:+49897@itsp.example", branch: str = "b1",
        from_user: str = "100", to_user: str = "+49897") -> bytes:
    to = f"<sip:{to_user}@itsp.example>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {PBX}:5060;branch=z9hG4bK{branch}\r\n"
            f"From: <sip:{from_user}@itsp.example>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n{extra}")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def resp(code: int, reason: str, cseq: int, method: str, call_id: str = "c1", *, to_tag: str | None = "t9",
         extra: str = "", body: bytes = b"", from_tag: str = "f1") -> bytes:
    to = "<sip:+49897@itsp.example>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP {PBX}:5060;branch=z9hG4bKb1\r\n"
            f"From: <sip:100@itsp.example>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n{extra}")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class Feeder:
    def __init__(self, analyzer: SipAnalyzer) -> None:
        self.a = analyzer
        self.frame = 0

    def up(self, ts: float, data: bytes) -> None:  # PBX → ITSP
        self.frame += 1
        assert self.a.on_udp(UdpPacket(self.frame, ts, PBX, 5060, ITSP, 5060, data))

    def down(self, ts: float, data: bytes) -> None:  # ITSP → PBX
        self.frame += 1
        assert self.a.on_udp(UdpPacket(self.frame, ts, ITSP, 5060, PBX, 5060, data))


def test_challenged_answered_call_hung_up_by_callee() -> None:
    sdp_seen: list[tuple[str, str, int, dict[int, tuple[str, int]], float]] = []
    a = SipAnalyzer(on_sdp=lambda *args: sdp_seen.append(args))
    f = Feeder(a)
    f.up(100.0, req("INVITE", 1, body=SDP_PBX))
    f.up(100.5, req("INVITE", 1, body=SDP_PBX))  # Timer A retransmission
    f.down(100.6, resp(407, "Proxy Authentication Required", 1, "INVITE", extra='Proxy-Authenticate: Digest realm="x", nonce="n"\r\n'))
    f.up(100.7, req("ACK", 1, to_tag="t9"))
    auth = 'Proxy-Authorization: Digest username="100", realm="x", nonce="n", response="deadbeef"\r\n'
    f.up(100.8, req("INVITE", 2, body=SDP_PBX, extra=auth, branch="b2"))
    f.down(100.85, resp(100, "Trying", 2, "INVITE", to_tag=None))
    f.down(101.8, resp(180, "Ringing", 2, "INVITE"))
    f.down(105.0, resp(200, "OK", 2, "INVITE", body=SDP_ITSP))
    f.up(105.1, req("ACK", 2, to_tag="t9"))
    # the callee hangs up: BYE comes from the ITSP side with From = the callee's tag
    bye = req("BYE", 7, from_tag="t9", to_tag="f1", extra="Reason: Q.850;cause=16;text=\"Normal call clearing\"\r\n",
              from_user="+49897", to_user="100")
    f.down(165.0, bye)
    f.up(165.02, resp(200, "OK", 7, "BYE", from_tag="t9", to_tag="f1"))
    r = a.finish(170.0)
    assert r.sip_requests == {"INVITE": 3, "ACK": 2, "BYE": 1}
    assert r.sip_responses == {"407": 1, "100": 1, "180": 1, "200": 2}
    assert r.retransmissions == 1 and [m.frame for m in r.sip_messages if m.retransmission] == [2]
    (call,) = r.calls
    assert (call.caller, call.callee, call.src, call.dst) == ("100", "+49897", PBX, ITSP)
    assert call.final_code == 200 and call.answered and call.state == "answered"
    assert call.pdd_ms == 1800.0  # first INVITE → 180 of the authenticated INVITE (the 407 is no answer)
    assert call.setup_ms == 5000.0 and call.duration_s == 60.0
    assert call.hangup_by == "callee" and call.q850_cause == 16
    assert call.retransmissions == 1 and call.messages == 11
    # SDP from both sides, RFC 3264: each side announces where it receives
    eps = {(e.sender, e.addr, e.port) for e in r.call_media["c1"]}
    assert eps == {(PBX, "10.0.0.1", 4000), (ITSP, "192.0.2.5", 5000)}
    assert sdp_seen[0][:3] == ("c1", "10.0.0.1", 4000) and sdp_seen[0][3][101] == ("telephone-event", 8000)
    assert r.kpis["sdd_ms"] == 20.0 and r.kpis["asr_pct"] == 100.0 and r.kpis["scr_pct"] == 100.0
    # no digest secret anywhere in the result
    dumped = json.dumps(to_jsonable(r))
    assert "deadbeef" not in dumped


def test_cancelled_call_and_failed_call_kpis() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    f.up(0.0, req("INVITE", 1, call_id="c1"))
    f.down(0.2, resp(180, "Ringing", 1, "INVITE", call_id="c1"))
    f.up(10.0, req("CANCEL", 1, call_id="c1", extra="Reason: Q.850;cause=31\r\n"))
    f.down(10.1, resp(200, "OK", 1, "CANCEL", call_id="c1"))
    f.down(10.2, resp(487, "Request Terminated", 1, "INVITE", call_id="c1"))
    f.up(20.0, req("INVITE", 1, call_id="c2"))
    f.down(20.1, resp(503, "Service Unavailable", 1, "INVITE", call_id="c2"))
    f.up(30.0, req("INVITE", 1, call_id="c3"))  # never answered
    assert a.finish(40.0).calls[2].state == "in-progress"  # 10 s: Timer B (32 s) still running
    r = a.finish(80.0)
    c1, c2, c3 = r.calls
    assert c1.state == "cancelled" and c1.cancelled and c1.final_code == 487 and c1.q850_cause == 31
    assert c1.end_ts == 10.0 and c1.pdd_ms == 200.0
    assert c2.state == "failed" and c2.final_code == 503 and c2.final_reason == "Service Unavailable"
    assert c3.state == "failed" and c3.final_code is None  # timed out
    assert r.kpis["asr_pct"] == 0.0
    assert r.kpis["isa_pct"] == round(200 / 3, 3)  # 503 and the timed-out one
    assert r.kpis["ner_pct"] == round(100 / 3, 3)  # 487 (no answer) only


def test_reinvite_is_not_a_new_call_and_proxy_legs_are_one_call() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    f.up(0.0, req("INVITE", 1))
    f.frame += 1  # the same INVITE forwarded by a proxy on a second leg
    a.on_udp(UdpPacket(f.frame, 0.01, "10.0.0.2", 5060, "192.0.2.99", 5060, req("INVITE", 1, branch="p1")))
    f.down(1.0, resp(200, "OK", 1, "INVITE"))
    f.up(30.0, req("INVITE", 2, to_tag="t9", branch="b5"))  # re-INVITE (hold)
    f.down(30.1, resp(200, "OK", 2, "INVITE"))
    r = a.finish(60.0)
    (call,) = r.calls
    assert call.answered and call.setup_ms == 1000.0 and r.retransmissions == 0
    assert call.duration_s == 29.1  # no BYE: until the last message of the call
    assert call.end_ts is None


def test_registration_challenge_then_registered_with_contact_expires() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    contact = "Contact: <sip:100@10.0.0.1:5060>\r\n"
    f.up(0.0, req("REGISTER", 1, call_id="r1", uri="sip:itsp.example", extra=contact + "Expires: 3600\r\n", to_user="100"))
    f.down(0.05, resp(401, "Unauthorized", 1, "REGISTER", call_id="r1"))
    auth = 'Authorization: Digest username="100", nonce="n", response="cafe01"\r\n'
    f.up(0.1, req("REGISTER", 2, call_id="r1", uri="sip:itsp.example", extra=contact + auth, to_user="100"))
    f.down(0.25, resp(200, "OK", 2, "REGISTER", call_id="r1",
                      extra="Contact: <sip:999@10.9.9.9>;expires=30, <sip:100@10.0.0.1:5060>;expires=120\r\nExpires: 3600\r\n"))
    r = a.finish(100.0)
    (reg,) = r.registrations
    assert reg.aor == "sip:100@itsp.example" and reg.registrar == f"{ITSP}:5060"
    assert (reg.attempts, reg.challenges, reg.final_codes) == (2, 1, {"401": 1, "200": 1})
    assert reg.granted_expiry_s == 120 and reg.expiry_ts == 120.25 and reg.registered
    assert reg.request_delay_ms == 250.0 and reg.unanswered == 0
    assert [s.state for s in reg.timeline] == ["trying", "challenged", "registered"]
    assert r.kpis["rrd_ms"] == 250.0 and r.kpis["ira_pct"] == 0.0
    # expired when the capture ends after the granted expiry
    assert not a.finish(200.0).registrations[0].registered


def test_registration_auth_failure_and_unanswered() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    f.up(0.0, req("REGISTER", 1, call_id="r1", uri="sip:itsp.example", to_user="100"))
    f.down(0.05, resp(401, "Unauthorized", 1, "REGISTER", call_id="r1"))
    auth = 'Authorization: Digest username="100", nonce="n", response="x"\r\n'
    f.up(0.1, req("REGISTER", 2, call_id="r1", uri="sip:itsp.example", extra=auth, to_user="100"))
    f.down(0.2, resp(401, "Unauthorized", 2, "REGISTER", call_id="r1"))  # credentials refused
    f.up(10.0, req("REGISTER", 3, call_id="r1", uri="sip:itsp.example", extra=auth, to_user="100"))
    r = a.finish(60.0)
    (reg,) = r.registrations
    assert [s.state for s in reg.timeline] == ["trying", "challenged", "failed", "trying"]
    assert reg.unanswered == 1 and not reg.registered and reg.challenges == 2
    assert r.kpis["ira_pct"] == 100.0


def test_options_keepalive_rtt_and_failures() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    for i, ts in enumerate((0.0, 30.0, 60.0)):
        f.up(ts, req("OPTIONS", i + 1, call_id=f"o{i}"))
    f.down(0.012, resp(200, "OK", 1, "OPTIONS", call_id="o0"))
    f.down(30.5, resp(503, "Service Unavailable", 2, "OPTIONS", call_id="o1"))
    assert a.finish(90.0).keepalives[0].failures == 1  # the last OPTIONS is not overdue yet
    r = a.finish(100.0)  # Timer F (32 s) has run out for it
    (ka,) = r.keepalives
    assert (ka.kind, ka.client, ka.peer) == ("options", PBX, f"{ITSP}:5060")
    assert (ka.count, ka.answered, ka.failures) == (3, 2, 2)
    assert ka.rtts_ms == (12.0, 500.0) and ka.max_rtt_ms == 500.0


def test_crlf_keepalive_over_tcp_and_message_split_across_segments() -> None:
    a = SipAnalyzer()
    opts = req("OPTIONS", 1, call_id="t1")
    chunks = [
        (1, 0.0, PBX, 40000, ITSP, 5061, b"\r\n\r\n"),
        (2, 0.030, ITSP, 5061, PBX, 40000, b"\r\n"),
        (3, 1.0, PBX, 40000, ITSP, 5061, opts[:50]),
        (4, 1.1, PBX, 40000, ITSP, 5061, opts[50:] + b"\r\n\r\n"),
        (5, 2.0, ITSP, 5061, PBX, 40000, resp(200, "OK", 1, "OPTIONS", call_id="t1")),
    ]
    for frame, ts, s, sp, d, dp, data in chunks:
        a.on_stream(StreamData(frame, ts, s, sp, d, dp, data, 1), transport="tls")
    early = next(k for k in a.finish(5.0).keepalives if k.kind == "crlf")
    assert early.failures == 0  # the second ping is 3.9 s old: a pong may still come (10 s)
    r = a.finish(20.0)
    crlf = next(k for k in r.keepalives if k.kind == "crlf")
    assert (crlf.count, crlf.answered, crlf.failures, crlf.rtts_ms) == (2, 1, 1, (30.0,))
    (m1, m2) = r.sip_messages
    assert (m1.frame, m1.ts, m1.transport) == (4, 1.1, "tls") and m2.frame == 5
    options = next(k for k in r.keepalives if k.kind == "options")
    assert options.rtts_ms == (900.0,)


def test_non_sip_streams_and_datagrams_are_ignored_quietly() -> None:
    a = SipAnalyzer()
    assert not a.on_udp(UdpPacket(1, 0.0, PBX, 1, ITSP, 5060, b"\x00\x00\x00\x00"))
    a.on_stream(StreamData(2, 0.0, PBX, 1, ITSP, 443, b"\x16\x03\x01" + bytes(70000), 1))
    r = a.finish(None)
    assert r.errors == () and r.messages_total == 0


def test_malformed_sip_is_counted_with_its_frame() -> None:
    a = SipAnalyzer()
    assert a.on_udp(UdpPacket(7, 0.0, PBX, 5060, ITSP, 5060, b"INVITE sip:a SIP/2.0\r\nbroken\r\n\r\n"))
    (err,) = a.finish(None).errors
    assert (err.kind, err.layer, err.frame) == ("malformed", "sip", 7)


def test_redact_keeps_scheme_and_username_only() -> None:
    text = ('REGISTER sip:x SIP/2.0\r\nAuthorization: Digest username="100", realm="r", '
            'nonce="abc", response="0123456789abcdef", cnonce=xyz\r\nCall-ID: 1\r\n')
    out = redact(text)
    assert 'Digest username="100"' in out and "0123456789abcdef" not in out and "abc" not in out.split("Call-ID")[0].split("realm")[1]
    assert "Call-ID: 1" in out


def _stream_summary(chunks: list[bytes]) -> list[tuple[str, int, str]]:
    a = SipAnalyzer()
    for i, c in enumerate(chunks):
        a.on_stream(StreamData(i + 1, float(i), PBX, 40000, ITSP, 5060, c, 1))
    r = a.finish(None)
    assert r.errors == ()
    return [(m.summary, m.cseq, m.call_id) for m in r.sip_messages]


def test_analyzer_stream_whole_vs_byte_at_a_time_including_a_midstream_start() -> None:
    body = req("INVITE", 1, body=SDP_PBX) + b"\r\n\r\n" + resp(200, "OK", 1, "INVITE") + req("BYE", 2, to_tag="t9")
    stream = b"tail of an earlier message\r\nx: y\r\n\r\n" + body  # capture started mid-message
    whole = _stream_summary([stream])
    assert [s[0].split()[0] for s in whole] == ["INVITE", "SIP/2.0", "BYE"]
    assert _stream_summary([stream[i:i + 1] for i in range(len(stream))]) == whole
    assert _stream_summary([stream[i:i + 7] for i in range(0, len(stream), 7)]) == whole


def test_registration_expiry_refresh_and_deregistration() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    reg = {"call_id": "r1", "uri": "sip:itsp.example", "to_user": "100"}
    f.up(0.0, req("REGISTER", 1, **reg))
    f.down(0.1, resp(200, "OK", 1, "REGISTER", call_id="r1", extra="Expires: 60\r\n"))  # header only
    f.up(100.0, req("REGISTER", 2, **reg))  # refresh after the binding ran out at 60.1
    f.down(100.1, resp(423, "Interval Too Brief", 2, "REGISTER", call_id="r1", extra="Min-Expires: 120\r\n"))
    f.up(101.0, req("REGISTER", 3, **reg))
    f.down(101.2, resp(200, "OK", 3, "REGISTER", call_id="r1", extra="Expires: 120\r\n"))
    mid = a.finish(150.0).registrations[0]
    assert mid.registered and mid.granted_expiry_s == 120 and mid.request_delay_ms == 200.0
    assert [(s.state, s.code) for s in mid.timeline] == [
        ("trying", None), ("registered", 200), ("expired", None), ("trying", None), ("failed", 423),
        ("trying", None), ("registered", 200)]
    assert mid.timeline[2].ts == 60.1 and [s.ts for s in mid.timeline] == sorted(s.ts for s in mid.timeline)
    f.up(200.0, req("REGISTER", 4, **reg, extra="Expires: 0\r\n"))
    f.down(200.1, resp(200, "OK", 4, "REGISTER", call_id="r1", extra="Expires: 0\r\n"))
    end = a.finish(300.0).registrations[0]
    assert not end.registered and end.timeline[-1].state == "unregistered"
    assert end.final_codes == {"200": 3, "423": 1} and end.attempts == 4


def test_binding_that_runs_out_is_marked_expired() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    f.up(0.0, req("REGISTER", 1, call_id="r1", uri="sip:itsp.example", to_user="100"))
    f.down(0.5, resp(200, "OK", 1, "REGISTER", call_id="r1", extra="Expires: 30\r\n"))
    (reg,) = a.finish(100.0).registrations
    assert not reg.registered and reg.expiry_ts == 30.5
    assert (reg.timeline[-1].state, reg.timeline[-1].ts) == ("expired", 30.5)
