"""Numbers over Python's 4 300-digit ``int()`` limit in SIP and SDP: counted as malformed, the
SIP message itself still analysed (in the analyser, and through ``upscope analyze`` on a trace log
and on a pcap)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from test_sip_analyzer import PBX, SDP_PBX, Feeder, req, resp
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "capture"))
from capture_craft import eth, ipv4_udp, pcap_bytes

from collectors.sip.analyzer import SipAnalyzer
from dashboard.cli import app

HUGE = "9" * 5000
SDP_HUGE_PORT = SDP_PBX.replace(b"m=audio 4000", b"m=audio " + HUGE.encode())


def test_a_bad_sdp_is_a_malformed_sdp_and_the_call_is_still_analysed() -> None:
    a = SipAnalyzer()
    f = Feeder(a)
    f.up(1.0, req("INVITE", 1, body=SDP_HUGE_PORT))
    f.down(1.1, resp(200, "OK", 1, "INVITE"))
    result = a.finish(2.0)
    assert result.sip_requests == {"INVITE": 1} and result.sip_responses == {"200": 1}
    (call,) = result.calls
    assert call.final_code == 200
    assert [(e.kind, e.layer, e.frame) for e in result.errors] == [("malformed", "sdp", 1)]


def test_an_expires_of_any_length_is_capped_at_32_bits() -> None:
    for extra in (f"Expires: {HUGE}\r\n", f"Contact: <sip:100@{PBX}>;expires={HUGE}\r\n"):
        a = SipAnalyzer()
        f = Feeder(a)
        f.up(1.0, req("REGISTER", 1, uri="sip:itsp.example", extra=f"Contact: <sip:100@{PBX}>\r\n"))
        f.down(1.1, resp(200, "OK", 1, "REGISTER", extra=extra))
        (reg,) = a.finish(2.0).registrations
        assert reg.granted_expiry_s == 2**31 - 1 and reg.registered


def _invite() -> bytes:
    return req("INVITE", 1, call_id="huge@10.0.0.1", body=SDP_HUGE_PORT)


def _analyze(path: Path) -> dict[str, object]:
    res = CliRunner().invoke(app, ["analyze", "--no-progress", "-f", "json", str(path)])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert isinstance(doc, dict)
    return doc


def _check(doc: dict[str, object]) -> None:
    assert doc["sip"] == {"requests": {"INVITE": 1}, "responses": {}}
    calls = doc["calls"]
    assert isinstance(calls, list) and [c["call_id"] for c in calls] == ["huge@10.0.0.1"]
    errors = doc["errors"]
    assert isinstance(errors, list)
    assert [(e["kind"], e["layer"]) for e in errors] == [("malformed", "sdp")]
    assert "port invalid" in errors[0]["message"] and HUGE not in errors[0]["message"]


def test_upscope_analyze_of_a_trace_log_with_the_bad_sdp(tmp_path: Path) -> None:
    log = tmp_path / "osbiz-trace.log"
    log.write_bytes(b'(SIP_SA [ldh:10.0.0.1] 2a01 "11/26/2026 12:00:00.250000" SIP message out)\r\n'
                    b"from 10.0.0.1:5060 to 192.0.2.5:5060\r\n" + _invite() + b"<<OUT-END>>\r\n")
    _check(_analyze(log))


def test_upscope_analyze_of_a_pcap_with_the_bad_sdp(tmp_path: Path) -> None:
    cap = tmp_path / "huge.pcap"
    cap.write_bytes(pcap_bytes([(1.0, eth(0x0800, ipv4_udp(PBX, 5060, "192.0.2.5", 5060, _invite())))]))
    _check(_analyze(cap))
