"""Real peers on loopback for the probe tests: TLS/TCP SIP responders, a STUN responder, black holes.

The responders are written independently of ``collectors.probes`` (their own byte handling) so a
probe test checks the probe against a second implementation, not against itself.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certs:
    ca: Path  # CA bundle the probe may trust
    leaf_cert: Path  # 127.0.0.1 + connector.test, valid
    leaf_key: Path
    expired_cert: Path  # same names, expired yesterday
    expired_key: Path
    leaf_not_after: float


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    d = tmp_path_factory.mktemp("certs")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("upscope test CA")).issuer_name(_name("upscope test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    ca_path, _ = _write(d / "ca", ca, ca_key)

    def leaf(name: str, not_after: dt.datetime) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name("connector.test")).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=10)).not_valid_after(not_after)
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("connector.test"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                    critical=False)
                .sign(ca_key, hashes.SHA256()))
        return _write(d / name, cert, key)

    not_after = (now + dt.timedelta(days=20)).replace(microsecond=0)
    leaf_cert, leaf_key = leaf("leaf", not_after)
    expired_cert, expired_key = leaf("expired", now - dt.timedelta(days=1))
    return Certs(ca_path, leaf_cert, leaf_key, expired_cert, expired_key, not_after.timestamp())


_HEADER = re.compile(rb"^(Via|From|To|Call-ID|CSeq):[^\r\n]*\r\n", re.IGNORECASE | re.MULTILINE)


def sip_reply(request: bytes, status: str = "200 OK") -> bytes:
    """A response echoing the request's Via/From/To/Call-ID/CSeq (RFC 3261 §8.2.6.2), To-tag added."""
    lines = [m.group(0) for m in _HEADER.finditer(request)]
    lines = [ln[:-2] + b";tag=resp1\r\n" if ln.lower().startswith(b"to:") else ln for ln in lines]
    return (b"SIP/2.0 " + status.encode() + b"\r\n" + b"".join(lines)
            + b"Server: test-responder\r\nContent-Length: 0\r\n\r\n")


class Server:
    """A threaded loopback server; ``handle(conn)`` runs per accepted connection."""

    def __init__(self, handle: Callable[[socket.socket], None], ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.handle, self.ssl_ctx = handle, ssl_ctx
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.ssl_ctx is not None:
                conn = self.ssl_ctx.wrap_socket(conn, server_side=True)
            self.handle(conn)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def sip_stream_handler(status: str = "200 OK", split: bool = True) -> Callable[[socket.socket], None]:
    """Answer each request; with ``split`` send a CRLF pong first and the answer in two pieces."""

    def handle(conn: socket.socket) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(4096)
            if not chunk:
                return
            buf += chunk
        reply = sip_reply(buf, status)
        if split:
            conn.sendall(b"\r\n" + reply[:17])
            conn.sendall(reply[17:])
        else:
            conn.sendall(reply)
        conn.recv(1)  # wait for the client to close

    return handle


@pytest.fixture
def server_factory() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(handle: Callable[[socket.socket], None], ssl_ctx: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(handle, ssl_ctx))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


class StunResponder:
    """A UDP Binding responder (RFC 5389 §10.1.1 semantics) on 127.0.0.1; ``mode`` varies the answer."""

    def __init__(self, mode: str = "ok") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        self.requests = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            self.requests += 1
            if self.mode == "drop-first" and self.requests == 1:
                continue  # lose the first request: the probe must retransmit
            txid = data[8:20]
            if self.mode == "error":
                reason = b"Unauthorized"
                attr = struct.pack("!HH", 0x0009, 4 + len(reason)) + b"\0\0\x04\x01" + reason
                attr += b"\0" * (-len(attr) % 4)
                self.sock.sendto(struct.pack("!HHI", 0x0111, len(attr), 0x2112A442) + txid + attr, peer)
                continue
            if self.mode == "other-txid-first":  # a stray answer for someone else comes first
                self.sock.sendto(struct.pack("!HHI", 0x0101, 0, 0x2112A442) + b"x" * 12, peer)
            ip = socket.inet_aton(peer[0])
            xport = peer[1] ^ 0x2112
            xip = bytes(a ^ b for a, b in zip(ip, struct.pack("!I", 0x2112A442), strict=True))
            attr = struct.pack("!HHBBH", 0x0020, 8, 0, 1, xport) + xip
            self.sock.sendto(struct.pack("!HHI", 0x0101, len(attr), 0x2112A442) + txid + attr, peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def stun_factory() -> Iterator[Callable[[str], StunResponder]]:
    made: list[StunResponder] = []

    def make(mode: str = "ok") -> StunResponder:
        made.append(StunResponder(mode))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def udp_black_hole() -> Iterator[int]:
    """A bound UDP port that never answers (no ICMP either): the probe must time out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def tcp_black_hole() -> Iterator[int]:
    """A listener whose accept queue is full: Linux drops further SYNs, so connect() times out."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):  # backlog 0 still admits one or two; fill until a connect would block
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    yield port
    for s in fillers:
        s.close()
    listener.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound then closed: the kernel answers RST / ICMP unreachable)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
