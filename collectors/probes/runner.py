"""Active probes in the blackbox_exporter style: one signature, a registry, failure is data.

``run(module, target, timeout, **opts)`` always returns a ``core.probes.ProbeResult`` for anything
the network does (refused, timed out, reset, bad certificate, malformed answer): the reason is a
one-line sentence, the phase durations say where the time went, the transcript shows what was
sent and received with credentials replaced by fingerprints. Only a request that cannot be run at
all (unknown module, bad target, bad option) raises ``ProbeConfigError``.

Every socket operation is bounded by one deadline (``timeout`` for the whole probe). Over UDP the
request is retransmitted on the RFC timers (SIP Timer E, RFC 3261 §17.1.2.2; STUN RTO, RFC 5389
§7.2.1) until the deadline. UDP sockets are ``connect``ed so an ICMP port-unreachable surfaces as
``ConnectionRefusedError``: "nothing listens" is told apart from "no answer".
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from collectors.probes import sip
from collectors.probes.target import ProbeConfigError, Target, parse_target
from core.errors import ParseError
from core.probes import ProbeResult
from core.secrets import fingerprint
from core.wire import stun
from core.wire.sip import NEED_DATA, SipFrame, SipMessage, SipStreamFramer, parse_message

MAX_TIMEOUT_S = 60.0
MAX_TRANSCRIPT_ENTRIES = 40
MAX_TRANSCRIPT_CHARS = 2000  # per entry; a probe transcript is for reading, not for archiving
MAX_MESSAGES = 50  # answers read while waiting for ours (a chatty peer cannot keep us forever)
SIP_T1, SIP_T2 = 0.5, 4.0  # RFC 3261 §17.1.1.1
STUN_RTO = 0.5  # RFC 5389 §7.2.1


class _Fail(Exception):
    """Internal: ends a probe with ``reason`` (caught in ``run``; never leaves this module)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Trace:
    """Mutable scratch state of one probe run, frozen into a ProbeResult at the end."""

    probe: str
    target: Target
    deadline: float
    ts: float = field(default_factory=time.time)
    started: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)
    transcript: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # credentials this probe sends: fingerprinted if a peer echoes them

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def require(self, what: str, timeout: float) -> float:
        left = self.remaining()
        if left <= 0:
            raise _Fail(f"{what} {self.target}: timed out after {timeout:g} s")
        return left

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + (time.monotonic() - t0)

    def note(self, text: str) -> None:
        if len(self.transcript) >= MAX_TRANSCRIPT_ENTRIES:
            return
        text = self.redact(sip.redact(text.replace("\r\n", "\n")))
        if len(text) > MAX_TRANSCRIPT_CHARS:
            text = text[:MAX_TRANSCRIPT_CHARS] + f"… ({len(text) - MAX_TRANSCRIPT_CHARS} more chars)"
        self.transcript.append(text)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, f"<{_fingerprint(secret)}>")
        return text

    def result(self, success: bool, reason: str) -> ProbeResult:
        return ProbeResult(
            probe=self.probe,
            target=str(self.target),
            ts=self.ts,
            success=success,
            reason=reason,
            duration_s=time.monotonic() - self.started,
            phases=dict(self.phases),
            transcript=tuple(self.transcript),
            details=dict(self.details),
        )


# --- options -------------------------------------------------------------------------------------


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _text(value: Any) -> str:
    text = str(value)
    if len(text) > 1000 or any(ord(ch) < 32 for ch in text):
        raise ValueError("expected one line of at most 1000 characters")
    return text


def _status_ranges(value: Any) -> tuple[tuple[int, int], ...]:
    """"200-299,401" → ((200, 299), (401, 401)); codes 100-699."""
    ranges = []
    for part in str(value).split(","):
        low, _, high = part.strip().partition("-")
        if not (low.isascii() and low.isdigit()) or (high and not (high.isascii() and high.isdigit())):
            raise ValueError("expected codes or ranges like 200-299,401")
        pair = (int(low), int(high or low))
        if not 100 <= pair[0] <= pair[1] <= 699:
            raise ValueError("status codes must be 100-699, low-high")
        ranges.append(pair)
    return tuple(ranges)


def _ca_file(value: Any) -> str:
    text = _text(value)
    if not os.path.isfile(text) or not os.access(text, os.R_OK):
        raise ValueError(f"{text!r} cannot load: not a readable file")
    return text


