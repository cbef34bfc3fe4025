"""``upscope diagnose`` / ``firewall`` / ``trace-profiles``: exit codes, JSON shape, one-line errors,
no secrets; captures crafted with scapy and run through the real analysis pipeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap
from typer.testing import CliRunner

from core.findings import CATALOGUE
from core.secrets import fingerprint
from core.trace_profiles import TRACE_SETS
from dashboard.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HEALTHY = EXAMPLES / "site-healthy.yaml"
CLOUD_JSON = ROOT / "tests" / "data" / "cloud.json"
NOW = "2026-11-26T12:00:00Z"
OSBIZ, CONNECTOR = "192.168.1.10", "35.246.178.13"  # as in examples/site-healthy.yaml
FINDING_KEYS = {"id", "severity", "title", "evidence", "remedy", "trace_profiles"}


@pytest.fixture(autouse=True)
def _no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSCOPE_API_KEY", raising=False)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def one_line_error(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err


# ----------------------------------------------------------------------------- trace-profiles


def test_trace_profiles_for_every_finding_from_the_one_table() -> None:
    code, out, _ = run("trace-profiles", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert {r["id"] for r in doc["findings"]} == set(CATALOGUE)
    for r in doc["findings"]:
        ts = TRACE_SETS[CATALOGUE[r["id"]].trace_family]
        assert r["trace_profiles"] == [p.value for p in ts.profiles]
        assert r["collect"] == list(ts.collect)
    assert set(doc["families"]) == set(TRACE_SETS)


def test_trace_profiles_for_one_finding() -> None:
    code, out, _ = run("trace-profiles", "--finding", "media.one-way-audio", "-f", "json")
    doc = json.loads(out)
    assert code == 0 and [r["id"] for r in doc["findings"]] == ["media.one-way-audio"]
    assert doc["findings"][0]["trace_components"] == [{"name": "PCC", "level": 9}]
    assert list(doc["families"]) == ["media"]
    code, out, _ = run("trace-profiles", "--finding", "calls.trunk-lines-busy")
    assert code == 0 and "FP_API-CTI" in out and "Voice Fax" in out and "SIP_Interconnection" in out


def test_trace_profiles_unknown_finding() -> None:
    code, out, err = run("trace-profiles", "--finding", "no.such-id")
    assert code == 2 and out == ""
    one_line_error(err)
    assert "unknown finding id" in err


# ----------------------------------------------------------------------------- diagnose: site, JWT


def test_diagnose_healthy_site_json_shape() -> None:
    code, out, err = run("diagnose", "--site", str(HEALTHY), "--now", NOW, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"now", "system", "sources", "input_errors", "itsp_status", "findings", "firewall", "jwt"}
    assert doc["now"] == NOW and doc["system"] == "acme-munich" and doc["findings"] == []
    assert doc["itsp_status"]["state"] == "unknown"
    assert doc["firewall"][0]["flow"] == "sip-tls"
    assert all(v["verdict"] == "not-observed" for v in doc["firewall"])


def test_diagnose_broken_site_exit_1_with_finding_shape() -> None:
    code, out, _ = run("diagnose", "--site", str(EXAMPLES / "site-broken-route-flag.yaml"), "--now", NOW, "-f", "json")
    assert code == 1
    findings = json.loads(out)["findings"]
    assert "calls.route-flag-off" in {f["id"] for f in findings}
    for f in findings:
        assert set(f) >= FINDING_KEYS and f["evidence"] and f["remedy"]
    code, out, _ = run("diagnose", "--site", str(EXAMPLES / "site-broken-route-flag.yaml"), "--now", NOW)
    assert code == 1 and "calls.route-flag-off" in out and "ITSP status Unify Phone (Cloud): Unknown" in out


def _token(days: int) -> str:
    exp = datetime(2026, 11, 26, 12, tzinfo=UTC) + timedelta(days=days)
    return pyjwt.encode({"iss": "upscope-test", "sub": "client", "exp": int(exp.timestamp())}, "s" * 32,
                        algorithm="HS256")


def test_diagnose_jwt_file_is_judged_and_never_printed(tmp_path: Path) -> None:
    site = EXAMPLES / "site-broken-jwt-missing.yaml"
    token = _token(-3)
    jwt_file = tmp_path / "jwt.txt"
    jwt_file.write_text(token + "\n")
    for fmt in ("json", "table"):
        code, out, err = run("diagnose", "--site", str(site), "--jwt-file", str(jwt_file), "--now", NOW, "-f", fmt)
        assert code == 1
        assert token not in out + err and token.split(".")[1] not in out + err
    ids = {f["id"] for f in json.loads(run("diagnose", "--site", str(site), "--jwt-file", str(jwt_file), "--now",
                                           NOW, "-f", "json")[1])["findings"]}
    assert "rest-api.jwt-expired" in ids and "rest-api.jwt-missing" not in ids
    assert fingerprint(token) in out
    # Without the file the same site has no JWT at all.
    code, out, _ = run("diagnose", "--site", str(site), "--now", NOW, "-f", "json")
    assert {"rest-api.jwt-missing", "provisioning.jwt-missing"} <= {f["id"] for f in json.loads(out)["findings"]}


# ----------------------------------------------------------------------------- unusable input


@pytest.mark.parametrize("case", ["nothing", "bad-site", "binary-site", "missing-capture", "bad-now", "bad-gcp",
                                  "missing-jwt", "garbage-capture", "bad-https-port"])
def test_diagnose_unusable_input_exit_2(case: str, tmp_path: Path) -> None:
    bad_site = tmp_path / "site.yaml"
    bad_site.write_text("system: [unclosed\n")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    bad_gcp = tmp_path / "cloud.json"
    bad_gcp.write_text('{"prefixes": "no"}')
    garbage = tmp_path / "capture.pcap"
    garbage.write_bytes(b"\x00garbage" * 100)
    args = {
        "nothing": [],
        "bad-site": ["--site", str(bad_site)],
        "binary-site": ["--site", str(binary)],
        "missing-capture": ["--site", str(HEALTHY), "--capture", str(tmp_path / "nope.pcap")],
        "bad-now": ["--site", str(HEALTHY), "--now", "yesterday"],
        "bad-gcp": ["--site", str(HEALTHY), "--gcp-ranges", str(bad_gcp)],
        "missing-jwt": ["--site", str(HEALTHY), "--jwt-file", str(tmp_path / "nope.txt")],
        "garbage-capture": ["--capture", str(garbage)],
        "bad-https-port": ["--site", str(HEALTHY), "--osbiz-https-port", "70000"],
    }[case]
    code, out, err = run("diagnose", *args, "--format", "json")
    assert code == 2, (out, err)
    assert out == ""
    one_line_error(err)
    assert err.startswith("upscope diagnose: ")


# ----------------------------------------------------------------------------- captures


def _syn_pcap(path: Path) -> None:
    """The OSBiz retries SYNs to the connector; nothing comes back (seed §4 rule missing)."""
    pkts = []
    for i in range(4):
        p = Ether() / IP(src=OSBIZ, dst=CONNECTOR) / TCP(sport=50000 + i, dport=65061, flags="S", seq=1000)
        p.time = 1795600000.0 + 3 * i
        pkts.append(p)
    wrpcap(str(path), pkts)


def _rtp(src: str, sport: int, dst: str, dport: int, ssrc: int, n: int, t0: float) -> list:
    out = []
    for i in range(n):
        header = bytes([0x80, 8]) + (1000 + i).to_bytes(2, "big") + (160 * i).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
        p = Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(header + b"\xd5" * 160)
        p.time = t0 + 0.02 * i
        out.append(p)
    return out


def _inbound_443_pcap(path: Path) -> None:
    """Someone on the internet completes a handshake with the OSBiz's TCP 443."""
    t = 1795600000.0
    pkts = [Ether() / IP(src="198.51.100.99", dst=OSBIZ) / TCP(sport=40000, dport=443, flags="S", seq=1),
            Ether() / IP(src=OSBIZ, dst="198.51.100.99") / TCP(sport=443, dport=40000, flags="SA", seq=9, ack=2),
            Ether() / IP(src="198.51.100.99", dst=OSBIZ) / TCP(sport=40000, dport=443, flags="A", seq=2, ack=10)]
    for i, p in enumerate(pkts):
        p.time = t + 0.01 * i
    wrpcap(str(path), pkts)


