"""The analysis pipeline on crafted captures: encapsulations end to end, TCP framing, flows, one-way audio."""

from __future__ import annotations

import dataclasses
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
from capture_craft import eth, ipv4_fragments, ipv4_tcp, ipv4_udp, pcap_bytes

import collectors.analyze
from collectors.analyze import analyze, exit_code
from collectors.fast_lane import fast_rows
from core.analysis import AnalysisResult
from traces.pcap_writer import ip_packet, udp_segment

PBX, CONN = "192.168.1.10", "35.246.178.13"


def sip(first: str, call_id: str, cseq: str, body: bytes = b"", via: str = "UDP") -> bytes:
    head = (f"{first}\r\nVia: SIP/2.0/{via} {PBX}:5060;branch=z9hG4bK{abs(hash((first, cseq))) % 99999}\r\n"
            f"From: <sip:100@{PBX}>;tag=a1\r\nTo: <sip:+4930123@{CONN}>" + (";tag=b2" if first.startswith("SIP")
                                                                              or "ACK" in first or "BYE" in first else "")
            + f"\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:100@{PBX}:5060>\r\n")
    if body:
        head += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    else:
        head += "Content-Length: 0\r\n\r\n"
    return head.encode() + body


def sdp(addr: str, port: int) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n").encode()


def run(tmp_path: Path, frames: list[tuple[float, bytes]], linktype: int = 1, **kw: object) -> AnalysisResult:
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap_bytes(frames, linktype, **kw))
    result, outcomes = analyze([path])
    assert exit_code(outcomes) == 0
    return result


def dialog(call_id: str = "c1@pbx") -> list[bytes]:
    return [sip(f"INVITE sip:+4930123@{CONN} SIP/2.0", call_id, "1 INVITE", sdp(PBX, 10000)),
            sip("SIP/2.0 100 Trying", call_id, "1 INVITE"),
            sip("SIP/2.0 200 OK", call_id, "1 INVITE", sdp(CONN, 20000)),
            sip(f"ACK sip:{CONN} SIP/2.0", call_id, "1 ACK")]


def udp_frames(msgs: list[bytes], wrap: object = None) -> list[tuple[float, bytes]]:
    out = []
    for i, m in enumerate(msgs):
        src, dst = (PBX, CONN) if not m.startswith(b"SIP/2.0") else (CONN, PBX)
        ip = ipv4_udp(src, 5060, dst, 5060, m)
        out.append((1_764_000_000.0 + i * 0.1, wrap(ip) if callable(wrap) else eth(0x0800, ip)))
    return out


def test_sip_dialog_over_sll2(tmp_path: Path) -> None:
    def sll2(ip: bytes) -> bytes:
        return struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, bytes(8)) + ip
    r = run(tmp_path, udp_frames(dialog(), sll2), linktype=276)
    assert r.sip_requests == {"INVITE": 1, "ACK": 1} and r.sip_responses == {"100": 1, "200": 1}
    assert r.link_types == ("linux-sll2",) and r.calls[0].answered


def test_vlan_tagged_dialog_big_endian_nanosecond_pcap(tmp_path: Path) -> None:
    frames = udp_frames(dialog(), lambda ip: eth(0x0800, ip, ((0x88A8, 7), (0x8100, 42))))
    r = run(tmp_path, frames, big_endian=True, nanosecond=True)
    assert sum(r.sip_requests.values()) == 2 and r.calls[0].setup_ms == pytest.approx(200.0, abs=1e-3)


def test_ipv4_fragmented_invite(tmp_path: Path) -> None:
    big = sip(f"INVITE sip:+4930123@{CONN} SIP/2.0", "frag@pbx", "1 INVITE",
              sdp(PBX, 10000) + b"a=x-padding:" + b"p" * 3000 + b"\r\n")
    l4 = udp_segment(PBX, 5060, CONN, 5060, big)
    frames = [(1.0 + i, eth(0x0800, f)) for i, f in enumerate(ipv4_fragments(PBX, CONN, 17, l4, 1480))]
    r = run(tmp_path, frames)
    assert r.sip_requests == {"INVITE": 1} and r.sip_messages[0].frame == len(frames)


def _tcp(frames: list[tuple[float, bytes]], seq: int, data: bytes, t: float, src: str = PBX,
         dst: str = CONN, flags: int = 0x18) -> int:
    sport, dport = (40000, 5060) if src == PBX else (5060, 40000)
    frames.append((t, eth(0x0800, ipv4_tcp(src, sport, dst, dport, seq, 1, flags, data))))
    return seq + len(data)


