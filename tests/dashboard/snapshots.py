"""Snapshots for the dashboard tests, built from the core contracts (so a contract change breaks
here first): a healthy site, a firewall-blocked trunk, one-way audio, license/numbering faults.

They mirror what the lab scenarios of the same names produce; addresses are the lab's loopback
ones (OSBiz side 127.0.0.2, connector 127.0.0.3)."""

from __future__ import annotations

from typing import Any

from core.analysis import (
    AnalysisResult,
    CallInfo,
    FlowInfo,
    KeepaliveInfo,
    RegistrationInfo,
    RegistrationState,
    RtpStreamStats,
    SipMessageInfo,
    StreamInterval,
    TlsFlowInfo,
)
from core.findings import Evidence, make
from core.snapshot import ItspState, ItspStatus, Snapshot, snapshot_to_dict

NOW = 1_790_000_000.0  # 2026-09-21
OSBIZ, CONNECTOR = "127.0.0.2", "127.0.0.3"
CALL_ID = "a84b4c76e66710@osbiz"

SITE: dict[str, Any] = {
    "system": {"name": "lab-healthy", "model": "X5", "public_ip": OSBIZ, "private_ip": OSBIZ},
    "connectivity": {"enabled": True, "api_key": "sha256:3fa9c1", "simultaneous_calls": 8,
                     "numbering_schema": "international", "route_location_number": "+49 89 7007"},
    "endpoints": {"connector": {"host": CONNECTOR, "port": 65061}, "stun": {"host": "127.0.0.4", "port": 3478},
                  "rest": {"host": "127.0.0.5", "port": 443}, "media_ports": {"first": 10000, "last": 49999}},
    "tenant": {"flavour": "openscape", "jwt": None},
    "users": [
        {"callno": "100", "did": "100", "first_name": "Anna", "last_name": "Berger",
         "station_type": "trusted-external-user", "licenses": ["ip-user", "unify-phone"],
         "derived_call_number": "+49897007100"},
        {"callno": "101", "did": "101", "first_name": "Ben", "last_name": "Kraus",
         "station_type": "trusted-external-user", "licenses": ["ip-user", "unify-phone", "voicemail"],
         "derived_call_number": "+49897007101"},
    ],
    "teams": [{"name": "Clara desk", "callno": "300",
               "members": [{"callno": "102", "device": "unify-phone"}, {"callno": "200", "device": "ip-phone"}]}],
    "licenses": {"ip_user_mobility": {"total": 10}, "unify_phone": {"total": 10}, "voicemail": {"total": 5},
                 "software_support_until": "2027-12-31"},
}


def _msg(frame: int, dt: float, src: str, dst: str, method: str | None, status: int | None, reason: str,
         cseq: int, cseq_method: str, call_id: str = CALL_ID) -> SipMessageInfo:
    sport, dport = (5061, 65061) if src == OSBIZ else (65061, 5061)
    first = f"{method} sip:+49897007100@{dst} SIP/2.0" if method else f"SIP/2.0 {status} {reason}"
    return SipMessageInfo(frame, NOW - 600 + dt, src, sport, dst, dport, "tls", method, status, reason,
                          call_id, cseq, cseq_method, summary=first)


def _stream(src: str, dst: str, ssrc: int, packets: int, lost: int, mos: float, first: int) -> RtpStreamStats:
    sport, dport = (20000, 30000) if src == OSBIZ else (30000, 20000)
    ivs = tuple(StreamInterval(NOW - 590 + 10 * k, 500, 500 + (lost if k == 1 else 0), lost if k == 1 else 0,
                               1.2 + k, 3.0 + k, mos if k == 1 else 4.41) for k in range(3))
    return RtpStreamStats(src, sport, dst, dport, ssrc, 8, "PCMA", 8000, packets, packets + lost, lost,
                          100.0 * lost / (packets + lost), 0, 0, 18.0, 20.0, 40.0, 1.5, 5.0, mos,
                          NOW - 590, NOW - 560, first, first + 1500, CALL_ID, "sdp", 0, ivs)