def test_diagnose_capture_with_unanswered_syns(tmp_path: Path) -> None:
    cap = tmp_path / "blocked.pcap"
    _syn_pcap(cap)
    code, out, err = run("diagnose", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    assert code == 1, err
    doc = json.loads(out)
    assert doc["now"] == "2026-11-25T09:46:49Z"  # judged at the end of the capture (last SYN)
    assert doc["itsp_status"]["state"] == "not-registered"
    assert "TCP SYN unanswered" in doc["itsp_status"]["reason"]
    assert [f["id"] for f in doc["findings"]] == ["itsp.not-registered.firewall"]
    packets = [p for e in doc["findings"][0]["evidence"] for p in e.get("packets", [])]
    assert 1 in packets
    code, out, _ = run("firewall", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    assert code == 1
    sip = json.loads(out)["firewall"][0]
    assert sip["flow"] == "sip-tls" and sip["verdict"] == "blocked" and "4 SYN" in sip["evidence"][0]["text"]


def test_firewall_one_way_rtp_and_gcp_ranges(tmp_path: Path) -> None:
    cap = tmp_path / "rtp.pcap"
    wrpcap(str(cap), _rtp(OSBIZ, 20000, "34.16.0.9", 30000, 0x1234, 80, 1795600000.0))
    code, out, err = run("firewall", "--site", str(HEALTHY), "--capture", str(cap), "--gcp-ranges", str(CLOUD_JSON),
                         "-f", "json")
    assert code == 1, err
    doc = json.loads(out)
    assert doc["gcp_ranges"] == {"scope": "europe-west3", "sync_token": "1732600000000", "prefixes": 4}
    by = {v["flow"]: v for v in doc["firewall"]}
    assert by["rtp-egress"]["verdict"] == "working"
    assert by["rtp-ingress"]["verdict"] == "one-way" and not by["rtp-ingress"]["ok"]
    assert "RTP peers outside the GCP europe-west3 ranges: 34.16.0.9" in by["rtp-ingress"]["notes"]
    code, out, _ = run("firewall", "--site", str(HEALTHY), "--capture", str(cap))
    assert code == 1 and "one-way" in out


def test_inbound_443_answered_is_reported(tmp_path: Path) -> None:
    cap = tmp_path / "443.pcap"
    _inbound_443_pcap(cap)
    code, out, _ = run("diagnose", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    assert code == 1
    assert [f["id"] for f in json.loads(out)["findings"]] == ["security.port-443-open"]
    code, out, _ = run("firewall", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    v = json.loads(out)["firewall"][-1]
    assert code == 1 and v["flow"] == "inbound-443" and v["verdict"] == "working" and not v["ok"]


def test_firewall_without_input() -> None:
    code, out, err = run("firewall")
    assert code == 2 and out == ""
    one_line_error(err)


def test_no_secret_in_any_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A canary API key (env and inline) and JWT never reach stdout or stderr, in any format."""
    canary_key = "sk-canary-9f8e7d6c5b4a"
    token = _token(-1)
    monkeypatch.setenv("UPSCOPE_API_KEY", canary_key)
    inline = tmp_path / "site.yaml"
    inline.write_text(HEALTHY.read_text().replace("api_key: env:UPSCOPE_API_KEY", f"api_key: {canary_key}"))
    jwt_file = tmp_path / "jwt.txt"
    jwt_file.write_text(token)
    cap = tmp_path / "blocked.pcap"
    _syn_pcap(cap)
    for site in (HEALTHY, inline):
        for fmt in ("json", "table"):
            for cmd in (["diagnose", "--jwt-file", str(jwt_file)], ["firewall"]):
                code, out, err = run(*cmd, "--site", str(site), "--capture", str(cap), "-f", fmt)
                assert code == 1
                for secret in (canary_key, token, token.split(".")[1]):
                    assert secret not in out + err