def _path(value: Any) -> str:
    text = _text(value)
    if not text.startswith("/") or " " in text:
        raise ValueError("expected an absolute request path without spaces")
    return text


TLS_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "insecure": _bool,  # skip chain and hostname verification (the certificate is still read)
    "ca_file": _ca_file,  # PEM bundle to verify against instead of the system store
    "server_name": _text,  # SNI and the name the certificate must match (default: target host)
}


# --- building blocks -----------------------------------------------------------------------------


def _resolve(trace: _Trace, kind: int) -> tuple[int, Any]:
    target = trace.target
    with trace.phase("resolve"):
        try:
            infos = socket.getaddrinfo(target.host, target.port, type=kind)
        except socket.gaierror as exc:
            raise _Fail(f"resolve {target.host}: {exc.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    trace.details["address"] = sockaddr[0]
    return family, sockaddr


def _connect(trace: _Trace, timeout: float) -> socket.socket:
    family, sockaddr = _resolve(trace, socket.SOCK_STREAM)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(trace.require("TCP connect to", timeout))
        with trace.phase("connect"):
            sock.connect(sockaddr)
    except ConnectionRefusedError:
        sock.close()
        raise _Fail(f"TCP connect to {trace.target}: refused (RST, nothing listens)") from None
    except TimeoutError:
        sock.close()
        raise _Fail(f"TCP connect to {trace.target}: timed out after {timeout:g} s (SYN unanswered)") from None
    except OSError as exc:
        sock.close()
        raise _Fail(f"TCP connect to {trace.target}: {exc.strerror or exc}") from None
    trace.note(f"TCP connected {sock.getsockname()[0]}:{sock.getsockname()[1]} -> {trace.target}")
    return sock


def _tls_context(opts: Mapping[str, Any], verify: bool) -> ssl.SSLContext:
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=opts.get("ca_file"))
    except (OSError, ssl.SSLError) as exc:
        raise ProbeConfigError(f"probe option ca_file {opts.get('ca_file')!r}: cannot load ({exc})") from None


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


def _tls(trace: _Trace, sock: socket.socket, opts: Mapping[str, Any], timeout: float) -> ssl.SSLSocket:
    """TLS handshake; a verification failure is data, and the certificate is still read."""
    insecure = bool(opts.get("insecure", False))
    server_name = opts.get("server_name") or trace.target.host
    ctx = _tls_context(opts, verify=not insecure)
    is_ip = _is_ip(server_name)
    sni = None if is_ip else server_name
    ssock = ctx.wrap_socket(sock, server_hostname=server_name if not insecure else sni,
                            do_handshake_on_connect=False)
    try:
        ssock.settimeout(trace.require("TLS handshake with", timeout))
        with trace.phase("tls"):
            ssock.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        ssock.close()
        trace.details["cert_verified"] = False
        trace.details["cert_verify_error"] = exc.verify_message or str(exc.reason)
        trace.details.update(_peek_certificate(trace, opts, timeout))
        raise _Fail(f"TLS certificate of {trace.target} not accepted: {exc.verify_message or exc.reason}") from None
    except TimeoutError:
        ssock.close()
        raise _Fail(f"TLS handshake with {trace.target}: timed out after {timeout:g} s") from None
    except ssl.SSLError as exc:
        ssock.close()
        raise _Fail(f"TLS handshake with {trace.target} failed: {exc.reason or exc}") from None
    except OSError as exc:
        ssock.close()
        raise _Fail(f"TLS handshake with {trace.target} failed: {exc.strerror or exc}") from None
    trace.details["cert_verified"] = not insecure
    trace.details["tls_version"] = ssock.version()
    cipher = ssock.cipher()
    trace.details["tls_cipher"] = cipher[0] if cipher else None
    trace.details.update(_cert_details(ssock.getpeercert(binary_form=True), time.time()))
    trace.note(f"TLS {ssock.version()} {trace.details['tls_cipher']} "
               f"cert subject={trace.details.get('cert_subject')} verified={not insecure}")
    return ssock