def test_several_messages_in_one_segment_and_one_message_over_segments(tmp_path: Path) -> None:
    msgs = dialog("tcp@pbx")
    frames: list[tuple[float, bytes]] = []
    _tcp(frames, 99, b"", 0.0, flags=0x02)
    _tcp(frames, 4999, b"", 0.01, CONN, PBX, flags=0x12)
    seq = _tcp(frames, 100, msgs[0][:100], 1.0)
    seq = _tcp(frames, seq, msgs[0][100:], 1.1)
    _tcp(frames, 5000, msgs[1] + msgs[2], 1.2, CONN, PBX)  # 100 Trying + 200 OK in one segment
    _tcp(frames, seq, msgs[3], 1.3)
    r = run(tmp_path, frames)
    assert r.sip_requests == {"INVITE": 1, "ACK": 1} and r.sip_responses == {"100": 1, "200": 1}
    flow = next(f for f in r.flows if f.proto == "tcp" and f.dst_port == 5060)
    assert (flow.syn, flow.packets) == (1, 4)
    assert next(f for f in r.flows if f.proto == "tcp" and f.dst_port == 40000).syn_ack == 1


def test_out_of_order_and_retransmitted_tcp(tmp_path: Path) -> None:
    msgs = dialog("ooo@pbx")
    a, b = msgs[0], msgs[3]
    frames: list[tuple[float, bytes]] = []
    _tcp(frames, 999, b"", 0.9, flags=0x02)
    _tcp(frames, 1000 + len(a), b, 1.0)  # ACK arrives before the INVITE
    _tcp(frames, 1000, a, 1.1)
    _tcp(frames, 1000, a, 1.2)  # retransmission
    r = run(tmp_path, frames)
    assert r.sip_requests == {"INVITE": 1, "ACK": 1}


def test_websocket_is_unsupported_not_malformed(tmp_path: Path) -> None:
    frames: list[tuple[float, bytes]] = []
    _tcp(frames, 1, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 1.0)
    _tcp(frames, 5000, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 1.1, CONN, PBX)
    r = run(tmp_path, frames)
    assert [(e.kind, e.layer) for e in r.errors] == [("unsupported", "websocket")]
    assert not r.sip_requests and not r.sip_responses


def test_icmp_unreachable_is_counted_on_the_flow(tmp_path: Path) -> None:
    opt = ipv4_udp(PBX, 5060, CONN, 5060, sip(f"OPTIONS sip:{CONN} SIP/2.0", "o@pbx", "1 OPTIONS"))
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + opt[:28]
    r = run(tmp_path, [(1.0, eth(0x0800, opt)), (1.1, eth(0x0800, ip_packet(CONN, PBX, 1, icmp)))])
    flow = next(f for f in r.flows if f.dst_port == 5060)
    assert flow.icmp_unreachable == 1


def test_trace_log_goes_through_the_sip_pipeline(tmp_path: Path) -> None:
    blocks = []
    for i, m in enumerate(dialog("trace@pbx"), 1):
        out = not m.startswith(b"SIP/2.0")
        src, dst = (f"{PBX}:5060", f"{CONN}:5060") if out else (f"{CONN}:5060", f"{PBX}:5060")
        blocks.append(f'(SIP_SA [ldh:{PBX}] {i:x} "11/26/2026 12:00:0{i}.000000" x)\r\nfrom {src} to {dst}\r\n'
                      + m.decode() + "\r\n" + ("<<OUT-END>>" if out else ">>IN-END<<") + "\r\n")
    log = tmp_path / "osbiz.log"
    log.write_text("".join(blocks), newline="")
    result, outcomes = analyze([log])
    assert exit_code(outcomes) == 0 and result.link_types == ("osbiz-trace",)
    assert result.sip_requests == {"INVITE": 1, "ACK": 1}
    assert {m.transport for m in result.sip_messages} == {"trace"}
    assert result.calls[0].setup_ms == pytest.approx(2000.0)


def _rtp(src: str, sport: int, dst: str, dport: int, seq: int, ts: int, ssrc: int) -> bytes:
    return eth(0x0800, ipv4_udp(src, sport, dst, dport, struct.pack("!BBHII", 0x80, 8, seq, ts, ssrc) + bytes(160)))


