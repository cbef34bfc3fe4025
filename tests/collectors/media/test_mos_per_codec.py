"""MOS follows the codec (ITU-T G.113 planning values), on real captures and through the pipeline.

Before, every codec was scored as G.711 with concealment: GSM, iLBC, Speex and G.726 at any
rate all read 4.41.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from collectors.analyze import analyze_files
from traces.pcap_writer import PcapWriter, eth_udp

PCAPS = Path(__file__).resolve().parents[3] / ".." / "shared" / "pcaps"


def _capture(name: str) -> Path:
    path = PCAPS / name
    if not path.exists():
        pytest.skip(f"shared capture {name} not found in {PCAPS}")
    return path


@pytest.mark.parametrize(("name", "codec", "mos"), [
    ("rtpproxy_DLT_NULL.a.pcap", "GSM", 3.74),  # GSM 06.10 full rate: Ie 20
    ("rtpproxy_G723_1.a.pcap", "G723", 3.95),  # G.723.1 6.3 kbit/s: Ie 15
    ("rtpproxy_alice_srtp.pcap", "G722", 4.34),  # wideband scale, Ie,WB 13
    ("rtpproxy_weird.a.pcap", "G729", 4.14),  # Ie 10, no loss
    ("asterisk_40msalaw.pcap", "PCMA", 4.41),
])
def test_real_streams_are_scored_by_their_codec(name: str, codec: str, mos: float) -> None:
    streams = analyze_files([_capture(name)]).rtp_streams
    assert streams and {s.codec for s in streams} == {codec}
    assert {s.mos for s in streams} == {mos} and all(s.mos_note is None for s in streams)
    assert all(iv.mos == mos for s in streams for iv in s.intervals if iv.lost == 0)


def test_real_event_only_and_unnamed_streams_have_no_mos() -> None:
    for name, note in (("rtpproxy_dtmf.pcapng", "telephone-event carries no speech"),
                       ("asterisk_opus_48khz_60_fec_dropped.pcapng",
                        "codec unknown (a dynamic payload type without an SDP rtpmap)")):
        streams = analyze_files([_capture(name)]).rtp_streams
        assert streams and all(s.mos is None and s.mos_note == note for s in streams), name
        assert all(iv.mos is None for s in streams for iv in s.intervals)


def _sip(first: str, cseq: str, sdp: str, to_tag: bool) -> bytes:
    return (f"{first}\r\nVia: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bKc{len(first)}\r\n"
            f"From: <sip:100@192.168.1.10>;tag=a1\r\nTo: <sip:+4930123@192.168.1.20>{';tag=b1' if to_tag else ''}\r\n"
            f"Call-ID: codecs-1\r\nCSeq: {cseq}\r\nContact: <sip:100@192.168.1.10:5060>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def _sdp(addr: str, port: int, rtpmaps: dict[int, str]) -> str:
    pts = " ".join(str(p) for p in rtpmaps)
    return (f"v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pts}\r\n"
            + "".join(f"a=rtpmap:{p} {n}\r\n" for p, n in rtpmaps.items()) + "a=sendrecv\r\n")


#: dynamic payload type → (rtpmap, bytes per 20-ms packet, expected MOS without loss)
CODECS = {
    97: ("iLBC/8000", 38, None),
    98: ("speex/8000", 20, None),
    99: ("G726-16/8000", 40, 2.22),
    100: ("G726-24/8000", 60, 3.51),
    101: ("G726-32/8000", 80, 4.24),
    102: ("G726-40/8000", 100, 4.37),
}


def test_dynamic_codecs_named_in_sdp(tmp_path: Path) -> None:
    """One call per codec (offer/answer naming it, 10 s of 20-ms RTP each way, 1 % loss one way)."""
    path = tmp_path / "codecs.pcap"
    t0 = 1_764_000_000.0
    frames: list[tuple[float, bytes]] = []
    for n, (pt, (rtpmap, size, _)) in enumerate(CODECS.items()):
        a_port, b_port = 40000 + 2 * n, 20000 + 2 * n
        start = t0 + 20 * n
        rtpmaps = {pt: rtpmap}
        frames.append((start, eth_udp("192.168.1.10", 5060, "192.168.1.20", 5060,
                                      _sip("INVITE sip:+4930123@192.168.1.20 SIP/2.0", "1 INVITE",
                                           _sdp("192.168.1.10", a_port, rtpmaps), False).replace(b"codecs-1", f"c{n}".encode()))))
        frames.append((start + 0.4, eth_udp("192.168.1.20", 5060, "192.168.1.10", 5060,
                                            _sip("SIP/2.0 200 OK", "1 INVITE", _sdp("192.168.1.20", b_port, rtpmaps),
                                                 True).replace(b"codecs-1", f"c{n}".encode()))))
        for k in range(500):
            for src, sport, dst, dport, ssrc in (("192.168.1.10", a_port, "192.168.1.20", b_port, 0x100 + n),
                                                 ("192.168.1.20", b_port, "192.168.1.10", a_port, 0x200 + n)):
                if ssrc >= 0x200 and k % 100 == 50:
                    continue  # 1 % lost on the way back
                rtp = struct.pack("!BBHII", 0x80, pt, k, 160 * k, ssrc) + bytes(size)
                frames.append((start + 0.5 + 0.02 * k, eth_udp(src, sport, dst, dport, rtp)))
    with path.open("wb") as fh:
        w = PcapWriter(fh)
        for ts, frame in sorted(frames, key=lambda f: f[0]):
            w.write(ts, frame)
    streams = analyze_files([path]).rtp_streams
    assert len(streams) == 2 * len(CODECS)
    by_codec: dict[str, list[tuple[float | None, str | None, int]]] = {}
    for s in streams:
        by_codec.setdefault(s.codec, []).append((s.mos, s.mos_note, s.lost))
    for rtpmap, _, mos in CODECS.values():
        name = rtpmap.split("/")[0]
        (clean_mos, clean_note, _), (lossy_mos, lossy_note, lost) = sorted(by_codec[name], key=lambda r: r[2])
        assert lost == 5
        assert clean_mos == mos, name
        assert lossy_mos is None, name  # no Bpl (G.726) or no Ie at all (iLBC, Speex)
        if mos is None:
            assert clean_note == lossy_note == f"no E-model equipment impairment (Ie) published for {name}"
        else:
            assert clean_note is None and "packet-loss robustness (Bpl)" in (lossy_note or "")