def _peek_certificate(trace: _Trace, opts: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """After a failed verification, read the certificate without verifying (bounded by the deadline)."""
    if trace.remaining() <= 0:
        return {}
    server_name = opts.get("server_name") or trace.target.host
    ctx = _tls_context(opts, verify=False)
    try:
        info = socket.getaddrinfo(trace.target.host, trace.target.port, type=socket.SOCK_STREAM)[0]
        family, sockaddr = info[0], info[4]
        with socket.socket(family, socket.SOCK_STREAM) as raw:
            raw.settimeout(max(trace.remaining(), 0.01))
            raw.connect(sockaddr)
            with ctx.wrap_socket(raw, server_hostname=None if _is_ip(server_name) else server_name) as s:
                return _cert_details(s.getpeercert(binary_form=True), time.time())
    except OSError:
        return {}


def _is_ip(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            continue
    return False


def _in_ranges(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= code <= high for low, high in ranges)


# --- SIP OPTIONS ---------------------------------------------------------------------------------


def _sip_ids() -> tuple[str, str, str]:
    token = secrets.token_hex(8)
    return f"upscope-{token}", f"z9hG4bK{secrets.token_hex(8)}", secrets.token_hex(4)


def _sip_answer(trace: _Trace, message: SipMessage, call_id: str, opts: Mapping[str, Any]) -> ProbeResult | None:
    """The result if ``message`` is our final response, else None (provisional or someone else's)."""
    head = f"< SIP {message.status} {message.reason}" if message.status else f"< {message.method} (request)"
    trace.note(head + "".join(f"\n{name}: {value}" for name, value in message.headers))
    if message.status is None or message.call_id != call_id or message.status < 200:
        return None
    trace.details["status_code"] = message.status
    trace.details["reason_phrase"] = message.reason
    server = message.get("server") or message.get("user-agent")
    if server:
        trace.details["server"] = server[:200]
    trace.details["rtt_ms"] = round(trace.phases.get("request", 0.0) * 1000.0, 3)
    if _in_ranges(message.status, opts.get("valid_status", ((200, 299),))):
        return trace.result(True, "")
    return trace.result(False, f"SIP OPTIONS to {trace.target} answered {message.status} {message.reason}")


def _sip_options_stream(trace: _Trace, opts: Mapping[str, Any], timeout: float, tls: bool) -> ProbeResult:
    sock: socket.socket = _connect(trace, timeout)
    try:
        if tls:
            sock = _tls(trace, sock, opts, timeout)
        transport = "tls" if tls else "tcp"
        local = sock.getsockname()
        call_id, branch, tag = _sip_ids()
        request = sip.build_options(
            target_host=trace.target.host, target_port=trace.target.port, transport=transport,
            local_host=local[0], local_port=local[1], call_id=call_id, branch=branch, tag=tag,
            from_user=opts.get("from_user", "upscope"),
        )
        framer = SipStreamFramer()
        t0 = time.monotonic()
        try:
            sock.settimeout(trace.require("SIP OPTIONS to", timeout))
            sock.sendall(request)
            trace.note("> " + request.decode("ascii").rstrip())
            for _ in range(MAX_MESSAGES):
                sock.settimeout(trace.require("SIP OPTIONS to", timeout))
                data = sock.recv(65536)
                trace.phases["request"] = time.monotonic() - t0
                if not data:
                    raise _Fail(f"SIP OPTIONS to {trace.target}: connection closed by the peer without an answer")
                framer.feed(data)
                framer.segment_boundary()  # a lone CRLF is the server's keepalive pong
                while (event := framer.next_event()) is not NEED_DATA:
                    if isinstance(event, SipFrame):  # keepalive pongs are not answers
                        done = _sip_answer(trace, event.message, call_id, opts)
                        if done is not None:
                            return done
        except TimeoutError:
            trace.phases["request"] = time.monotonic() - t0
            raise _Fail(f"SIP OPTIONS to {trace.target}: no final response within {timeout:g} s") from None
        except ParseError as exc:
            raise _Fail(f"SIP OPTIONS to {trace.target}: malformed answer ({exc})") from None
        except ConnectionResetError:
            raise _Fail(f"SIP OPTIONS to {trace.target}: connection reset by the peer") from None
        except OSError as exc:
            raise _Fail(f"SIP OPTIONS to {trace.target}: {exc.strerror or exc}") from None
        raise _Fail(f"SIP OPTIONS to {trace.target}: {MAX_MESSAGES} messages without our answer")
    finally:
        sock.close()


def _udp_socket(trace: _Trace) -> socket.socket:
    family, sockaddr = _resolve(trace, socket.SOCK_DGRAM)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.connect(sockaddr)  # connected: ICMP unreachable → ConnectionRefusedError on recv
    return sock


def _udp_exchange(
    trace: _Trace, sock: socket.socket, payload: bytes, first_rto: float, max_rto: float, what: str,
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
                trace.details["retransmissions"] = sends - 1
                next_send = now + rto
                rto = min(rto * 2, max_rto)
            left = trace.remaining()
            if left <= 0:
                break
            sock.settimeout(max(min(left, next_send - time.monotonic()), 0.001))
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            trace.phases["request"] = time.monotonic() - t0
            received += 1
            done = accept(data)
            if done is not None:
                return done
            if received >= MAX_MESSAGES:
                raise _Fail(f"{what} {trace.target}: {MAX_MESSAGES} datagrams without our answer")
    except ConnectionRefusedError:
        trace.phases["request"] = time.monotonic() - t0
        raise _Fail(f"{what} {trace.target}: ICMP port unreachable (nothing listens on UDP {trace.target.port})") from None
    except OSError as exc:
        raise _Fail(f"{what} {trace.target}: {exc.strerror or exc}") from None
    trace.phases["request"] = time.monotonic() - t0
    raise _Fail(f"{what} {trace.target}: no answer within {timeout:g} s ({sends} sent)")


def _sip_options_udp(trace: _Trace, opts: Mapping[str, Any], timeout: float) -> ProbeResult:
    with _udp_socket(trace) as sock:
        local = sock.getsockname()
        call_id, branch, tag = _sip_ids()
        request = sip.build_options(
            target_host=trace.target.host, target_port=trace.target.port, transport="udp",
            local_host=local[0], local_port=local[1], call_id=call_id, branch=branch, tag=tag,
            from_user=opts.get("from_user", "upscope"),
        )
        trace.note("> " + request.decode("ascii").rstrip())

        def accept(data: bytes) -> ProbeResult | None:
            try:
                message = parse_message(data, datagram=True)
            except ParseError as exc:
                trace.note(f"< malformed datagram ({len(data)} bytes): {exc}")
                return None
            return _sip_answer(trace, message, call_id, opts)

        return _udp_exchange(trace, sock, request, SIP_T1, SIP_T2, "SIP OPTIONS to", timeout, accept)


# --- STUN ----------------------------------------------------------------------------------------


def _stun_answer(trace: _Trace, message: stun.StunMessage, txid: bytes) -> ProbeResult | None:
    if message.transaction_id != txid.hex() or message.klass not in ("success", "error"):
        trace.note(f"< STUN {message.klass} for another transaction (ignored)")
        return None
    trace.details["rtt_ms"] = round(trace.phases.get("request", 0.0) * 1000.0, 3)
    if message.klass == "error":
        code, text = message.error_code or 0, message.error_reason
        trace.note(f"< STUN Binding error {code} {text}")
        trace.details["error_code"] = code
        return trace.result(False, f"STUN Binding to {trace.target}: error {code} {text}".rstrip())
    mapped = message.mapped_address
    if mapped is None:
        trace.note("< STUN Binding success without a mapped address")
        return trace.result(False, f"STUN Binding to {trace.target}: success without (XOR-)MAPPED-ADDRESS")
    trace.details["mapped_address"] = mapped
    trace.note(f"< STUN Binding success XOR-MAPPED-ADDRESS {mapped}")
    return trace.result(True, "")


def _stun(trace: _Trace, opts: Mapping[str, Any], timeout: float) -> ProbeResult:
    txid = os.urandom(12)
    request = stun.build_binding_request(txid, "upscope-probe")
    transport = opts.get("transport", "udp")
    if transport == "tcp":
        return _stun_tcp(trace, request, txid, timeout)
    with _udp_socket(trace) as sock:
        trace.note(f"> STUN Binding request txid={txid.hex()}")

        def accept(data: bytes) -> ProbeResult | None:
            try:
                message = stun.parse_datagram(data)
                return _stun_answer(trace, message, txid)
            except ParseError as exc:
                trace.note(f"< malformed STUN datagram ({len(data)} bytes): {exc}")
                return None

        # RFC 5389 §7.2.1: RTO doubles without a cap (Rc = 7); the deadline bounds it here.
        return _udp_exchange(trace, sock, request, STUN_RTO, 64 * STUN_RTO, "STUN Binding to", timeout, accept)


def _stun_tcp(trace: _Trace, request: bytes, txid: bytes, timeout: float) -> ProbeResult:
    with _connect(trace, timeout) as sock:
        framer = stun.StunStreamFramer()
        t0 = time.monotonic()
        try:
            sock.settimeout(trace.require("STUN Binding to", timeout))
            sock.sendall(request)
            trace.note(f"> STUN Binding request over TCP txid={txid.hex()}")
            for _ in range(MAX_MESSAGES):
                while (event := framer.next_event()) is stun.NEED_DATA:
                    sock.settimeout(trace.require("STUN Binding to", timeout))
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise _Fail(f"STUN Binding to {trace.target}: connection closed without an answer")
                    framer.feed(chunk)
                trace.phases["request"] = time.monotonic() - t0
                if isinstance(event, stun.StunMessage):  # TURN ChannelData is not an answer
                    done = _stun_answer(trace, event, txid)
                    if done is not None:
                        return done
        except TimeoutError:
            raise _Fail(f"STUN Binding to {trace.target}: no answer within {timeout:g} s") from None
        except ParseError as exc:
            raise _Fail(f"STUN Binding to {trace.target}: malformed answer ({exc})") from None
        except OSError as exc:
            raise _Fail(f"STUN Binding to {trace.target}: {exc.strerror or exc}") from None
        raise _Fail(f"STUN Binding to {trace.target}: {MAX_MESSAGES} messages without our answer")


# --- TCP connect and HTTPS REST ------------------------------------------------------------------


def _tcp_connect(trace: _Trace, opts: Mapping[str, Any], timeout: float) -> ProbeResult:
    _connect(trace, timeout).close()
    return trace.result(True, "")


def _https_rest(trace: _Trace, opts: Mapping[str, Any], timeout: float) -> ProbeResult:
    sock = _tls(trace, _connect(trace, timeout), opts, timeout)
    path = opts.get("path", "/")
    host = opts.get("server_name") or trace.target.host
    # Credentials go on the wire only: the transcript names the header and a fingerprint.
    auth: list[tuple[str, str]] = []
    if opts.get("api_key"):
        auth.append((opts.get("api_key_header", "X-Api-Key"), opts["api_key"]))
    if opts.get("bearer"):
        auth.append(("Authorization", f"Bearer {opts['bearer']}"))
    trace.secrets = tuple(value.removeprefix("Bearer ") for _, value in auth)
    extra = "".join(f"{name}: {value}\r\n" for name, value in auth)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: upscope-probe\r\n"
               f"Accept: */*\r\n{extra}Connection: close\r\n\r\n").encode()
    t0 = time.monotonic()
    try:
        sock.settimeout(trace.require("HTTPS GET to", timeout))
        sock.sendall(request)
        trace.note(f"> GET {path} HTTP/1.1 Host: {host}"
                   + "".join(f" {name}: <{_fingerprint(value)}>" for name, value in auth))
        response = http.client.HTTPResponse(sock)
        response.begin()
        trace.phases["request"] = time.monotonic() - t0
        status = response.status
        trace.details["status_code"] = status
        trace.details["reason_phrase"] = response.reason
        server = response.getheader("Server")
        if server:
            trace.details["server"] = server[:200]
        trace.note(f"< HTTP {status} {response.reason} content-type={response.getheader('Content-Type')}")
        error = trace.redact(_json_error(response.read(MAX_REST_BODY)))
        if error:
            trace.details["error"] = error
            trace.note(f"< error: {error}")
    except TimeoutError:
        raise _Fail(f"HTTPS GET {path} to {trace.target}: no response within {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as exc:
        raise _Fail(f"HTTPS GET {path} to {trace.target}: {type(exc).__name__} {exc}".rstrip()) from None
    finally:
        sock.close()
    # Unauthenticated, any answer below 500 proves reachability; authenticated as the OSBiz is,
    # only a 2xx means the REST API accepts the tenant's credentials.
    default = ((200, 299),) if auth else ((200, 499),)
    if _in_ranges(status, opts.get("valid_status", default)):
        return trace.result(True, "")
    why = f" ({trace.details['error']})" if trace.details.get("error") else ""
    return trace.result(False, f"HTTPS GET {path} to {trace.target} answered {status} {response.reason}{why}")


MAX_REST_BODY = 4096


def _fingerprint(secret: str) -> str:
    return "sha256:" + fingerprint(secret)


def _json_error(body: bytes) -> str:
    """The ``error``/``message`` of a JSON error body (e.g. ``jwt_expired``), printable and short."""
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    parts = [str(doc[k]) for k in ("error", "message") if isinstance(doc.get(k), str | int)]
    text = " — ".join(parts)
    return "".join(ch for ch in text if ch.isprintable())[:200]


def _header_name(value: Any) -> str:
    text = _text(value)
    if not text or any(not (ch.isalnum() or ch in "-_") for ch in text):
        raise ValueError("expected an HTTP header name (letters, digits, - and _)")
    return text


# --- registry ------------------------------------------------------------------------------------

ProbeFunc = Callable[[_Trace, Mapping[str, Any], float], ProbeResult]


@dataclass(frozen=True, slots=True)
class ProbeModule:
    name: str
    func: ProbeFunc
    description: str
    default_port: int | None = None
    options: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)


MODULES: dict[str, ProbeModule] = {}


def register(module: ProbeModule) -> None:
    """Add (or replace) a probe module; the name is what ``/probe?module=`` and the site use."""
    MODULES[module.name] = module


_SIP_OPTIONS = {"valid_status": _status_ranges, "from_user": _text}
for _module in (
    ProbeModule("sip_options_udp", lambda t, o, s: _sip_options_udp(t, o, s),
                "SIP OPTIONS over UDP: RTT and status code", 5060, _SIP_OPTIONS),
    ProbeModule("sip_options_tcp", lambda t, o, s: _sip_options_stream(t, o, s, tls=False),
                "SIP OPTIONS over TCP: connect time, RTT and status code", 5060, _SIP_OPTIONS),
    ProbeModule("sip_options_tls", lambda t, o, s: _sip_options_stream(t, o, s, tls=True),
                "SIP OPTIONS over TLS: handshake, certificate, RTT and status code", 5061,
                {**_SIP_OPTIONS, **TLS_OPTIONS}),
    ProbeModule("stun", _stun, "STUN Binding (RFC 5389): RTT and XOR-MAPPED-ADDRESS", 3478,
                {"transport": lambda v: _choice(v, ("udp", "tcp"))}),
    ProbeModule("tcp_connect", _tcp_connect, "TCP connect", None, {}),
    ProbeModule("https_rest", _https_rest, "HTTPS GET: status code and certificate", 443,
                {"path": _path, "valid_status": _status_ranges, "api_key": _text, "api_key_header": _header_name,
                 "bearer": _text, **TLS_OPTIONS}),
):
    register(_module)


def _choice(value: Any, allowed: tuple[str, ...]) -> str:
    text = str(value).lower()
    if text not in allowed:
        raise ValueError(f"expected one of {', '.join(allowed)}")
    return text


def run(module: str, target: str, timeout: float = 5.0, **opts: Any) -> ProbeResult:
    """Run one probe. Network failures are data in the result; bad requests raise ProbeConfigError."""
    spec = MODULES.get(module)
    if spec is None:
        raise ProbeConfigError(f"probe module {module[:40]!r}: unknown (known: {', '.join(sorted(MODULES))})")
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise ProbeConfigError(f"probe timeout {timeout!r}: must be > 0 and ≤ {MAX_TIMEOUT_S:g} s")
    parsed = parse_target(target, spec.default_port)
    checked: dict[str, Any] = {}
    for key, value in opts.items():
        convert = spec.options.get(key)
        if convert is None:
            known = ", ".join(sorted(spec.options)) or "none"
            raise ProbeConfigError(f"probe module {module}: unknown option {key[:40]!r} (known: {known})")
        try:
            checked[key] = convert(value)
        except ValueError as exc:
            raise ProbeConfigError(f"probe module {module}: option {key}: {exc}") from None
    trace = _Trace(probe=module, target=parsed, deadline=time.monotonic() + timeout)
    try:
        return spec.func(trace, checked, timeout)
    except _Fail as fail:
        return trace.result(False, fail.reason)

