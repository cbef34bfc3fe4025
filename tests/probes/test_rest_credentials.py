"""The HTTPS REST probe authenticates like the OSBiz (API key header, JWT bearer) and never shows them."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

from probe_peers import Certs, Server, server_tls_context

from collectors.probes import run

API_KEY = "CANARY-rest-key-3f9a"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0In0.c2lnLWNhbmFyeQ"


def _rest_handler(seen: list[bytes]) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        seen.append(head)
        key_ok = f"X-Api-Key: {API_KEY}".encode() in head
        jwt_ok = f"Bearer {JWT}".encode() in head
        if key_ok and jwt_ok:
            status, doc = b"200 OK", {"users": []}
        elif key_ok:
            status, doc = b"401 Unauthorized", {"error": "jwt_expired", "message": "JWT expired"}
        else:
            status, doc = b"401 Unauthorized", {"error": "invalid_api_key", "message": "API key invalid or regenerated"}
        body = json.dumps(doc).encode()
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

    return handle


def test_credentials_are_sent_but_never_shown(server_factory: Callable[..., Server], certs: Certs) -> None:
    seen: list[bytes] = []
    server = server_factory(_rest_handler(seen), server_tls_context(certs.leaf_cert, certs.leaf_key))
    target = f"127.0.0.1:{server.port}"

    good = run("https_rest", target, timeout=5, ca_file=str(certs.ca), api_key=API_KEY, bearer=JWT)
    assert good.success and good.details["status_code"] == 200
    assert f"X-Api-Key: {API_KEY}".encode() in seen[-1] and f"Bearer {JWT}".encode() in seen[-1]

    wrong = run("https_rest", target, timeout=5, ca_file=str(certs.ca), api_key="other-key-123", bearer=JWT)
    assert wrong.details["status_code"] == 401
    assert wrong.details["error"] == "invalid_api_key — API key invalid or regenerated"

    expired = run("https_rest", target, timeout=5, ca_file=str(certs.ca), api_key=API_KEY)
    assert expired.details["error"].startswith("jwt_expired")
    for result in (good, wrong, expired):
        shown = json.dumps(result.to_dict())
        assert API_KEY not in shown and JWT not in shown
    assert "X-Api-Key: <sha256:" in " ".join(good.transcript)


def test_header_injection_is_refused() -> None:
    from collectors.probes.target import ProbeConfigError

    try:
        run("https_rest", "127.0.0.1:9", timeout=1, api_key="k\r\nX-Evil: 1")
    except ProbeConfigError as exc:
        assert "\r\n" not in str(exc) and "X-Evil" not in str(exc)
    else:
        raise AssertionError("a key with CRLF must be refused")
