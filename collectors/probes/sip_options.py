"""SIP OPTIONS probes over UDP, TCP and TLS (RFC 3261 §11): RTT, status code, certificate.

The probe sends one out-of-dialog OPTIONS and waits for the final response whose Call-ID
matches; provisional answers, other Call-IDs and keepalive pongs are noted in the transcript
and skipped. Over UDP the request is retransmitted on Timer E (T1 = 0.5 s doubling to T2 = 4 s,
RFC 3261 §17.1.2.2). The answers are read by the SIP codec (``core.wire.sip``).
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field

from collectors.probes.options import (
    ProbeOptions,
    StatusRanges,
    TlsOptions,
    as_status_ranges,
    as_text,
    parsed_by,
)
from collectors.probes.record import ProbeFailed, ProbeRecord
from collectors.probes.spec import ProbeSpec
from collectors.probes.transport import (
    MAX_MESSAGES,
    connect,
    in_ranges,
    tls_handshake,
    udp_exchange,
    udp_socket,
)
from core.errors import ParseError
from core.probes import ProbeModule, ProbeResult
from core.wire.sip import NEED_DATA, SipFrame, SipMessage, SipStreamFramer, parse_message
from core.wire.sip_build import BRANCH_MAGIC, build_request

SIP_T1, SIP_T2 = 0.5, 4.0  # RFC 3261 §17.1.1.1


@dataclass(frozen=True, slots=True)
class SipOptions(ProbeOptions):
    #: Final status codes that count as success, e.g. "200-299,403".
    valid_status: StatusRanges = field(default=((200, 299),), metadata=parsed_by(as_status_ranges))
    #: User part of the From URI.
    from_user: str = field(default="upscope", metadata=parsed_by(as_text))


@dataclass(frozen=True, slots=True)
class SipTlsOptions(TlsOptions):
    """SipOptions and the TLS verification (two slotted bases cannot be combined)."""

    valid_status: StatusRanges = field(default=((200, 299),), metadata=parsed_by(as_status_ranges))
    from_user: str = field(default="upscope", metadata=parsed_by(as_text))


def build_options(
    *,
    target_host: str,
    target_port: int,
    transport: str,
    local_host: str,
    local_port: int,
    call_id: str,
    branch: str,
    tag: str,
    from_user: str = "upscope",
    user_agent: str = "upscope-probe",
) -> bytes:
    """An out-of-dialog OPTIONS (RFC 3261 §11.1) to ``target``; ``transport`` is udp|tcp|tls."""
    host = f"[{target_host}]" if ":" in target_host else target_host
    local = f"[{local_host}]" if ":" in local_host else local_host
    uri = f"sip:{host}:{target_port};transport={transport}"
    return build_request("OPTIONS", uri, [
        ("Via", f"SIP/2.0/{transport.upper()} {local}:{local_port};branch={branch};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{from_user}@{local}>;tag={tag}"),
        ("To", f"<{uri}>"),
        ("Call-ID", call_id),
        ("CSeq", "1 OPTIONS"),
        ("Contact", f"<sip:{from_user}@{local}:{local_port};transport={transport}>"),
        ("Accept", "application/sdp"),
        ("User-Agent", user_agent),
    ])


def _sip_ids() -> tuple[str, str, str]:
    """Call-ID, branch and From tag of a new request."""
    return f"upscope-{secrets.token_hex(8)}", BRANCH_MAGIC + secrets.token_hex(8), secrets.token_hex(4)


def _answer(record: ProbeRecord, message: SipMessage, call_id: str,
            options: SipOptions | SipTlsOptions) -> ProbeResult | None:
    """The result if ``message`` is our final response, else None (provisional or someone else's)."""
    head = f"< SIP {message.status} {message.reason}" if message.status else f"< {message.method} (request)"
    record.note(head + "".join(f"\n{name}: {value}" for name, value in message.headers))
    if message.status is None or message.call_id != call_id or message.status < 200:
        return None
    record.details["status_code"] = message.status
    record.details["reason_phrase"] = message.reason
    server = message.get("server") or message.get("user-agent")
    if server:
        record.details["server"] = server[:200]
    record.details["rtt_ms"] = round(record.phases.get("request", 0.0) * 1000.0, 3)
    if in_ranges(message.status, options.valid_status):
        return record.result(True, "")
    return record.result(False, f"SIP OPTIONS to {record.target} answered {message.status} {message.reason}")


def _over_stream(record: ProbeRecord, options: SipOptions | SipTlsOptions, timeout: float) -> ProbeResult:
    sock: socket.socket = connect(record, timeout)
    try:
        if isinstance(options, SipTlsOptions):
            sock = tls_handshake(record, sock, options, timeout)
        transport = "tls" if isinstance(options, SipTlsOptions) else "tcp"
        local = sock.getsockname()
        call_id, branch, tag = _sip_ids()
        request = build_options(
            target_host=record.target.host, target_port=record.target.port, transport=transport,
            local_host=local[0], local_port=local[1], call_id=call_id, branch=branch, tag=tag,
            from_user=options.from_user,
        )
        framer = SipStreamFramer()
        t0 = time.monotonic()
        try:
            sock.settimeout(record.require("SIP OPTIONS to", timeout))
            sock.sendall(request)
            record.note("> " + request.decode("ascii").rstrip())
            for _ in range(MAX_MESSAGES):
                sock.settimeout(record.require("SIP OPTIONS to", timeout))
                data = sock.recv(65536)
                record.phases["request"] = time.monotonic() - t0
                if not data:
                    raise ProbeFailed(f"SIP OPTIONS to {record.target}: connection closed by the peer without an answer")
                framer.feed(data)
                framer.segment_boundary()  # a lone CRLF is the server's keepalive pong
                while (event := framer.next_event()) is not NEED_DATA:
                    if isinstance(event, SipFrame):  # keepalive pongs are not answers
                        done = _answer(record, event.message, call_id, options)
                        if done is not None:
                            return done
        except TimeoutError:
            record.phases["request"] = time.monotonic() - t0
            raise ProbeFailed(f"SIP OPTIONS to {record.target}: no final response within {timeout:g} s") from None
        except ParseError as exc:
            raise ProbeFailed(f"SIP OPTIONS to {record.target}: malformed answer ({exc})") from None
        except ConnectionResetError:
            raise ProbeFailed(f"SIP OPTIONS to {record.target}: connection reset by the peer") from None
        except OSError as exc:
            raise ProbeFailed(f"SIP OPTIONS to {record.target}: {exc.strerror or exc}") from None
        raise ProbeFailed(f"SIP OPTIONS to {record.target}: {MAX_MESSAGES} messages without our answer")
    finally:
        sock.close()


def _over_udp(record: ProbeRecord, options: SipOptions, timeout: float) -> ProbeResult:
    with udp_socket(record) as sock:
        local = sock.getsockname()
        call_id, branch, tag = _sip_ids()
        request = build_options(
            target_host=record.target.host, target_port=record.target.port, transport="udp",
            local_host=local[0], local_port=local[1], call_id=call_id, branch=branch, tag=tag,
            from_user=options.from_user,
        )
        record.note("> " + request.decode("ascii").rstrip())

        def accept(data: bytes) -> ProbeResult | None:
            try:
                message = parse_message(data, datagram=True)
            except ParseError as exc:
                record.note(f"< malformed datagram ({len(data)} bytes): {exc}")
                return None
            return _answer(record, message, call_id, options)

        return udp_exchange(record, sock, request, SIP_T1, SIP_T2, "SIP OPTIONS to", timeout, accept)


SPECS = (
    ProbeSpec(ProbeModule.SIP_OPTIONS_UDP, "SIP OPTIONS over UDP: RTT and status code", 5060,
              SipOptions, _over_udp),
    ProbeSpec(ProbeModule.SIP_OPTIONS_TCP, "SIP OPTIONS over TCP: connect time, RTT and status code", 5060,
              SipOptions, _over_stream),
    ProbeSpec(ProbeModule.SIP_OPTIONS_TLS, "SIP OPTIONS over TLS: handshake, certificate, RTT and status code",
              5061, SipTlsOptions, _over_stream),
)