def _analysis(*, registered: bool, two_way: bool) -> AnalysisResult:
    msgs = [
        _msg(1, 0.0, OSBIZ, CONNECTOR, "REGISTER", None, "", 1, "REGISTER", "reg-1"),
        _msg(2, 0.05, CONNECTOR, OSBIZ, None, 401, "Unauthorized", 1, "REGISTER", "reg-1"),
        _msg(3, 0.1, OSBIZ, CONNECTOR, "REGISTER", None, "", 2, "REGISTER", "reg-1"),
        _msg(4, 0.15, CONNECTOR, OSBIZ, None, 200, "OK", 2, "REGISTER", "reg-1"),
        _msg(5, 5.0, OSBIZ, CONNECTOR, "INVITE", None, "", 1, "INVITE"),
        _msg(6, 5.05, CONNECTOR, OSBIZ, None, 100, "Trying", 1, "INVITE"),
        _msg(7, 6.0, CONNECTOR, OSBIZ, None, 180, "Ringing", 1, "INVITE"),
        _msg(8, 9.0, CONNECTOR, OSBIZ, None, 200, "OK", 1, "INVITE"),
        _msg(9, 9.05, OSBIZ, CONNECTOR, "ACK", None, "", 1, "ACK"),
        _msg(3000, 40.0, OSBIZ, CONNECTOR, "BYE", None, "", 2, "BYE"),
        _msg(3001, 40.05, CONNECTOR, OSBIZ, None, 200, "OK", 2, "BYE"),
        _msg(3100, 60.0, OSBIZ, CONNECTOR, "OPTIONS", None, "", 3, "OPTIONS", "ka-1"),
        _msg(3101, 60.03, CONNECTOR, OSBIZ, None, 200, "OK", 3, "OPTIONS", "ka-1"),
    ]
    streams = [_stream(OSBIZ, CONNECTOR, 0x1234ABCD, 1500, 0, 4.41, 10)]
    if two_way:
        streams.append(_stream(CONNECTOR, OSBIZ, 0x0BADCAFE, 1488, 12, 3.9, 11))
    call = CallInfo(CALL_ID, "sip:+49897007100@lab", "sip:+4930123456@lab", "+49897007100", "+4930123456",
                    OSBIZ, CONNECTOR, NOW - 595, 5, 200, "OK", True, 4000.0, 1000.0, NOW - 591, NOW - 560,
                    31.0, False, "caller", None, None, 0, "answered", 7, (5, 6, 7, 8, 9, 3000, 3001),
                    tuple(range(len(streams))), one_way_audio=not two_way)
    failed = CallInfo("b77-failed@osbiz", "sip:+49897007101@lab", "sip:+4940999@lab", "+49897007101",
                      "+4940999", OSBIZ, CONNECTOR, NOW - 300, 4000, 503, "Service Unavailable", False, None,
                      50.0, None, NOW - 299, None, False, None, None, 34, 0, "failed", 3)
    reg = RegistrationInfo(
        "sip:osbiz@lab", f"{CONNECTOR}:65061", f"{OSBIZ}:5061", 2, 1, {"401": 1, "200": 1}, 200, 3600,
        NOW - 600 + 0.15, NOW + 3000, 150.0, True, 0,
        (RegistrationState(NOW - 600, 1, "trying", None), RegistrationState(NOW - 600 + 0.05, 2, "challenged", 401),
         RegistrationState(NOW - 600 + 0.15, 4, "registered", 200)), (1, 2, 3, 4),
    )
    tls = TlsFlowInfo(OSBIZ, 5061, CONNECTOR, 65061, NOW - 600, NOW, 1, True, "ok", "TLSv1.3", "lab-connector",
                      (), None, decrypted=True)
    flows = [FlowInfo("tcp", OSBIZ, CONNECTOR, 65061, 120, 40000, NOW - 600, NOW, 1, 1, 0, 0, 1)]
    if not registered:
        msgs = [_msg(1, 0.0, OSBIZ, CONNECTOR, "REGISTER", None, "", 1, "REGISTER", "reg-1")]
        reg = RegistrationInfo("sip:osbiz@lab", f"{CONNECTOR}:65061", f"{OSBIZ}:5061", 0, 0, {}, None, None, None,
                               None, None, False, 3)
        tls = TlsFlowInfo(OSBIZ, 5061, CONNECTOR, 65061, NOW - 600, NOW, 1, False, "not-seen", None, None, (), None)
        flows = [FlowInfo("tcp", OSBIZ, CONNECTOR, 65061, 7, 420, NOW - 600, NOW, 7, 0, 0, 0, 1)]
        streams, call, failed = [], None, None  # type: ignore[assignment]
    return AnalysisResult(
        ("lab.pcapng",), 3200, NOW - 600, NOW, False, {"REGISTER": 2, "INVITE": 1}, {"200": 3},
        tuple(msgs), tuple(c for c in (call, failed) if c is not None), (reg,),
        (KeepaliveInfo("options", f"{OSBIZ}:5061", f"{CONNECTOR}:65061", 3, 3, 0, 25.0, 30.0, 35.0, NOW - 540,
                       (25.0, 30.0, 35.0)),) if registered else (),
        tuple(streams), (tls,), (), tuple(flows), (),
    )


