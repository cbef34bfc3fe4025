"""The STUN Binding probe (RFC 5389 §7): RTT and the reflexive transport address.

Over UDP the request is retransmitted with a doubling RTO from 500 ms (RFC 5389 §7.2.1) until
the deadline; over TCP (``transport=tcp``) one request is sent on a fresh connection. Answers are
read by the STUN codec (``core.wire.stun``): XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS for RFC 3489
servers; an error response is a failure with its code.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from collectors.probes.options import ProbeOptions, as_choice, parsed_by
from collectors.probes.record import ProbeFailed, ProbeRecord
from collectors.probes.spec import ProbeSpec
from collectors.probes.transport import MAX_MESSAGES, connect, udp_exchange, udp_socket
from core.errors import ParseError
from core.probes import ProbeModule, ProbeResult
from core.wire import stun

STUN_RTO = 0.5  # RFC 5389 §7.2.1


@dataclass(frozen=True, slots=True)
class StunOptions(ProbeOptions):
    #: udp (retransmitted) or tcp (one request on a new connection).
    transport: str = field(default="udp", metadata=parsed_by(as_choice("udp", "tcp")))


def _answer(record: ProbeRecord, message: stun.StunMessage, txid: bytes) -> ProbeResult | None:
    if message.transaction_id != txid.hex() or message.klass not in ("success", "error"):
        record.note(f"< STUN {message.klass} for another transaction (ignored)")
        return None
    record.details["rtt_ms"] = round(record.phases.get("request", 0.0) * 1000.0, 3)
    if message.klass == "error":
        code, text = message.error_code or 0, message.error_reason
        record.note(f"< STUN Binding error {code} {text}")
        record.details["error_code"] = code
        return record.result(False, f"STUN Binding to {record.target}: error {code} {text}".rstrip())
    mapped = message.mapped_address
    if mapped is None:
        record.note("< STUN Binding success without a mapped address")
        return record.result(False, f"STUN Binding to {record.target}: success without (XOR-)MAPPED-ADDRESS")
    record.details["mapped_address"] = mapped
    record.note(f"< STUN Binding success XOR-MAPPED-ADDRESS {mapped}")
    return record.result(True, "")


def _binding(record: ProbeRecord, options: StunOptions, timeout: float) -> ProbeResult:
    txid = os.urandom(12)
    request = stun.build_binding_request(txid, "upscope-probe")
    record.details["transport"] = options.transport
    if options.transport == "tcp":
        return _over_tcp(record, request, txid, timeout)
    with udp_socket(record) as sock:
        record.note(f"> STUN Binding request txid={txid.hex()}")

        def accept(data: bytes) -> ProbeResult | None:
            try:
                message = stun.parse_datagram(data)
                return _answer(record, message, txid)
            except ParseError as exc:
                record.note(f"< malformed STUN datagram ({len(data)} bytes): {exc}")
                return None

        # RFC 5389 §7.2.1: RTO doubles without a cap (Rc = 7); the deadline bounds it here.
        return udp_exchange(record, sock, request, STUN_RTO, 64 * STUN_RTO, "STUN Binding to", timeout, accept)


def _over_tcp(record: ProbeRecord, request: bytes, txid: bytes, timeout: float) -> ProbeResult:
    with connect(record, timeout) as sock:
        framer = stun.StunStreamFramer()
        t0 = time.monotonic()
        try:
            sock.settimeout(record.require("STUN Binding to", timeout))
            sock.sendall(request)
            record.note(f"> STUN Binding request over TCP txid={txid.hex()}")
            for _ in range(MAX_MESSAGES):
                while (event := framer.next_event()) is stun.NEED_DATA:
                    sock.settimeout(record.require("STUN Binding to", timeout))
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ProbeFailed(f"STUN Binding to {record.target}: connection closed without an answer")
                    framer.feed(chunk)
                record.phases["request"] = time.monotonic() - t0
                if isinstance(event, stun.StunMessage):  # TURN ChannelData is not an answer
                    done = _answer(record, event, txid)
                    if done is not None:
                        return done
        except TimeoutError:
            raise ProbeFailed(f"STUN Binding to {record.target}: no answer within {timeout:g} s") from None
        except ParseError as exc:
            raise ProbeFailed(f"STUN Binding to {record.target}: malformed answer ({exc})") from None
        except OSError as exc:
            raise ProbeFailed(f"STUN Binding to {record.target}: {exc.strerror or exc}") from None
        raise ProbeFailed(f"STUN Binding to {record.target}: {MAX_MESSAGES} messages without our answer")


SPEC = ProbeSpec(ProbeModule.STUN, "STUN Binding (RFC 5389): RTT and XOR-MAPPED-ADDRESS", 3478,
                 StunOptions, _binding)
