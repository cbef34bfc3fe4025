"""Small hand-built analysis results for the diagnosis tests (healthy trunk + one fault at a time).

Addresses follow the seed: the OSBiz at 203.0.113.10 (public) / 192.168.1.10 (capture side),
the connector at 35.246.178.13:65061, STUN 34.159.228.55:3478, a GCP media peer 34.89.130.20.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from core.analysis import (
    AnalysisResult,
    CallInfo,
    FlowInfo,
    RegistrationInfo,
    RegistrationState,
    RtpStreamStats,
    SipMessageInfo,
    StunTransactionInfo,
    TlsFlowInfo,
)
from core.site import Site

OSBIZ = "192.168.1.10"
CONNECTOR = "35.246.178.13"
CPORT = 65061
STUN = "34.159.228.55"
MEDIA_PEER = "34.89.130.20"  # inside europe-west3 (34.89.128.0/17; 34.89.0.0/17 is europe-west2)
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()
NOW = datetime.fromtimestamp(T0 + 600, UTC)


def site_dict(**over: Any) -> dict[str, Any]:
    """A healthy site as YAML would give it (same keys as examples/site-healthy.yaml); ``a__b=v``
    overrides the nested key a.b."""
    s: dict[str, Any] = {
        "system": {"name": "acme", "model": "X5", "version": "V3R3 FR1", "public_ip": "203.0.113.10",
                   "private_ip": OSBIZ},
        "connectivity": {"enabled": True, "simultaneous_calls": 2, "shared_trunk_lines": False,
                         "upstream_kbps": 2000, "numbering_schema": "international",
                         "route_location_number": "+49 89 7007"},
        "route": {"trusted_external_users": True},
        "endpoints": {
            "connector": {"host": CONNECTOR, "port": CPORT},
            "stun": {"host": STUN, "port": 3478},
            "rest": {"host": "34.117.105.255", "port": 443},
            "media_ports": {"first": 10000, "last": 49999},
        },
        "tenant": {"flavour": "openscape", "jwt": None},
        "users": [
            {"callno": "100", "did": "100", "station_type": "trusted-external-user",
             "licenses": ["ip-user", "unify-phone"], "call_number": "+49897007100"},
            {"callno": "101", "did": "101", "station_type": "trusted-external-user",
             "licenses": ["ip-user", "unify-phone"], "call_number": "+49897007101"},
        ],
        "licenses": {"ip_user_mobility": {"total": 10}, "unify_phone": {"total": 10},
                     "software_support_until": "2027-12-31"},
    }
    for dotted, value in over.items():
        node = s
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return s


def site(**over: Any) -> Site:
    """The validated ``core.site.Site`` of ``site_dict``: every rule of ``core.diagnosis`` reads it."""
    return Site.model_validate(site_dict(**over))


def reg_ok(client: str = f"{OSBIZ}:50000", start: float = T0, refreshes: int = 3, granted: int = 300,
           frame0: int = 10) -> RegistrationInfo:
    """REGISTER → 401 → REGISTER → 200, refreshed every granted/2 seconds."""
    tl = [RegistrationState(start, frame0, "challenged", 401)]
    ts = [start + 0.05 + i * granted / 2 for i in range(refreshes)]
    tl += [RegistrationState(t, frame0 + 2 + 2 * i, "registered", 200) for i, t in enumerate(ts)]
    return RegistrationInfo(
        aor="sip:osbiz@phoneapp.unify.com", registrar=f"{CONNECTOR}:{CPORT}", client=client,
        attempts=refreshes + 1, challenges=1, final_codes={"401": 1, "200": refreshes}, last_code=200,
        granted_expiry_s=granted, last_success_ts=ts[-1], expiry_ts=ts[-1] + granted, request_delay_ms=40.0,
        registered=True, unanswered=0, timeline=tuple(tl), frames=tuple(e.frame for e in tl),
    )


def reg_failing(codes: list[int | None], start: float = T0, frame0: int = 10) -> RegistrationInfo:
    """A registration whose attempts end with ``codes`` (None = unanswered)."""
    tl = []
    for i, code in enumerate(codes):
        if code is None:
            tl.append(RegistrationState(start + 30 * i, frame0 + i, "trying", None))
        else:
            state = "challenged" if code in (401, 407) else "failed"
            tl.append(RegistrationState(start + 30 * i, frame0 + i, state, code))
    finals: dict[str, int] = {}
    for c in codes:
        if c is not None:
            finals[str(c)] = finals.get(str(c), 0) + 1
    answered = [c for c in codes if c is not None]
    return RegistrationInfo(
        aor="sip:osbiz@phoneapp.unify.com", registrar=f"{CONNECTOR}:{CPORT}", client=f"{OSBIZ}:50000",
        attempts=len(codes), challenges=sum(1 for c in codes if c in (401, 407)), final_codes=finals,
        last_code=answered[-1] if answered else None, granted_expiry_s=None, last_success_ts=None,
        expiry_ts=None, request_delay_ms=None, registered=False, unanswered=codes.count(None),
        timeline=tuple(tl), frames=tuple(e.frame for e in tl),
    )


def tls_ok(client_port: int = 50000, frame: int = 1) -> TlsFlowInfo:
    return TlsFlowInfo(OSBIZ, client_port, CONNECTOR, CPORT, T0 - 1, T0 + 590, frame, True, "ok", "TLSv1.3",
                       "phoneapp.unify.com", (), None, decrypted=True, bytes_client=9000, bytes_server=12000)


def stream(src: str, sport: int, dst: str, dport: int, *, call_id: str | None = "call-1", ssrc: int = 0x1111,
           packets: int = 500, loss_pct: float = 0.0, jitter: float = 0.5, mos: float | None = 4.4,
           first: float = T0 + 100, frame: int = 200) -> RtpStreamStats:
    expected = packets + round(packets * loss_pct / 100)
    return RtpStreamStats(
        src, sport, dst, dport, ssrc, 8, "PCMA", 8000, packets, expected, expected - packets, loss_pct, 0, 0,
        19.0, 20.0, 21.0, jitter, jitter * 2, mos, first, first + packets * 0.02, frame, frame + 2 * packets,
        call_id=call_id,
    )


def call(call_id: str = "call-1", *, answered: bool = True, code: int = 200, reason: str = "OK",
         start: float = T0 + 99, duration: float = 10.0, streams: tuple[int, ...] = (0, 1),
         caller: str = "+49897007100", callee: str = "+4915112345678", reason_header: str | None = None,
         q850: int | None = None, frame: int = 150) -> CallInfo:
    return CallInfo(
        call_id=call_id, from_uri=f"sip:{caller}@pbx", to_uri=f"sip:{callee}@connector", caller=caller,
        callee=callee, src=OSBIZ, dst=CONNECTOR, start_ts=start, first_frame=frame,
        final_code=code, final_reason=reason, answered=answered, setup_ms=800.0 if answered else None,
        pdd_ms=200.0, answer_ts=start + 1 if answered else None, end_ts=start + 1 + duration if answered else start + 0.3,
        duration_s=duration if answered else None, cancelled=False, hangup_by="caller" if answered else None,
        reason_header=reason_header, q850_cause=q850, retransmissions=0,
        state="answered" if answered else "failed", messages=6 if answered else 3,
        frames=(frame, frame + 1, frame + 2), streams=streams if answered else (),
    )


def sip(frame: int, ts: float, src: str, sport: int, method: str | None, status: int | None = None,
        call_id: str = "reg-1", cseq_method: str = "REGISTER") -> SipMessageInfo:
    return SipMessageInfo(frame, ts, src, sport, CONNECTOR, CPORT, "tls", method, status, "",
                          call_id, frame, cseq_method)


def analysis(**over: Any) -> AnalysisResult:
    """A healthy trunk: registered, STUN answered, one answered call with RTP both ways."""
    base = AnalysisResult(
        sources=("test.pcapng",), packets=2000, first_ts=T0 - 1, last_ts=T0 + 599, partial=False,
        sip_requests={"REGISTER": 4, "INVITE": 1}, sip_responses={"200": 4, "401": 1},
        sip_messages=(sip(10, T0, OSBIZ, 50000, "REGISTER"),),
        calls=(call(),),
        registrations=(reg_ok(),),
        keepalives=(),
        rtp_streams=(stream(OSBIZ, 20000, MEDIA_PEER, 30000, ssrc=0x1111),
                     stream(MEDIA_PEER, 30000, OSBIZ, 20000, ssrc=0x2222, frame=201)),
        tls_flows=(tls_ok(),),
        stun=(StunTransactionInfo(OSBIZ, 20000, STUN, 3478, "udp", "aa" * 12, "Binding", 5, 6, 20.0,
                                  "success", "203.0.113.10:20000", None),),
        flows=(FlowInfo("tcp", OSBIZ, CONNECTOR, CPORT, 300, 30000, T0 - 1, T0 + 590, syn=1, syn_ack=1,
                        first_frame=1),),
        errors=(),
    )
    return dataclasses.replace(base, **over)
