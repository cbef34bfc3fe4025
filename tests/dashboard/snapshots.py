"""Snapshots for the dashboard tests, built from the core contracts (so a contract change breaks
here first): a healthy site, a firewall-blocked trunk, one-way audio, license/numbering faults.

They mirror what the lab scenarios of the same names produce; addresses are the lab's loopback
ones (OSBiz side 127.0.0.2, connector 127.0.0.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors.producer import Inputs
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
from core.site.loader import load_site_text
from dashboard.sources import OfflineSource

NOW = 1_790_000_000.0  # 2026-09-21
OSBIZ, CONNECTOR = "127.0.0.2", "127.0.0.3"
CALL_ID = "a84b4c76e66710@osbiz"

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site-healthy.yaml"


def site_text(**changes: str) -> str:
    """The example site moved onto the lab's loopback addresses, with textual ``changes``."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in {
        "public_ip: 203.0.113.10": f"public_ip: {OSBIZ}", "private_ip: 192.168.1.10": f"private_ip: {OSBIZ}",
        "host: 35.246.178.13": f"host: {CONNECTOR}", "host: 34.159.228.55": "host: 127.0.0.4",
        "host: 34.117.105.255": "host: 127.0.0.5", **changes,
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


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


def _snapshot(result: AnalysisResult, **changes: str) -> dict[str, Any]:
    site = load_site_text(site_text(**changes), "site.yaml")
    return OfflineSource.from_inputs(Inputs(site=site, analysis=result), now=NOW, captures=("lab.pcapng",)).snapshot()


def healthy() -> dict[str, Any]:
    return _snapshot(_analysis(registered=True, two_way=True))


def sip_tls_blocked() -> dict[str, Any]:
    return _snapshot(_analysis(registered=False, two_way=False))


def one_way_audio() -> dict[str, Any]:
    return _snapshot(_analysis(registered=True, two_way=False))


def license_and_numbering() -> dict[str, Any]:
    """User 101 without Unify Phone license, Software Support ended, user 100's configured number
    not the derived one."""
    return _snapshot(
        _analysis(registered=True, two_way=True),
        **{"licenses: [ip-user, unify-phone, voicemail]": "licenses: [ip-user, voicemail]",
           "software_support_until: 2027-12-31": "software_support_until: 2026-09-01",
           'call_number: "+49897007100"': 'call_number: "+49897007199"'},
    )


SCENARIOS = {"healthy": healthy, "sip-tls-blocked": sip_tls_blocked, "one-way-audio": one_way_audio,
             "license-numbering": license_and_numbering}
