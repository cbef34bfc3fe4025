"""Snapshots for the metrics tests: a busy healthy site and a bare one, built by the one producer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jwt as pyjwt

from collectors.producer import Inputs, build_snapshot
from core.analysis import (
    AnalysisResult,
    CallInfo,
    KeepaliveInfo,
    RegistrationInfo,
    RegistrationState,
    RtpStreamStats,
    SipMessageInfo,
    TlsFlowInfo,
)
from core.findings import Evidence, make
from core.probes import ProbeResult
from core.site.loader import load_site
from core.snapshot import CollectorStatus, ItspState, ItspStatus, OpenFinding, Snapshot

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0


def sip(frame: int, method: str | None, status: int | None, cseq_method: str, call_id: str) -> SipMessageInfo:
    return SipMessageInfo(frame, NOW - 100 + frame, "192.168.1.10", 5061, "35.246.178.13", 65061, "tls",
                          method, status, "", call_id, 1, cseq_method)


def call(i: int, state: str, setup_ms: float | None, one_way: bool = False, end: float | None = None) -> CallInfo:
    return CallInfo(
        call_id=f"secret-call-id-{i}@pbx", from_uri="sip:+49897007100@pbx", to_uri="sip:+4930123456@cloud",
        caller="+49897007100", callee="+4930123456", src="192.168.1.10", dst="35.246.178.13",
        start_ts=NOW - 60, first_frame=i, final_code=200 if state == "answered" else 486, final_reason="",
        answered=state == "answered", setup_ms=setup_ms, pdd_ms=None, answer_ts=None, end_ts=end,
        duration_s=None, cancelled=state == "cancelled", hangup_by=None, reason_header=None, q850_cause=None,
        retransmissions=0, state=state, messages=5, one_way_audio=one_way,
    )


def stream(i: int, lost: int, jitter_ms: float, mos: float | None) -> RtpStreamStats:
    return RtpStreamStats(
        src="192.168.1.10", src_port=10000 + i, dst="35.246.178.13", dst_port=20000 + i, ssrc=i,
        payload_type=8, codec="PCMA", clock_rate=8000, packets=500, expected=500 + lost, lost=lost,
        loss_pct=0.0, sequence_errors=0, duplicates=0, min_delta_ms=19.0, mean_delta_ms=20.0,
        max_delta_ms=21.0, mean_jitter_ms=jitter_ms, max_jitter_ms=jitter_ms * 2, mos=mos,
        first_ts=NOW - 50, last_ts=NOW - 40, first_frame=i, last_frame=i + 500,
    )


def sip_at(ts: float, method: str | None, status: int | None, cseq_method: str, call_id: str) -> SipMessageInfo:
    return SipMessageInfo(int(ts - NOW + 200), ts, "192.168.1.10", 5061, "35.246.178.13", 65061, "tls",
                          method, status, "", call_id, 1, cseq_method)


def busy_snapshot() -> Snapshot:
    """A busy healthy site through the one producer, as the service builds it."""
    messages = (
        sip(1, "REGISTER", None, "REGISTER", "r1"), sip(2, None, 401, "REGISTER", "r1"),
        sip(3, None, 200, "REGISTER", "r1"),
        # Two OPTIONS keepalives answered after 20 and 40 ms.
        sip_at(NOW - 95, "OPTIONS", None, "OPTIONS", "o1"), sip_at(NOW - 94.98, None, 200, "OPTIONS", "o1"),
        sip_at(NOW - 90, "OPTIONS", None, "OPTIONS", "o2"), sip_at(NOW - 89.96, None, 200, "OPTIONS", "o2"),
        sip(6, None, 486, "INVITE", "secret-call-id-2@pbx"),
        sip(7, None, 200, "FOOBAR", "x"), sip(8, None, 200, "INVITE", "secret-call-id-1@pbx"),
    )
    calls = (call(1, "answered", 850.0), call(2, "failed", None), call(3, "answered", 1200.0, one_way=True,
             end=NOW - 1), call(4, "ringing", None))
    streams = (stream(1, 0, 4.0, 4.4), stream(2, 12, 25.0, 3.1), stream(3, -2, 1.5, None))
    analysis = AnalysisResult(
        sources=("live",), packets=1000, first_ts=NOW - 100, last_ts=NOW, partial=False,
        sip_requests={}, sip_responses={}, sip_messages=messages, calls=calls,
        registrations=(RegistrationInfo(
            aor="sip:pbx@cloud", registrar="35.246.178.13:65061", client="192.168.1.10:5061", attempts=2,
            challenges=1, final_codes={"200": 1}, last_code=200, granted_expiry_s=600,
            last_success_ts=NOW - 97, expiry_ts=NOW + 503, request_delay_ms=40.0, registered=True,
            unanswered=0, timeline=(RegistrationState(NOW - 97, 3, "registered", 200),)),),
        keepalives=(KeepaliveInfo("options", "192.168.1.10", "35.246.178.13", 2, 2, 0, 20.0, 30.0, 40.0, NOW,
                                  rtts_ms=(20.0, 40.0)),),
        rtp_streams=streams,
        tls_flows=(TlsFlowInfo("192.168.1.10", 40000, "35.246.178.13", 65061, NOW - 100, NOW, 1, True, "ok",
                               "TLSv1.3", None, (), None, cert_not_after=NOW + 10 * 86400),),
        stun=(), flows=(), errors=(),
    )
    probes = (
        ProbeResult("sip_options_tls", "35.246.178.13:65061", NOW, True, "", 0.2,
                    {"resolve": 0.001, "connect": 0.05, "tls": 0.1, "request": 0.05},
                    details={"cert_not_after": NOW + 40 * 86400}),
        ProbeResult("stun", "34.159.228.55:3478", NOW, False, "no answer", 5.0, {"resolve": 0.0, "request": 5.0}),
    )
    site = load_site(ROOT / "examples" / "site-healthy.yaml")
    token = pyjwt.encode({"iss": "test", "exp": int(NOW + 20 * 86400)}, "k" * 32, algorithm="HS256")
    snap = build_snapshot(Inputs(site=site, analysis=analysis, probes=probes, jwt_text=token,
                                 collectors=(CollectorStatus("capture", True, "", NOW),
                                             CollectorStatus("trace-log", False, "file gone", NOW))), NOW)
    finding = make("media.one-way-audio", [Evidence("RTP only outbound", packets=(5,))],
                   subject="call secret-call-id-3@pbx")
    # Two open findings of one id (two calls): the exposition counts them.
    return dataclasses.replace(snap, system="acme-munich",
                               findings=(OpenFinding(finding, NOW - 10), OpenFinding(finding, NOW - 5)))


def bare_snapshot(state: ItspState = ItspState.NOT_REGISTERED, system: str = "lab") -> Snapshot:
    snap = build_snapshot(Inputs(), NOW)
    return dataclasses.replace(snap, system=system, itsp=ItspStatus(state, None, "no REGISTER seen"))
