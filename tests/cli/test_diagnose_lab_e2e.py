"""End to end: every lab scenario, then ``upscope diagnose`` on its artifacts reports exactly the
finding ids the scenario names (``healthy``: none).

The lab runs on 127.0.0.x with real SIP/TLS, STUN, REST and RTP (``core.lab``); the diagnosis reads
only what a real site gives: site.yaml, lab.pcapng, sslkeys.log, osbiz-trace.log and jwt.txt.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.lab import LabConfig, run_lab
from core.lab.scenarios import SCENARIOS
from dashboard.cli import app

# Short refresh and keepalive intervals and frequent short calls, so that a few seconds of lab hold
# registrations, refreshes (a clone's REGISTERs interleave), keepalives, calls and a busy burst.
FAST = {"sip_port": 0, "calls_per_minute": 90.0, "call_seconds": 2.0, "keepalive": 2.0, "register_expires": 6,
        "addresses": "auto"}
DURATION_S = 6.0


def _need_capture_tool() -> None:
    if not (shutil.which("dumpcap") or shutil.which("tcpdump")):
        pytest.skip("neither dumpcap (tshark) nor tcpdump is installed; `make test` installs them")


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_diagnose_reports_exactly_the_scenario_findings(tmp_path: Path, name: str) -> None:
    _need_capture_tool()
    # As root the PBX's "443" is the real port on the lab's PBX address; otherwise the lab picks one and
    # diagnose is told which port stands for it.
    https = {"https_port": 443} if name == "port-443-open" and os.geteuid() == 0 else {}
    summary = run_lab(LabConfig(scenario=name, out=tmp_path / "out", duration=DURATION_S, **FAST, **https))
    out = summary.out
    args = ["diagnose", "--site", str(out / "site.yaml"), "--capture", str(out / "lab.pcapng"),
            "--keylog", str(out / "sslkeys.log"), "--trace-log", str(out / "osbiz-trace.log"), "--format", "json"]
    if (out / "jwt.txt").exists():
        args += ["--jwt-file", str(out / "jwt.txt")]
    port_443 = json.loads((out / "lab.json").read_text())["pbx"]["https_443"]
    if port_443 and port_443 != 443:
        args += ["--osbiz-https-port", str(port_443)]

    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    expected = json.loads((out / "scenario.json").read_text())["expected_findings"]
    got = sorted({f["id"] for f in doc["findings"]})
    detail = [(f["id"], f["subject"], [e["text"] for e in f["evidence"]][:3]) for f in doc["findings"]]
    assert got == sorted(expected), detail
    assert result.exit_code == (1 if expected else 0)
    for f in doc["findings"]:
        assert f["evidence"] and f["remedy"] and f["trace_profiles"]

    # The statuses behind the findings, checked against what the scenario did on the wire.
    itsp = doc["itsp_status"]
    by_flow = {v["flow"]: v for v in doc["firewall"]}
    if name == "sip-tls-blocked":
        assert itsp["state"] == "not-registered" and "SYN" in itsp["reason"]
        assert by_flow["sip-tls"]["verdict"] == "blocked"
    elif name == "register-forbidden":
        assert itsp["state"] == "not-registered" and "403" in itsp["reason"]
        assert by_flow["sip-tls"]["verdict"] == "working"
    elif name == "one-way-audio":
        assert by_flow["rtp-ingress"]["verdict"] == "one-way"
    elif name == "port-443-open":
        assert not by_flow["inbound-443"]["ok"]
    else:
        assert by_flow["sip-tls"]["verdict"] == "working"
        assert itsp["last_success_ts"] is not None  # registered during the run (deregistered at its end)
    if name not in ("sip-tls-blocked", "one-way-audio", "port-443-open"):
        assert all(v["ok"] for v in doc["firewall"]), [(v["flow"], v["verdict"], v["reason"]) for v in doc["firewall"]]


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("fault_until", [None, 5.0])
def test_fault_window_opens_and_closes_the_finding(tmp_path: Path, fault_until: float | None) -> None:
    """SIP/TLS blocked from 3 s on: after the registration expires the finding is there even though
    the trunk worked before; blocked from 2 s to 5 s only: the trunk re-registers and the finding
    is gone (a call caught in the fault window may still show its media trouble)."""
    _need_capture_tool()
    fault_from = 3.0 if fault_until is None else 2.0
    summary = run_lab(LabConfig(scenario="sip-tls-blocked", out=tmp_path / "out", duration=10.0, **FAST,
                                fault_from=fault_from, fault_until=fault_until))
    out = summary.out
    result = CliRunner().invoke(app, ["diagnose", "--site", str(out / "site.yaml"), "--capture", str(out / "lab.pcapng"),
                                      "--keylog", str(out / "sslkeys.log"), "--trace-log", str(out / "osbiz-trace.log"),
                                      "--format", "json"])
    doc = json.loads(result.stdout)
    ids = {f["id"] for f in doc["findings"]}
    assert ("itsp.not-registered.firewall" in ids) == (fault_until is None), json.dumps([doc["findings"], doc["itsp_status"], doc["firewall"][0]])
    assert ids <= {"itsp.not-registered.firewall", "media.one-way-audio"}, ids
    assert doc["itsp_status"]["last_success_ts"] is not None  # it was registered before the fault
