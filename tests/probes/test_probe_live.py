"""Probes against real peers on loopback: SIPp, TLS/TCP SIP responders, STUN, refused, black holes."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from probe_peers import Certs, Server, StunResponder, server_tls_context, sip_reply, sip_stream_handler

from collectors.probes import ProbeConfigError, run


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sipp_uas(tmp_path: Path) -> Iterator[int]:
    """Debian SIPp as UAS over UDP; ``-aa`` answers out-of-dialog OPTIONS with 200 OK."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp (Debian package sip-tester) is not installed")
    port = _free_udp_port()
    proc = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-aa", "-nostdin", "-timeout", "60s"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):  # wait until SIPp answers (bounded: 50 × ≤ 0.3 s); no bind race
            if run("sip_options_udp", f"127.0.0.1:{port}", timeout=0.2).success or proc.poll() is not None:
                break
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_sip_options_udp_against_sipp(sipp_uas: int) -> None:
    result = run("sip_options_udp", f"127.0.0.1:{sipp_uas}", timeout=5)
    assert result.success, result.reason
    assert result.details["status_code"] == 200
    assert 0 < result.details["rtt_ms"] < 1000
    assert set(result.phases) == {"resolve", "request"}
    assert result.transcript[0].startswith("> OPTIONS sip:127.0.0.1:")
    assert result.transcript[-1].startswith("< SIP 200 OK")


def test_sip_options_udp_valid_status_can_accept_only_other_codes(sipp_uas: int) -> None:
    result = run("sip_options_udp", f"127.0.0.1:{sipp_uas}", timeout=5, valid_status="404")
    assert not result.success
    assert result.reason.endswith("answered 200 OK")


def test_sip_options_tls_verified_against_ca(server_factory: Callable[..., Server], certs: Certs) -> None:
    server = server_factory(sip_stream_handler(), server_tls_context(certs.leaf_cert, certs.leaf_key))
    result = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=5, ca_file=str(certs.ca))
    assert result.success, result.reason
    d = result.details
    assert d["status_code"] == 200 and d["server"] == "test-responder"
    assert d["cert_verified"] is True
    assert d["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert d["cert_not_after"] == certs.leaf_not_after
    assert 19 < d["cert_days_left"] <= 20
    assert d["cert_subject"] == "CN=connector.test"
    assert set(result.phases) == {"resolve", "connect", "tls", "request"}
    assert result.duration_s >= sum(result.phases.values()) * 0.99


def test_sip_options_tls_hostname_from_server_name(server_factory: Callable[..., Server], certs: Certs) -> None:
    server = server_factory(sip_stream_handler(), server_tls_context(certs.leaf_cert, certs.leaf_key))
    ok = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=5, ca_file=str(certs.ca),
             server_name="connector.test")
    assert ok.success, ok.reason
    wrong = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=5, ca_file=str(certs.ca),
                server_name="other.test")
    assert not wrong.success
    assert "not accepted" in wrong.reason and "mismatch" in wrong.reason.lower()
    assert wrong.details["cert_verified"] is False
    assert wrong.details["cert_subject"] == "CN=connector.test"  # still read for the operator


def test_sip_options_tls_untrusted_chain_is_data_and_insecure_passes(
    server_factory: Callable[..., Server], certs: Certs
) -> None:
    server = server_factory(sip_stream_handler(), server_tls_context(certs.leaf_cert, certs.leaf_key))
    untrusted = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=5)  # system store only
    assert not untrusted.success
    assert "unable to get local issuer certificate" in untrusted.reason
    assert untrusted.details["cert_not_after"] == certs.leaf_not_after
    insecure = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=5, insecure="true")
    assert insecure.success, insecure.reason
    assert insecure.details["cert_verified"] is False


def test_sip_options_tls_expired_certificate(server_factory: Callable[..., Server], certs: Certs) -> None:
    server = server_factory(sip_stream_handler(), server_tls_context(certs.expired_cert, certs.expired_key))
    result = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=5, ca_file=str(certs.ca))
    assert not result.success
    assert "certificate has expired" in result.reason
    assert result.details["cert_expired"] is True
    assert result.details["cert_days_left"] < 0


def test_sip_options_tcp_framing_split_and_pong(server_factory: Callable[..., Server]) -> None:
    server = server_factory(sip_stream_handler(status="403 Forbidden", split=True))
    result = run("sip_options_tcp", f"127.0.0.1:{server.port}", timeout=5)
    assert not result.success
    assert result.reason == f"SIP OPTIONS to 127.0.0.1:{server.port} answered 403 Forbidden"
    assert result.details["status_code"] == 403
    accepted = run("sip_options_tcp", f"127.0.0.1:{server.port}", timeout=5, valid_status="200-699")
    assert accepted.success


