"""``analyze``, ``diagnose`` and ``firewall`` agree on every real capture of ``../shared/pcaps``.

One judgement per question (``core.one_way``, the connector rule, the cloud ranges): no call is
one-way in one face and not in another, ``firewall`` never exits 1 without a finding of
``diagnose`` and a stated reason, a capture without a Unify Phone connector never reads
"Registered", and RTP with a private or non-cloud peer is never "working to the cloud".
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.gcp_ranges import default_gcp_ranges
from dashboard.cli import app

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"
CAPTURES = sorted(p.name for p in PCAPS.glob("*.pcap*")) if PCAPS.is_dir() else []
_RTP_EVIDENCE = re.compile(r"^RTP (\S+):\d+ → (\S+):\d+ ")


def _run(*args: str) -> tuple[int, dict | None]:
    res = CliRunner().invoke(app, [*args, "--format", "json"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, (json.loads(res.stdout) if res.stdout.strip() else None)


def test_the_shared_captures_are_there() -> None:
    if not CAPTURES:
        pytest.skip(f"no shared captures in {PCAPS} (the corpus lives next to the repository)")
    assert len(CAPTURES) >= 70


@pytest.mark.parametrize("name", CAPTURES or ["(none)"])
def test_analyze_diagnose_and_firewall_agree(name: str) -> None:
    if not CAPTURES:
        pytest.skip(f"no shared captures in {PCAPS}")
    path = str(PCAPS / name)
    a_code, analysis = _run("analyze", "--no-progress", path)
    d_code, diag = _run("diagnose", "--capture", path)
    f_code, fw = _run("firewall", "--capture", path)
    if a_code == 2:  # nothing usable: every face says so
        assert (d_code, f_code) == (2, 2) and diag is None and fw is None
        return
    assert analysis is not None and diag is not None and fw is not None
    findings = diag["findings"]

    # one-way audio: the same calls in the analysis and the diagnosis
    flagged = {c["call_id"] for c in analysis["calls"] if c["one_way_audio"]}
    reported = {f["subject"] for f in findings if f["id"] == "media.one-way-audio"} - {"streams without call"}
    assert flagged == reported
    assert analysis["summary"]["calls_one_way_audio"] == len(flagged)

    # firewall: exit 1 only with a stated reason per flow and a finding of diagnose behind it
    bad = [v for v in fw["firewall"] if not v["ok"]]
    assert (f_code == 1) == bool(bad)
    assert all(v["reason"] for v in bad)
    if bad:
        assert findings, [v["reason"] for v in bad]
    by_flow = {v["flow"]: v for v in fw["firewall"]}
    if by_flow["rtp-ingress"]["verdict"] == "one-way":
        assert any(f["id"] == "media.one-way-audio" for f in findings)
    assert [v["verdict"] for v in fw["firewall"]] == [v["verdict"] for v in diag["firewall"]]

    # whose trunk: without a site or --connector only a registrar on 65061 is the connector
    if diag["itsp_status"]["state"] == "registered":
        assert any(r["registrar"].endswith(":65061") for r in analysis["registrations"])
    assert len(diag["other_registrations"]) == sum(
        1 for r in analysis["registrations"] if not r["registrar"].endswith(":65061"))

    # the cloud: RTP "working" only with peers in the GCP ranges, never a private address
    gcp = default_gcp_ranges()
    for flow in ("rtp-egress", "rtp-ingress"):
        v = by_flow[flow]
        for e in v["evidence"] if v["verdict"] == "working" else ():
            m = _RTP_EVIDENCE.match(e["text"])
            assert m is not None, e["text"]
            peers = [x for x in m.groups() if gcp.contains(x)]
            assert peers and all(ipaddress.ip_address(x).is_global for x in peers)

    # diagnose's exit code follows its findings
    assert d_code == (1 if findings or analysis["partial"] else 0)