@pytest.mark.parametrize("both_ways", [False, True])
def test_one_way_audio_flag_and_call_association(tmp_path: Path, both_ways: bool) -> None:
    if importlib.util.find_spec("collectors.media.rtp") is None:
        pytest.skip("the RTP analyser (collectors.media.rtp) is not in this tree yet")
    frames = udp_frames(dialog("media@pbx"))
    t0 = frames[-1][0] + 0.05
    for k in range(150):  # 3 s: one-way audio needs 2 s and 50 packets (core.one_way)
        frames.append((t0 + k * 0.02, _rtp(PBX, 10000, CONN, 20000, k, k * 160, 0x1111)))
        if both_ways:
            frames.append((t0 + k * 0.02 + 0.005, _rtp(CONN, 20000, PBX, 10000, 100 + k, k * 160, 0x2222)))
    r = run(tmp_path, frames)
    call = r.calls[0]
    assert call.one_way_audio is (not both_ways)
    assert len(call.streams) == (2 if both_ways else 1)
    assert {r.rtp_streams[i].call_id for i in call.streams} == {"media@pbx"}
    assert all(r.rtp_streams[i].packets == 150 for i in call.streams)


def test_a_stream_split_between_fast_lane_and_slow_path_keeps_its_order(tmp_path: Path) -> None:
    if importlib.util.find_spec("collectors.media.rtp") is None:
        pytest.skip("the RTP analyser (collectors.media.rtp) is not in this tree yet")
    frames = udp_frames(dialog("mixed@pbx"))
    t0 = frames[-1][0] + 0.05
    for k in range(200):
        frame = _rtp(PBX, 10000, CONN, 20000, k, k * 160, 0x5555)
        if k % 3 == 0:  # every third one VLAN-tagged: decoded one by one, the others in batches
            frame = frame[:12] + struct.pack("!HH", 0x8100, 10) + frame[12:]
        frames.append((t0 + k * 0.02, frame))
    s = run(tmp_path, frames).rtp_streams[0]
    assert (s.packets, s.lost, s.sequence_errors, s.duplicates) == (200, 0, 0, 0)
    assert s.max_delta_ms == pytest.approx(20.0, abs=1e-3) and s.call_id == "mixed@pbx"


def test_every_shared_capture_is_analysed() -> None:
    """No crash on any of the 73 real captures; only the one cut short is unusable."""
    from capture_craft import PCAPS

    files = sorted(PCAPS.glob("*.pcap*"))
    if not files:
        pytest.skip(f"shared captures not found in {PCAPS}")
    codes = {}
    for path in files:
        result, outcomes = analyze([path])
        codes[path.name] = exit_code(outcomes)
        assert result.packets >= 0 and all(e.kind in ("malformed", "truncated", "unsupported", "file")
                                           for e in result.errors)
    assert {name for name, code in codes.items() if code} == {"ndpi_fuzz-2021-10-13_cut-short.pcap"}


def _rtp_ip(k: int) -> bytes:
    return ipv4_udp(PBX, 10000, CONN, 20000, struct.pack("!BBHII", 0x80, 8, k, k * 160, 0x7777) + bytes(160))