def test_challenge_in_the_transcript_is_fingerprinted(server_factory: Callable[..., Server]) -> None:
    def challenge(conn: socket.socket) -> None:
        request = conn.recv(4096)
        reply = sip_reply(request, "401 Unauthorized").replace(
            b"Content-Length: 0", b'WWW-Authenticate: Digest realm="r", nonce="n0nce-SECRET"\r\nContent-Length: 0')
        conn.sendall(reply)
        conn.recv(1)

    server = server_factory(challenge)
    result = run("sip_options_tcp", f"127.0.0.1:{server.port}", timeout=3)
    assert not result.success and result.details["status_code"] == 401
    text = "\n".join(result.transcript)
    assert "n0nce-SECRET" not in text and "www-authenticate: <redacted sha256:" in text


def test_tls_handshake_to_plain_tcp_peer_fails_with_reason(server_factory: Callable[..., Server]) -> None:
    def plain(conn: socket.socket) -> None:  # a SIP/TCP peer: answers the ClientHello with SIP
        conn.recv(4096)
        conn.sendall(b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    server = server_factory(plain)
    result = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=5, insecure=True)
    assert not result.success
    assert result.reason.startswith(f"TLS handshake with 127.0.0.1:{server.port} failed")


def test_tls_handshake_stall_times_out(server_factory: Callable[..., Server]) -> None:
    server = server_factory(lambda conn: conn.recv(65536) and time.sleep(3))  # accepts, never answers
    t0 = time.monotonic()
    result = run("sip_options_tls", f"127.0.0.1:{server.port}", timeout=1)
    assert time.monotonic() - t0 < 3.0
    assert not result.success
    assert result.reason == f"TLS handshake with 127.0.0.1:{server.port}: timed out after 1 s"
    assert "connect" in result.phases and result.phases["tls"] >= 0.9


def test_stun_binding_reports_mapped_address(stun_factory: Callable[[str], StunResponder]) -> None:
    responder = stun_factory("other-txid-first")
    result = run("stun", f"127.0.0.1:{responder.port}", timeout=3)
    assert result.success, result.reason
    host, port = result.details["mapped_address"].split(":")
    assert host == "127.0.0.1" and 1024 <= int(port) <= 65535
    assert result.details["rtt_ms"] < 1000
    assert any("another transaction" in line for line in result.transcript)


def test_stun_retransmits_after_a_lost_request(stun_factory: Callable[[str], StunResponder]) -> None:
    responder = stun_factory("drop-first")
    result = run("stun", f"127.0.0.1:{responder.port}", timeout=3)
    assert result.success, result.reason
    assert result.details["retransmissions"] == 1
    assert 0.45 <= result.phases["request"] < 1.5  # first RTO is 500 ms (RFC 5389 §7.2.1)


def test_stun_error_response_is_data(stun_factory: Callable[[str], StunResponder]) -> None:
    responder = stun_factory("error")
    result = run("stun", f"127.0.0.1:{responder.port}", timeout=3)
    assert not result.success
    assert result.reason == f"STUN Binding to 127.0.0.1:{responder.port}: error 401 Unauthorized"
    assert result.details["error_code"] == 401


@pytest.mark.parametrize("module", ["tcp_connect", "sip_options_tcp", "sip_options_tls", "https_rest"])
def test_refused_is_data(module: str, closed_port: int) -> None:
    result = run(module, f"127.0.0.1:{closed_port}", timeout=2)
    assert not result.success
    assert result.reason == f"TCP connect to 127.0.0.1:{closed_port}: refused (RST, nothing listens)"


@pytest.mark.parametrize("module", ["sip_options_udp", "stun"])
def test_udp_port_unreachable_is_data(module: str, closed_port: int) -> None:
    result = run(module, f"127.0.0.1:{closed_port}", timeout=2)
    assert not result.success
    assert "ICMP port unreachable" in result.reason
    assert result.duration_s < 1.0


@pytest.mark.parametrize("module", ["sip_options_udp", "stun"])
def test_udp_black_hole_times_out_with_retransmissions(module: str, udp_black_hole: int) -> None:
    t0 = time.monotonic()
    result = run(module, f"127.0.0.1:{udp_black_hole}", timeout=1.6)
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed < 2.5
    assert not result.success
    assert result.reason.endswith("no answer within 1.6 s (3 sent)")  # at 0, 0.5, 1.5 s
    assert result.details["retransmissions"] == 2


