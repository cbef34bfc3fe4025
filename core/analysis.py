"""Typed results of capture analysis (the offline engine and the live collector both fill these).

These are the contract between ``collectors`` (who compute them), the rules, the faces and the
JSON output of ``upscope analyze``. Extend freely; never rename a field that reaches JSON.
Frame numbers are 1-based as in Wireshark; timestamps are UNIX seconds (float).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples and dicts → plain JSON types (bytes are not expected in results)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class SeenAt:
    """Where and when one SIP message was seen: its frame, time, both ends and transport."""

    frame: int
    ts: float
    src: str
    src_port: int
    dst: str
    dst_port: int
    transport: str  # "udp" | "tcp" | "tls" | "trace"


@dataclass(frozen=True, slots=True)
class SipMessageInfo(SeenAt):
    """One SIP message as seen on the wire (or in an OSBiz trace)."""

    method: str | None  # request method, or None for a response
    status: int | None  # response code, or None for a request
    reason: str
    call_id: str
    cseq: int
    cseq_method: str
    retransmission: bool = False
    summary: str = ""  # first line


@dataclass(frozen=True, slots=True)
class StreamInterval:
    """Media quality of one RTP stream over one 10-s interval (docs/analysis-rtp-media.md)."""

    start: float
    packets: int
    expected: int
    lost: int
    mean_jitter_ms: float
    max_jitter_ms: float
    mos: float | None


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """One DTMF key press: an RFC 4733 telephone-event (all packets of one event, de-duplicated by
    their RTP timestamp) or a SIP INFO (``application/dtmf-relay``, ``application/dtmf``)."""

    digit: str  # "0"-"9", "*", "#", "A"-"D", "flash", or "event N" for other RFC 4733 events
    event: int  # RFC 4733 event code (0-9 digits, 10 *, 11 #, 12-15 A-D, 16 flash)
    ts: float  # arrival of its first packet / the INFO
    duration_ms: float | None  # the longest duration sent (RFC 4733) or the INFO's Duration
    ended: bool  # an end-of-event packet arrived (always True for an INFO)
    src: str  # address of the sender
    frame: int  # frame of the first packet / the INFO
    source: str = "rfc4733"  # "rfc4733" | "sip-info"
    packets: int = 1  # packets carrying it, retransmitted end packets included


@dataclass(frozen=True, slots=True)
class RtpStreamStats:
    src: str
    src_port: int
    dst: str
    dst_port: int
    ssrc: int
    payload_type: int
    codec: str
    clock_rate: int
    packets: int
    expected: int
    lost: int
    loss_pct: float
    sequence_errors: int
    duplicates: int
    min_delta_ms: float
    mean_delta_ms: float
    max_delta_ms: float
    mean_jitter_ms: float
    max_jitter_ms: float
    mos: float | None
    first_ts: float
    last_ts: float
    first_frame: int
    last_frame: int
    call_id: str | None = None
    detected_by: str = "sdp"  # "sdp" | "heuristic"
    events: int = 0  # RFC 4733 telephone-event packets
    intervals: tuple[StreamInterval, ...] = ()
    mos_note: str | None = None  # why ``mos`` is None (no E-model value for the codec, …)
    dtmf: tuple[DtmfEvent, ...] = ()  # RFC 4733 key presses carried by the stream


@dataclass(frozen=True, slots=True)
class SdpMedia:
    """One media line a call's SDP announced: ``sender`` (the address that sent the SDP) receives
    that media at ``addr``:``port``."""

    sender: str
    addr: str
    port: int
    media: str  # "audio" | "video" | "image" | …
    direction: str  # "sendrecv" | "sendonly" | "recvonly" | "inactive" (RFC 3264 §5.1)
    ts: float
    frame: int = 0


#: ``CallInfo.state`` of calls that had not ended when the analysed span did: not yet answered
#: (``in-progress``, ``ringing``) or answered with no BYE or CANCEL yet (``answered-open``, still
#: up at the end of the capture; its duration runs to its last packet).
CALL_OPEN_STATES = frozenset({"in-progress", "ringing", "answered-open"})


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str
    from_uri: str
    to_uri: str
    caller: str
    callee: str
    src: str  # address of the side that sent the INVITE
    dst: str
    start_ts: float
    first_frame: int
    final_code: int | None
    final_reason: str
    answered: bool
    setup_ms: float | None  # INVITE → 200 OK
    pdd_ms: float | None  # INVITE → first 180/183 (or final) (RFC 6076 SRD)
    answer_ts: float | None
    end_ts: float | None
    duration_s: float | None  # 200 OK → BYE; an open call: → its last packet (SIP or its RTP)
    cancelled: bool
    hangup_by: str | None  # "caller" | "callee" | None
    reason_header: str | None  # Reason: Q.850;cause=… as sent
    q850_cause: int | None
    retransmissions: int
    state: str  # "answered" | "answered-open" | "failed" | "cancelled" | "in-progress" | "ringing"
    messages: int
    frames: tuple[int, ...] = ()
    streams: tuple[int, ...] = ()  # indexes into AnalysisResult.rtp_streams
    one_way_audio: bool = False  # ``core.one_way.judge_call`` with its default thresholds
    media: tuple[SdpMedia, ...] = ()  # what the call's SDP offers and answers announced, in order
    dtmf: tuple[DtmfEvent, ...] = ()  # key presses of the call (its streams' RFC 4733 events, SIP INFO)


@dataclass(frozen=True, slots=True)
class RegistrationState:
    ts: float
    frame: int
    state: str  # "trying" | "challenged" | "registered" | "failed" | "expired" | "unregistered"
    code: int | None


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    aor: str
    registrar: str  # ip:port the REGISTERs went to
    client: str
    attempts: int
    challenges: int
    final_codes: dict[str, int]
    last_code: int | None
    granted_expiry_s: int | None
    last_success_ts: float | None
    expiry_ts: float | None  # last_success_ts + granted expiry
    request_delay_ms: float | None  # RFC 6076 RRD of the last successful registration
    registered: bool  # at the end of the capture
    unanswered: int
    timeline: tuple[RegistrationState, ...] = ()
    frames: tuple[int, ...] = ()
    #: Contact URIs the registrar listed in its last 2xx: every binding of the AOR (RFC 3261 §10.3),
    #: so a second system registered with the same trunk shows here even in this system's own trace.
    bindings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeepaliveInfo:
    kind: str  # "options" | "crlf"
    client: str
    peer: str
    count: int
    answered: int
    failures: int
    min_rtt_ms: float | None
    mean_rtt_ms: float | None
    max_rtt_ms: float | None
    last_ts: float | None
    rtts_ms: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class TlsFlowInfo:
    client: str
    client_port: int
    server: str
    server_port: int
    first_ts: float
    last_ts: float
    first_frame: int
    syn_answered: bool | None  # None when the SYN is not in the capture
    handshake: str  # "ok" | "failed" | "incomplete" | "not-seen"
    version: str | None
    sni: str | None
    alerts: tuple[str, ...]
    reset_by: str | None  # "client" | "server" | None
    cert_subject: str | None = None
    cert_not_after: float | None = None
    cert_valid_at_capture: bool | None = None
    decrypted: bool = False
    bytes_client: int = 0
    bytes_server: int = 0
    offered_versions: tuple[str, ...] = ()  # ClientHello supported_versions (or legacy version)


@dataclass(frozen=True, slots=True)
class StunTransactionInfo:
    client: str
    client_port: int
    server: str
    server_port: int
    transport: str
    transaction_id: str
    method: str
    request_frame: int
    response_frame: int | None
    rtt_ms: float | None
    response_class: str | None  # "success" | "error" | None
    mapped_address: str | None
    error_code: int | None


@dataclass(frozen=True, slots=True)
class FlowInfo:
    """A transport flow aggregated by (proto, src, dst, dst_port) for the firewall check."""

    proto: str  # "tcp" | "udp"
    src: str
    dst: str
    dst_port: int
    packets: int
    bytes: int
    first_ts: float
    last_ts: float
    syn: int = 0
    syn_ack: int = 0
    rst: int = 0
    icmp_unreachable: int = 0
    first_frame: int = 0


@dataclass(frozen=True, slots=True)
class ErrorItem:
    """A malformed or unsupported item, never dropped silently."""

    kind: str  # "malformed" | "unsupported" | "truncated" | "file"
    layer: str  # "pcap", "ip", "tcp", "sip", "sdp", "rtp", "stun", "tls", "trace", ...
    message: str
    frame: int | None = None
    offset: int | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class RtcpReport:
    """What one RTCP sender said about one source (or about itself, for SR-only senders)."""

    src: str
    src_port: int
    dst: str
    dst_port: int
    sender_ssrc: int
    source_ssrc: int | None  # the SSRC the report blocks describe; None when only SRs were sent
    packets: int  # compound RTCP datagrams carrying this pair
    sender_reports: int
    receiver_reports: int
    last_fraction_lost_pct: float | None
    max_fraction_lost_pct: float | None
    cumulative_lost: int | None  # signed 24-bit as sent (negative with duplicates)
    last_jitter_ms: float | None
    max_jitter_ms: float | None
    last_rtt_ms: float | None  # at the capture point: RR arrival − matching SR − DLSR
    max_rtt_ms: float | None
    cname: str | None
    bye: bool
    first_frame: int
    last_frame: int
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    sources: tuple[str, ...]
    packets: int
    first_ts: float | None
    last_ts: float | None
    partial: bool
    sip_requests: dict[str, int]
    sip_responses: dict[str, int]
    sip_messages: tuple[SipMessageInfo, ...]
    calls: tuple[CallInfo, ...]
    registrations: tuple[RegistrationInfo, ...]
    keepalives: tuple[KeepaliveInfo, ...]
    rtp_streams: tuple[RtpStreamStats, ...]
    tls_flows: tuple[TlsFlowInfo, ...]
    stun: tuple[StunTransactionInfo, ...]
    flows: tuple[FlowInfo, ...]
    errors: tuple[ErrorItem, ...]
    kpis: dict[str, float | None] = field(default_factory=dict)
    link_types: tuple[str, ...] = ()
    rtcp: tuple[RtcpReport, ...] = ()  # RtpAnalyzer.finish_rtcp()
    error_counts: dict[str, int] = field(default_factory=dict)  # by kind, also items not listed (capped)
