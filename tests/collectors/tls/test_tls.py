"""TLS flow analyser and key-log decryption, on real OpenSSL sessions (the codec: tests/core/wire)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tls_capture import CLIENT, SERVER, make_cert, tls_session, write_pcap

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sip"))
from sip_scapy_feed import PCAPS, Reassembler, packets
from test_sip_analyzer import req, resp

from collectors.capture.packets import StreamData, TcpSegment
from collectors.sip.analyzer import SipAnalyzer
from collectors.tls.analyzer import TlsAnalyzer, reconnects
from collectors.tls.decrypt import (
    decrypt_sip,
    feed,
    mark_decrypted,
    parse_tshark_json,
    tls_ports,
    tshark_command,
)
from core.analysis import TlsFlowInfo
from core.errors import UpscopeError

SDP = b"v=0\r\no=- 1 1 IN IP4 10.1.1.10\r\ns=-\r\nc=IN IP4 10.1.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\n"


def run(path: Path) -> tuple[TlsFlowInfo, ...]:
    return analyse(path).finish(None)


def analyse(path: Path) -> TlsAnalyzer:
    a = TlsAnalyzer()
    ra = Reassembler()
    for pkt in packets(path):
        if isinstance(pkt, TcpSegment):
            a.on_segment(pkt)
            for sd in ra.feed(pkt):
                a.on_stream(sd)
    assert a.errors == []
    return a


@pytest.mark.parametrize(("version", "name"), [(ssl.TLSVersion.TLSv1_2, "TLS 1.2"), (ssl.TLSVersion.TLSv1_3, "TLS 1.3")])
def test_successful_flow(tmp_path: Path, version: ssl.TLSVersion, name: str) -> None:
    s = tls_session(tmp_path, version=version, keylog=None, to_server=[req("OPTIONS", 1)], to_client=[resp(200, "OK", 1, "OPTIONS")])
    write_pcap(tmp_path / "c.pcap", s.segments)
    (f,) = run(tmp_path / "c.pcap")
    assert tls_ports((f,)) == {5061, 65061}
    assert (f.client, f.client_port, f.server, f.server_port) == (*CLIENT, *SERVER)
    assert f.handshake == "ok" and f.version == name and f.sni == "trunk.example" and f.syn_answered
    assert f.alerts == () and f.reset_by is None and "TLS 1.2" in f.offered_versions
    if name == "TLS 1.2":
        assert f.cert_subject == "CN=trunk.example" and f.cert_valid_at_capture is True
    else:
        assert f.cert_subject is None  # encrypted in TLS 1.3
    assert f.bytes_client == sum(len(d) for c, d in s.segments if c)


def test_expired_certificate_is_visible_in_tls12(tmp_path: Path) -> None:
    s = tls_session(tmp_path, version=ssl.TLSVersion.TLSv1_2, keylog=None, to_server=[], to_client=[], expired=True)
    write_pcap(tmp_path / "c.pcap", s.segments)
    (f,) = run(tmp_path / "c.pcap")
    assert f.cert_valid_at_capture is False and f.cert_not_after is not None and f.handshake == "ok"


def test_client_rejects_certificate_fatal_alert_and_reset(tmp_path: Path) -> None:
    s = tls_session(tmp_path, version=ssl.TLSVersion.TLSv1_2, keylog=None, to_server=[], to_client=[], verify=True)
    assert not s.handshake_ok
    write_pcap(tmp_path / "c.pcap", s.segments, rst_by_server=True)
    (f,) = run(tmp_path / "c.pcap")
    assert f.handshake == "failed" and f.alerts == ("client fatal unknown_ca",) and f.reset_by == "server"


def test_tls13_rejected_certificate_is_a_failed_handshake(tmp_path: Path) -> None:
    # OpenSSL's client rejects the certificate before its own ChangeCipherSpec, so even in
    # TLS 1.3 the alert goes out in plaintext; the server never sees a client Finished.
    s = tls_session(tmp_path, version=ssl.TLSVersion.TLSv1_3, keylog=None, to_server=[], to_client=[], verify=True)
    assert not s.handshake_ok
    write_pcap(tmp_path / "c.pcap", s.segments)
    (f,) = run(tmp_path / "c.pcap")
    assert (f.handshake, f.version, f.alerts, f.reset_by) == ("failed", "TLS 1.3", ("client fatal unknown_ca",), None)


def test_unanswered_syn_and_reconnects(tmp_path: Path) -> None:
    write_pcap(tmp_path / "syn.pcap", [], syn_only=True)
    (f,) = run(tmp_path / "syn.pcap")
    assert f.syn_answered is False and f.handshake == "not-seen"
    flows = (f, f)
    assert reconnects(flows) == {f"{CLIENT[0]} -> {SERVER[0]}:{SERVER[1]}": 1}


def test_midsession_capture_handshake_not_seen() -> None:
    path = PCAPS / "sngrep_hist_tlssaved.pcap"
    if not path.exists():
        pytest.skip(f"shared capture {path} not present")
    flows = run(path)
    assert flows and all(f.handshake == "not-seen" and f.server_port == 5061 for f in flows)
    assert all(f.version is None and f.sni is None for f in flows)


# ------------------------------------------------------------------ decryption with tshark

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


def test_tshark_command_has_both_decode_as_rules_and_absolute_keylog(tmp_path: Path) -> None:
    cmd = tshark_command(Path("c.pcap"), Path("keys.log"), [65061])
    assert f"tls.keylog_file:{Path('keys.log').resolve()}" in cmd
    assert "tcp.port==65061,tls" in cmd and "tls.port==65061,sip" in cmd


def test_parse_tshark_json_keeps_every_message_of_a_frame() -> None:
    text = ('[{"_source": {"layers": {"frame": {"frame.number": "8", "frame.time_epoch": "1.5"},'
            ' "ip": {"ip.src": "10.0.0.1", "ip.dst": "10.0.0.2"}, "tcp": {"tcp.srcport": "1", "tcp.dstport": "2"},'
            ' "sip_raw": ["4142", 0, 2, 0, 1], "sip_raw": ["4344", 2, 2, 0, 1]}}}]')
    msgs = parse_tshark_json(text)
    assert [m.data for m in msgs] == [b"AB", b"CD"] and msgs[0].frame == 8 and msgs[0].ts == 1.5
    with pytest.raises(UpscopeError):
        parse_tshark_json("[{")


@needs_tshark
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_keylog_decryption_feeds_the_sip_analyzer(tmp_path: Path, version: ssl.TLSVersion) -> None:
    keylog = tmp_path / "keys.log"
    invite = req("INVITE", 1, body=SDP)
    options = req("OPTIONS", 1, call_id="o1")
    # spans several TCP segments
    big = req("MESSAGE", 1, call_id="m1", body=b"x" * 3000).replace(b"application/sdp", b"text/plain")
    s = tls_session(tmp_path, version=version, keylog=keylog, to_server=[invite + options, big],
                    to_client=[resp(180, "Ringing", 1, "INVITE"), resp(200, "OK", 1, "OPTIONS", call_id="o1")])
    cap = tmp_path / "trunk.pcap"
    write_pcap(cap, s.segments)
    msgs = decrypt_sip(cap, keylog, [SERVER[1]])
    assert decrypt_sip(cap, keylog, tls_ports(())) == msgs  # the trunk ports by default
    a = SipAnalyzer()
    assert feed(a, msgs) == 5
    r = a.finish(None)
    assert r.sip_requests == {"INVITE": 1, "OPTIONS": 1, "MESSAGE": 1}
    assert r.sip_responses == {"180": 1, "200": 1}
    assert {m.transport for m in r.sip_messages} == {"tls"} and r.errors == ()
    assert r.call_media["c1"][0].port == 4000
    (call,) = r.calls
    assert call.state == "ringing" and call.src == CLIENT[0]
    flows = mark_decrypted(run(cap), msgs)
    assert [f.decrypted for f in flows] == [True]
    # without the key log nothing is decrypted, and a missing key log is a clear error
    (tmp_path / "empty.log").write_text("")
    assert decrypt_sip(cap, tmp_path / "empty.log", [SERVER[1]]) == []
    with pytest.raises(UpscopeError, match="key log"):
        decrypt_sip(cap, tmp_path / "missing.log", [SERVER[1]])
    # a capture cut short inside a later packet still gives the messages before the damage
    cut = tmp_path / "cut.pcap"
    data = cap.read_bytes()
    cut.write_bytes(data[:len(data) - 60])  # inside the final ACK
    assert [m.data for m in decrypt_sip(cut, keylog, [SERVER[1]])] == [m.data for m in msgs]
    with pytest.raises(UpscopeError, match="could not decrypt"):
        decrypt_sip(tmp_path / "keys.log", keylog, [SERVER[1]])  # not a capture at all


_SESSION: list[tuple[bool, bytes]] = []


def _session_segments() -> list[tuple[bool, bytes]]:
    if not _SESSION:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            _SESSION.extend(tls_session(Path(tmp), version=ssl.TLSVersion.TLSv1_2, keylog=None,
                                        to_server=[req("OPTIONS", 1)], to_client=[]).segments)
    return _SESSION


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_tls_streams_never_raise(data: st.DataObject) -> None:
    a = TlsAnalyzer()
    for i, (from_client, seg) in enumerate(_session_segments()):
        buf = bytearray(seg)
        for _ in range(data.draw(st.integers(0, 3))):
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] = data.draw(st.integers(0, 255))
        src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        a.on_segment(TcpSegment(i + 1, float(i), *src, *dst, 0, 0, 0x18, bytes(buf)))
        a.on_stream(StreamData(i + 1, float(i), *src, *dst, bytes(buf), 1))
    flows = a.finish(100.0)
    assert len(flows) == 1


def test_plain_sip_on_the_tls_port_is_not_a_tls_flow() -> None:
    a = TlsAnalyzer()
    a.on_segment(TcpSegment(1, 0.0, *CLIENT, *SERVER, 1, 0, 0x02, b""))
    a.on_segment(TcpSegment(2, 0.1, *SERVER, *CLIENT, 1, 2, 0x12, b""))
    a.on_segment(TcpSegment(3, 0.2, *CLIENT, *SERVER, 2, 2, 0x18, req("OPTIONS", 1)))
    assert a.finish(1.0) == ()  # the pipeline sent the stream to SIP, never to TLS


def test_https_flows_in_a_real_capture_match_tshark() -> None:
    # tshark: 52790 starts mid-session (server Encrypted Alert, client RST); 52796 and 52797 are
    # abbreviated (resumed) TLS 1.2 handshakes, 52796 ends with an Encrypted Alert and a client RST.
    path = PCAPS / "heplify_sip_ipv4_tcp_retrans.pcap"
    if not path.exists():
        pytest.skip(f"shared capture {path} not present")
    a = analyse(path)
    assert a.server_ports() == {443}  # where tshark would have to decode TLS for a key log
    flows = {f.client_port: f for f in a.finish(None)}
    assert set(flows) == {52790, 52796, 52797}
    assert (flows[52790].handshake, flows[52790].reset_by, flows[52790].alerts) == (
        "not-seen", "client", ("server encrypted alert",))
    assert (flows[52796].handshake, flows[52796].version, flows[52796].reset_by, flows[52796].first_frame) == (
        "ok", "TLS 1.2", "client", 58)
    assert (flows[52797].handshake, flows[52797].syn_answered, flows[52797].alerts) == (
        "ok", True, ("server encrypted alert",))
    assert all(f.cert_subject is None for f in flows.values())  # resumed: no Certificate message


@needs_tshark
def test_hello_and_alert_fields_agree_with_tshark(tmp_path: Path) -> None:
    s = tls_session(tmp_path, version=ssl.TLSVersion.TLSv1_2, keylog=None, to_server=[], to_client=[], verify=True)
    cap = tmp_path / "c.pcap"
    write_pcap(cap, s.segments)
    out = subprocess.run(
        ["tshark", "-n", "-r", str(cap), "-d", f"tcp.port=={SERVER[1]},tls", "-Y", "tls", "-T", "fields",
         "-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.version", "-e", "tls.alert_message.desc",
         "-e", "x509sat.printableString", "-e", "x509sat.uTF8String"],
        capture_output=True, check=True).stdout.decode()
    fields = [line.split("\t") for line in out.splitlines()]
    sni = {f[0] for f in fields if f[0]}
    versions = [int(v, 16) for f in fields for v in f[1].split(",") if v]
    alerts = [int(f[2]) for f in fields if f[2]]
    (flow,) = run(cap)
    assert sni == {flow.sni}
    assert versions[-1] == 0x0303 and flow.version == "TLS 1.2"  # the ServerHello's version
    assert alerts == [48] and flow.alerts == ("client fatal unknown_ca",)  # RFC 8446 §6: 48 = unknown_ca
    assert any("trunk.example" in f[3] + f[4] for f in fields) and flow.cert_subject == "CN=trunk.example"


@needs_tshark
@pytest.mark.skipif(shutil.which("dumpcap") is None, reason="dumpcap (tshark's capture tool) is not installed")
def test_keylog_decryption_of_a_real_loopback_capture(tmp_path: Path) -> None:
    """Real sockets on 127.0.0.1, captured by dumpcap on lo: kernel segmentation, real handshake."""
    import signal
    import socket
    import threading

    cert, key = make_cert(tmp_path)
    keylog = tmp_path / "keys.log"
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cap = tmp_path / "lo.pcapng"
    dump = subprocess.Popen(["dumpcap", "-i", "lo", "-f", f"tcp port {port}", "-w", str(cap), "-q"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert dump.stderr is not None
        ready = dump.stderr.readline().decode()  # "Capturing on 'Loopback: lo'" once it runs
        if "Capturing on" not in ready:
            pytest.skip(f"dumpcap cannot capture here: {ready.strip()}")
        time.sleep(0.3)  # the ready line comes just before the first poll of the socket
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(str(cert), str(key))
        got: list[bytes] = []

        def serve() -> None:
            conn, _ = srv.accept()
            with sctx.wrap_socket(conn, server_side=True) as tls:
                data = b""
                while b"OPTIONS" not in data or not data.endswith(b"\r\n\r\n"):
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                got.append(data)
                tls.sendall(resp(200, "OK", 1, "OPTIONS", call_id="o1"))

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
        cctx.keylog_filename = str(keylog)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                cctx.wrap_socket(raw, server_hostname="trunk.example") as tls:
            tls.sendall(req("REGISTER", 1, call_id="r1") + req("OPTIONS", 1, call_id="o1"))
            assert b"200 OK" in tls.recv(65536)
        t.join(timeout=5)
    finally:
        time.sleep(0.3)  # let dumpcap write the last packets
        dump.send_signal(signal.SIGINT)
        try:
            dump.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dump.kill()
            dump.wait()
        srv.close()
    msgs = decrypt_sip(cap, keylog, [port])
    a = SipAnalyzer()
    feed(a, msgs)
    r = a.finish(None)
    assert r.sip_requests == {"REGISTER": 1, "OPTIONS": 1} and r.sip_responses == {"200": 1}
    flows = TlsAnalyzer(tls_ports={port})
    ra = Reassembler()
    for pkt in packets(cap):
        if isinstance(pkt, TcpSegment):
            flows.on_segment(pkt)
            for sd in ra.feed(pkt):
                flows.on_stream(sd)
    (f,) = mark_decrypted(flows.finish(None), msgs)
    assert (f.handshake, f.version, f.sni, f.syn_answered, f.decrypted) == ("ok", "TLS 1.3", "trunk.example", True, True)
