"""Network building blocks of the probes: resolve, TCP connect, TLS handshake, UDP exchange.

Every socket operation is bounded by the record's deadline (``timeout`` for the whole probe).
Over UDP the request is retransmitted on a doubling timer until the deadline (SIP Timer E,
RFC 3261 §17.1.2.2; STUN RTO, RFC 5389 §7.2.1). UDP sockets are ``connect``ed so an ICMP
port-unreachable surfaces as ``ConnectionRefusedError``: "nothing listens" is told apart from
"no answer". A TLS verification failure is data: the certificate is still read and reported.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509

from collectors.probes.options import StatusRanges, TlsOptions
from collectors.probes.record import ProbeFailed, ProbeRecord
from collectors.probes.target import ProbeConfigError
from core.probes import ProbeResult

MAX_MESSAGES = 50  # answers read while waiting for ours (a chatty peer cannot keep us forever)


def _resolve(record: ProbeRecord, kind: int) -> tuple[int, Any]:
    target = record.target
    with record.phase("resolve"):
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=kind)
        except socket.gaierror as exc:
            raise ProbeFailed(f"resolve {target.host}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    record.details["address"] = sockaddr[0]
    return family, sockaddr


def connect(record: ProbeRecord, timeout: float) -> socket.socket:
    family, sockaddr = _resolve(record, socket.SOCK_STREAM)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(record.require("TCP connect to", timeout))
        with record.phase("connect"):
            sock.connect(sockaddr)
    except ConnectionRefusedError:
        sock.close()
        raise ProbeFailed(f"TCP connect to {record.target}: refused (RST, nothing listens)") from None
    except TimeoutError:
        sock.close()
        raise ProbeFailed(f"TCP connect to {record.target}: timed out after {timeout:g} s (SYN unanswered)") from None
    except OSError as exc:
        sock.close()
        raise ProbeFailed(f"TCP connect to {record.target}: {exc.strerror or exc}") from None
    record.note(f"TCP connected {sock.getsockname()[0]}:{sock.getsockname()[1]} -> {record.target}")
    return sock


def _tls_context(options: TlsOptions, verify: bool) -> ssl.SSLContext:
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=options.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ProbeConfigError(f"probe option ca_file {options.ca_file!r}: cannot load ({exc})") from None


def _cert_details(der: bytes | None, now: float) -> dict[str, Any]:
    if not der:
        return {}
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return {"cert_error": "peer certificate cannot be decoded"}
    not_after = cert.not_valid_after_utc.timestamp()
    return {
        "cert_subject": cert.subject.rfc4514_string(),
        "cert_issuer": cert.issuer.rfc4514_string(),
        "cert_not_before": cert.not_valid_before_utc.timestamp(),
        "cert_not_after": not_after,
        "cert_days_left": round((not_after - now) / 86400.0, 2),
        "cert_expired": not_after <= now,
    }


def tls_handshake(record: ProbeRecord, sock: socket.socket, options: TlsOptions, timeout: float) -> ssl.SSLSocket:
    """TLS handshake; a verification failure is data, and the certificate is still read."""
    insecure = options.insecure
    server_name = options.server_name or record.target.host
    ctx = _tls_context(options, verify=not insecure)
    sni = None if is_ip(server_name) else server_name
    ssock = ctx.wrap_socket(sock, server_hostname=server_name if not insecure else sni,
                            do_handshake_on_connect=False)
    try:
        ssock.settimeout(record.require("TLS handshake with", timeout))
        with record.phase("tls"):
            ssock.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        ssock.close()
        record.details["cert_verified"] = False
        record.details["cert_verify_error"] = exc.verify_message or str(exc.reason)
        record.details.update(_peek_certificate(record, options, timeout))
        raise ProbeFailed(f"TLS certificate of {record.target} not accepted: {exc.verify_message or exc.reason}") from None
    except TimeoutError:
        ssock.close()
        raise ProbeFailed(f"TLS handshake with {record.target}: timed out after {timeout:g} s") from None
    except ssl.SSLError as exc:
        ssock.close()
        raise ProbeFailed(f"TLS handshake with {record.target} failed: {exc.reason or exc}") from None
    except OSError as exc:
        ssock.close()
        raise ProbeFailed(f"TLS handshake with {record.target} failed: {exc.strerror or exc}") from None
    record.details["cert_verified"] = not insecure
    record.details["tls_version"] = ssock.version()
    cipher = ssock.cipher()
    record.details["tls_cipher"] = cipher[0] if cipher else None
    record.details.update(_cert_details(ssock.getpeercert(binary_form=True), time.time()))
    record.note(f"TLS {ssock.version()} {record.details['tls_cipher']} "
               f"cert subject={record.details.get('cert_subject')} verified={not insecure}")
    return ssock


def _peek_certificate(record: ProbeRecord, options: TlsOptions, timeout: float) -> dict[str, Any]:
    """After a failed verification, read the certificate without verifying (bounded by the deadline)."""
    if record.remaining() <= 0:
        return {}
    server_name = options.server_name or record.target.host
    ctx = _tls_context(options, verify=False)
    try:
        info = socket.getaddrinfo(record.target.host, record.target.port, type=socket.SOCK_STREAM)[0]
        family, sockaddr = info[0], info[4]
        with socket.socket(family, socket.SOCK_STREAM) as raw:
            raw.settimeout(max(record.remaining(), 0.01))
            raw.connect(sockaddr)
            with ctx.wrap_socket(raw, server_hostname=None if is_ip(server_name) else server_name) as s:
                return _cert_details(s.getpeercert(binary_form=True), time.time())
    except OSError:
        return {}


def is_ip(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


def in_ranges(code: int, ranges: StatusRanges) -> bool:
    return any(low <= code <= high for low, high in ranges)


def udp_socket(record: ProbeRecord) -> socket.socket:
    family, sockaddr = _resolve(record, socket.SOCK_DGRAM)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.connect(sockaddr)  # connected: ICMP unreachable → ConnectionRefusedError on recv
    return sock


def udp_exchange(
    record: ProbeRecord, sock: socket.socket, payload: bytes, first_rto: float, max_rto: float, what: str,
    timeout: float, accept: Callable[[bytes], ProbeResult | None],
) -> ProbeResult:
    """Send ``payload``, retransmit on the doubling timer, hand every datagram to ``accept``."""
    t0 = time.monotonic()
    rto, next_send, sends = first_rto, t0, 0
    received = 0
    try:
        while True:
            now = time.monotonic()
            if now >= next_send:
                sock.send(payload)
                sends += 1
                record.details["retransmissions"] = sends - 1
                next_send = now + rto
                rto = min(rto * 2, max_rto)
            left = record.remaining()
            if left <= 0:
                break
            sock.settimeout(max(min(left, next_send - time.monotonic()), 0.001))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            record.phases["request"] = time.monotonic() - t0
            received += 1
            done = accept(data)
            if done is not None:
                return done
            if received >= MAX_MESSAGES:
                raise ProbeFailed(f"{what} {record.target}: {MAX_MESSAGES} datagrams without our answer")
    except ConnectionRefusedError:
        record.phases["request"] = time.monotonic() - t0
        raise ProbeFailed(f"{what} {record.target}: ICMP port unreachable (nothing listens on UDP {record.target.port})") from None
    except OSError as exc:
        raise ProbeFailed(f"{what} {record.target}: {exc.strerror or exc}") from None
    record.phases["request"] = time.monotonic() - t0
    raise ProbeFailed(f"{what} {record.target}: no answer within {timeout:g} s ({sends} sent)")
