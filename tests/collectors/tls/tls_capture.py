"""Test-only: real TLS sessions (OpenSSL through Python's ``ssl`` with memory BIOs, key log via
``SSLContext.keylog_filename``) carrying SIP, written as a pcap with correct TCP sequence numbers.

No sockets or capture privileges are needed, and the bytes on the "wire" are exactly what
OpenSSL produced, so tshark can decrypt them with the key log.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CLIENT, SERVER = ("10.1.1.10", 40001), ("10.2.2.20", 65061)


def make_cert(directory: Path, cn: str = "trunk.example", *, expired: bool = False) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if expired else \
        (now - dt.timedelta(days=1), now + dt.timedelta(days=365))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / f"{cn}.crt", directory / f"{cn}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Session:
    segments: list[tuple[bool, bytes]]  # (from client, bytes) in wire order
    handshake_ok: bool


def tls_session(tmp: Path, *, version: ssl.TLSVersion, keylog: Path | None, to_server: list[bytes],
                to_client: list[bytes], expired: bool = False, verify: bool = False) -> Session:
    cert, key = make_cert(tmp, expired=expired)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.maximum_version = version
    if verify:
        other_ca, _ = make_cert(tmp, "other-ca.example")
        cctx.load_verify_locations(str(other_ca))  # the server's cert is not signed by it
    else:
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
    if keylog is not None:
        cctx.keylog_filename = str(keylog)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(str(cert), str(key))
    cin, cout, sin, sout = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = cctx.wrap_bio(cin, cout, server_hostname="trunk.example")
    s = sctx.wrap_bio(sin, sout, server_side=True)
    segs: list[tuple[bool, bytes]] = []

    def pump() -> None:
        for out, inp, from_client in ((cout, sin, True), (sout, cin, False)):
            data = out.read()
            if data:
                segs.append((from_client, data))
                inp.write(data)

    ok = True
    for _ in range(20):
        done = 0
        for side in (c, s):
            try:
                side.do_handshake()
                done += 1
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                ok = False
        pump()
        if done == 2 or not ok:
            break
    if ok:
        for msg in to_server:
            c.write(msg)
            pump()
            while True:
                try:
                    s.read(65536)
                except ssl.SSLWantReadError:
                    break
            pump()
        for msg in to_client:
            s.write(msg)
            pump()
            while True:
                try:
                    c.read(65536)
                except ssl.SSLWantReadError:
                    break
            pump()
    return Session(segs, ok)


def write_pcap(path: Path, segments: list[tuple[bool, bytes]], *, start: float | None = None,
               fin: bool = True, rst_by_server: bool = False, syn_only: bool = False) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    (ca, cp), (sa, sp) = CLIENT, SERVER
    pkts = []
    ts = time.time() if start is None else start  # certificates are made valid from now - 1 day
    cseq, sseq = 1000, 5000

    def add(from_client: bool, flags: str, payload: bytes = b"") -> None:
        nonlocal ts, cseq, sseq
        if from_client:
            p = Ether() / IP(src=ca, dst=sa) / TCP(sport=cp, dport=sp, seq=cseq, ack=sseq, flags=flags) / payload
        else:
            p = Ether() / IP(src=sa, dst=ca) / TCP(sport=sp, dport=cp, seq=sseq, ack=cseq, flags=flags) / payload
        p.time = ts
        pkts.append(p)
        ts += 0.01
        step = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        if from_client:
            cseq += step
        else:
            sseq += step

    add(True, "S")
    if syn_only:
        add(True, "S")  # retransmitted SYN, never answered
        wrpcap(str(path), pkts)
        return
    add(False, "SA")
    add(True, "A")
    for from_client, data in segments:
        # keep segments below a typical MSS so reassembly is exercised
        for i in range(0, len(data), 1400):
            add(from_client, "PA", data[i:i + 1400])
    if rst_by_server:
        add(False, "R")
    elif fin:
        add(True, "FA")
        add(False, "FA")
        add(True, "A")
    wrpcap(str(path), pkts)