@pytest.mark.parametrize(("linktype", "wrap"), [
    (1, lambda ip: eth(0x0800, ip)),
    (1, lambda ip: eth(0x0800, ip, ((0x8100, 42),))),
    (113, lambda ip: struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + ip),
    (276, lambda ip: struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes(8)) + ip),
    (101, lambda ip: ip),
    (228, lambda ip: ip),
    (0, lambda ip: struct.pack("<I", 2) + ip),
    (0, lambda ip: struct.pack(">I", 2) + ip),
    (108, lambda ip: struct.pack(">I", 2) + ip),
])
def test_fast_lane_link_types_give_the_slow_path_numbers(tmp_path: Path, linktype: int, wrap: object,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The vectorised lane must read each link layer exactly as the per-frame decoder does."""
    from collectors.capture.files import CaptureFile

    if importlib.util.find_spec("collectors.media.rtp") is None:
        pytest.skip("the RTP analyser (collectors.media.rtp) is not in this tree yet")
    assert callable(wrap)
    frames = [(1.0 + k * 0.02 + (0.003 if k % 5 == 0 else 0.0), wrap(_rtp_ip(k))) for k in range(100) if k != 50]
    path = tmp_path / "lt.pcap"
    path.write_bytes(pcap_bytes(frames, linktype))
    batch = next(iter(CaptureFile(path).batches()))
    fast = fast_rows(batch)[0]
    assert fast is not None and len(fast[0]) == 99  # every frame took the fast lane
    s = run(tmp_path, frames, linktype).rtp_streams[0]
    assert (s.src, s.src_port, s.dst, s.dst_port, s.ssrc) == (PBX, 10000, CONN, 20000, 0x7777)
    assert (s.packets, s.lost, s.sequence_errors) == (99, 1, 1)
    assert s.max_delta_ms == pytest.approx(40.0, abs=1e-3) and s.max_jitter_ms > 0  # the gap of the lost one
    monkeypatch.setattr(collectors.analyze, "fast_rows", lambda batch: (None, None))  # everything per frame
    slow = run(tmp_path, frames, linktype).rtp_streams[0]
    for f in dataclasses.fields(s):
        a, b = getattr(s, f.name), getattr(slow, f.name)
        # the media analyser's batch and per-packet sums may differ in the last float digit
        assert a == (pytest.approx(b, rel=1e-12) if isinstance(b, float) else b) or f.name == "intervals", f.name


def test_fast_lane_with_mixed_link_types_in_one_pcapng(tmp_path: Path) -> None:
    from capture_craft import ng_epb, ng_idb, ng_shb

    from collectors.capture.files import CaptureFile

    if importlib.util.find_spec("collectors.media.rtp") is None:
        pytest.skip("the RTP analyser (collectors.media.rtp) is not in this tree yet")
    data = ng_shb() + ng_idb(1) + ng_idb(101) + ng_idb(113)
    for k in range(90):
        ip = _rtp_ip(k)
        frame = [eth(0x0800, ip), ip, struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + ip][k % 3]
        data += ng_epb(k % 3, 1_000_000 + k * 20_000, frame)
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(data)
    fast = fast_rows(next(iter(CaptureFile(path).batches())))[0]
    assert fast is not None and len(fast[0]) == 90
    result, _ = analyze([path])
    s = result.rtp_streams[0]
    assert (s.packets, s.lost, s.sequence_errors, s.max_delta_ms) == (90, 0, 0, pytest.approx(20.0))


def test_fast_lane_flows(tmp_path: Path) -> None:
    """Sources that differ only in their upper bits stay apart; a flow seen on both lanes is one flow;
    an ICMP unreachable quoting a fast-lane flow is counted on it."""
    frames = []
    for k in range(20):
        for src in ("10.0.5.7", "192.168.5.7"):
            ip = ipv4_udp(src, 4000, CONN, 20000, struct.pack("!BBHII", 0x80, 8, k, k * 160, 9) + bytes(160))
            tagged = src == "10.0.5.7" and k % 4 == 0
            frames.append((1.0 + k * 0.02, eth(0x0800, ip, ((0x8100, 3),) if tagged else ())))
    quoted = ipv4_udp("192.168.5.7", 4000, CONN, 20000, bytes(172))[:28]
    icmp = ip_packet(CONN, "192.168.5.7", 1, struct.pack("!BBHI", 3, 3, 0, 0) + quoted)
    frames.append((2.0, eth(0x0800, icmp)))
    flows = {(f.src, f.dst_port): f for f in run(tmp_path, frames).flows if f.proto == "udp"}
    assert {k: (f.packets, f.bytes, f.icmp_unreachable) for k, f in flows.items()} == {
        ("10.0.5.7", 20000): (20, 20 * 172, 0), ("192.168.5.7", 20000): (20, 20 * 172, 1)}
    assert flows[("10.0.5.7", 20000)].first_frame == 1 and flows[("192.168.5.7", 20000)].first_frame == 2


def test_sip_after_a_tcp_hole_is_read_again(tmp_path: Path) -> None:
    """A segment the capture missed: the cut INVITE is lost, the messages after the hole are not."""
    body = b"v=0\r\n" + b"a=x\r\n" * 200
    inv = sip(f"INVITE sip:+4930123@{CONN} SIP/2.0", "hole@pbx", "1 INVITE", body, via="TCP")
    opt = [sip(f"OPTIONS sip:{CONN} SIP/2.0", f"o{i}@pbx", "1 OPTIONS", via="TCP") for i in (1, 2)]
    frames: list[tuple[float, bytes]] = []
    _tcp(frames, 999, b"", 0.5, flags=0x02)
    _tcp(frames, 1000, inv[:300], 1.0)  # the rest of the INVITE never reaches the capture
    seq = _tcp(frames, 1000 + len(inv), opt[0], 2.0)
    _tcp(frames, seq, opt[1], 9.0)  # 7 s later: the hole is given up
    r = run(tmp_path, frames)
    assert r.sip_requests == {"OPTIONS": 2}
    hole = [e for e in r.errors if e.layer == "tcp"]
    assert [(e.kind, e.frame) for e in hole] == [("truncated", 4)] and "never captured" in hole[0].message


@pytest.mark.parametrize("size", [1, 7, 100])
def test_sip_over_tcp_in_tiny_segments_equals_whole(tmp_path: Path, size: int) -> None:
    msgs = dialog("tiny@pbx")
    wire = {PBX: b"".join(m for m in msgs if not m.startswith(b"SIP/2.0")),
            CONN: b"".join(m for m in msgs if m.startswith(b"SIP/2.0"))}

    def capture(step: int) -> list[tuple[str, int | None, str, int]]:
        frames: list[tuple[float, bytes]] = []
        _tcp(frames, 99, b"", 0.0, flags=0x02)
        _tcp(frames, 4999, b"", 0.01, CONN, PBX, flags=0x12)
        t = 1.0
        for side, start in ((PBX, 100), (CONN, 5000)):
            data = wire[side]
            for off in range(0, len(data), step):
                _tcp(frames, start + off, data[off:off + step], t, side, CONN if side == PBX else PBX)
                t += 0.001
        r = run(tmp_path, frames)
        return [(m.method or "", m.status, m.call_id, m.cseq) for m in r.sip_messages]

    whole = capture(1 << 20)
    assert len(whole) == 4 and capture(size) == whole


def test_pending_fast_rows_touched_by_an_sdp_endpoint() -> None:
    """An SDP naming addr:port (or its RTCP neighbour, either direction) flushes only when a
    pending fast-lane row (between ``done`` and ``upto``) uses it."""
    from collectors.capture.packets import ipv4_int
    from collectors.fast_lane import FastContext, endpoint_keys

    src = np.array([ipv4_int("10.0.0.1"), ipv4_int("10.0.0.2"), ipv4_int("10.0.0.3")], dtype=np.uint32)
    dst = np.array([ipv4_int("10.0.0.9")] * 3, dtype=np.uint32)
    sport = np.array([40000, 40002, 65535], dtype=np.int64)
    dport = np.array([20000, 20002, 20004], dtype=np.int64)
    ctx = FastContext(lambda lo, hi: None, endpoint_keys(src, sport), endpoint_keys(dst, dport), 0, 3)
    assert ctx.touches("10.0.0.9", 20000) and ctx.touches("10.0.0.9", 19999)  # the port, or it is the RTCP one
    assert ctx.touches("10.0.0.2", 40002) and ctx.touches("10.0.0.2", 40001)
    assert not ctx.touches("10.0.0.9", 20001 + 5) and not ctx.touches("10.0.0.9", 19998)
    assert not ctx.touches("10.0.0.8", 20000) and not ctx.touches("10.0.0.1", 40002)
    assert not ctx.touches("2001:db8::1", 20000) and not ctx.touches("bad address", 20000)
    assert not ctx.touches("10.0.0.9", 70000) and not ctx.touches("10.0.0.9", -1)
    ctx.done = 1  # the first row was fed already
    assert not ctx.touches("10.0.0.9", 20000) and ctx.touches("10.0.0.9", 20002)
    ctx.upto = 2
    assert not ctx.touches("10.0.0.9", 20004) and not ctx.touches("10.0.0.3", 65535)


def test_finish_without_glibc_malloc_trim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The heap is trimmed before the result is built where glibc offers it; elsewhere (no
    libc.so.6, no malloc_trim) the analysis is the same."""
    import ctypes

    frames = [(1.0 + k * 0.02, eth(0x0800, _rtp_ip(k))) for k in range(10)]
    want = run(tmp_path, frames).rtp_streams

    def missing(name: str) -> object:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert run(tmp_path, frames).rtp_streams == want
    monkeypatch.setattr(ctypes, "CDLL", lambda name: object())  # a libc without malloc_trim
    assert run(tmp_path, frames).rtp_streams == want