def healthy() -> dict[str, Any]:
    itsp = ItspStatus(ItspState.REGISTERED, NOW - 600, "registered at 127.0.0.3:65061", f"{CONNECTOR}:65061")
    return snapshot_to_dict(Snapshot(NOW, "lab-healthy", itsp, (), _analysis(registered=True, two_way=True), SITE))


def sip_tls_blocked() -> dict[str, Any]:
    itsp = ItspStatus(ItspState.NOT_REGISTERED, NOW - 590, "TCP SYN to 127.0.0.3:65061 unanswered")
    finding = make("itsp.not-registered.firewall",
                   [Evidence("7 TCP SYN to 127.0.0.3:65061 unanswered", packets=(1, 2, 3), timestamp=NOW - 600)])
    return snapshot_to_dict(Snapshot(NOW, "lab-blocked", itsp, (finding,), _analysis(registered=False,
                                                                                       two_way=False), SITE))


def one_way_audio() -> dict[str, Any]:
    itsp = ItspStatus(ItspState.REGISTERED, NOW - 600, "registered", f"{CONNECTOR}:65061")
    finding = make("media.one-way-audio", [Evidence("RTP only 127.0.0.2 → 127.0.0.3", call_id=CALL_ID)],
                   subject=CALL_ID)
    return snapshot_to_dict(Snapshot(NOW, "lab-oneway", itsp, (finding,), _analysis(registered=True,
                                                                                      two_way=False), SITE))


def license_and_numbering() -> dict[str, Any]:
    site = {**SITE, "users": [*SITE["users"], {
        "callno": "102", "did": "1234567890123", "first_name": "Clara", "last_name": "Dietz",
        "station_type": "trusted-external-user", "licenses": ["ip-user"],
        "derived_call_number": "+498970071234567890123"}]}
    site["licenses"] = {**SITE["licenses"], "software_support_until": "2026-09-01"}
    itsp = ItspStatus(ItspState.REGISTERED, NOW - 600, "registered", f"{CONNECTOR}:65061")
    findings = (
        make("calls.software-support-expired", [Evidence("Software Support ended 2026-09-01",
                                                         config_path="licenses.software_support_until")]),
        make("calls.license-missing", [Evidence("user 102 has no unify-phone license",
                                                config_path="users[2].licenses")], subject="102"),
        make("numbering.too-long", [Evidence("+498970071234567890123 has 21 digits",
                                             config_path="users[2].did")], subject="102"),
        make("team.invalid", [Evidence("team Clara desk", config_path="teams[0]")], subject="Clara desk"),
    )
    return snapshot_to_dict(Snapshot(NOW, "lab-licenses", itsp, findings, _analysis(registered=True,
                                                                                      two_way=True), site))


SCENARIOS = {"healthy": healthy, "sip-tls-blocked": sip_tls_blocked, "one-way-audio": one_way_audio,
             "license-numbering": license_and_numbering}