def test_tcp_black_hole_times_out(tcp_black_hole: int) -> None:
    result = run("tcp_connect", f"127.0.0.1:{tcp_black_hole}", timeout=1)
    assert not result.success
    assert result.reason == f"TCP connect to 127.0.0.1:{tcp_black_hole}: timed out after 1 s (SYN unanswered)"
    assert result.phases["connect"] >= 0.9


def _http_handler(status: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        assert buf.startswith(b"GET /health HTTP/1.1\r\n")
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nSet-Cookie: s=secret\r\n"
                     b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")

    return handle


def test_https_rest(server_factory: Callable[..., Server], certs: Certs) -> None:
    ctx = server_tls_context(certs.leaf_cert, certs.leaf_key)
    ok = server_factory(_http_handler(b"401 Unauthorized"), ctx)
    result = run("https_rest", f"127.0.0.1:{ok.port}", timeout=5, ca_file=str(certs.ca), path="/health")
    assert result.success, result.reason  # 401 without credentials still proves reachability
    assert result.details["status_code"] == 401
    assert set(result.phases) == {"resolve", "connect", "tls", "request"}
    assert not any("secret" in line for line in result.transcript)
    bad = server_factory(_http_handler(b"503 Service Unavailable"), ctx)
    failed = run("https_rest", f"127.0.0.1:{bad.port}", timeout=5, ca_file=str(certs.ca), path="/health")
    assert not failed.success
    assert failed.reason == f"HTTPS GET /health to 127.0.0.1:{bad.port} answered 503 Service Unavailable"


def test_https_rest_authenticated_needs_2xx_and_echoed_key_is_redacted(
    server_factory: Callable[..., Server], certs: Certs
) -> None:
    def echo(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        key = head.split(b"X-Api-Key: ")[1].split(b"\r\n")[0]
        body = b'{"error": "invalid_api_key", "message": "unknown key ' + key + b'"}'
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

    server = server_factory(echo, server_tls_context(certs.leaf_cert, certs.leaf_key))
    result = run("https_rest", f"127.0.0.1:{server.port}", timeout=5, ca_file=str(certs.ca), api_key="CANARY-k3y")
    assert not result.success
    assert "invalid_api_key" in result.reason
    shown = str(result.to_dict())
    assert "CANARY-k3y" not in shown and "unknown key <sha256:" in shown


def test_tcp_connect_success(server_factory: Callable[..., Server]) -> None:
    server = server_factory(lambda conn: None)
    result = run("tcp_connect", f"127.0.0.1:{server.port}", timeout=2)
    assert result.success and result.reason == ""
    assert set(result.phases) == {"resolve", "connect"}


def test_unresolvable_name_is_data() -> None:
    result = run("tcp_connect", "no-such-host.invalid:5060", timeout=2)
    assert not result.success
    assert result.reason.startswith("resolve no-such-host.invalid:")


@pytest.mark.parametrize(
    ("module", "target", "opts", "message"),
    [
        ("nope", "127.0.0.1:1", {}, "unknown"),
        ("tcp_connect", "127.0.0.1", {}, "missing port"),
        ("tcp_connect", "127.0.0.1:70000", {}, "port must be 1-65535"),
        ("tcp_connect", "a b:1", {}, "bad host name"),
        ("stun", "127.0.0.1:3478", {"insecure": True}, "unknown option 'insecure'"),
        ("sip_options_tls", "127.0.0.1:1", {"insecure": "maybe"}, "expected true or false"),
        ("sip_options_udp", "127.0.0.1:1", {"valid_status": "2xx"}, "expected codes or ranges"),
        ("sip_options_tls", "127.0.0.1:1", {"ca_file": "/nonexistent/ca.pem"}, "cannot load"),
    ],
)
def test_bad_requests_raise_config_error(module: str, target: str, opts: dict[str, object], message: str) -> None:
    with pytest.raises(ProbeConfigError, match=message):
        run(module, target, timeout=1, **opts)


def test_default_ports() -> None:
    assert run("stun", "127.0.0.1", timeout=1).target == "127.0.0.1:3478"
    assert run("sip_options_tls", "127.0.0.1", timeout=1).target == "127.0.0.1:5061"


def test_ssl_module_knows_tls13() -> None:
    assert ssl.HAS_TLSv1_3  # the TLS version assertions above rely on a modern OpenSSL
