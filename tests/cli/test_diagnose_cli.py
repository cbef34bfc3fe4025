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
    # The Snapshot's JSON form (docs/snapshot-json.md) without the analysis, as /api/snapshot serves it.
    assert doc["schema"] == "upscope.snapshot/2" and "analysis" not in doc and doc["input_errors"] == 0
    assert {"itsp_status", "other_registrations", "findings", "firewall", "jwt", "licenses", "numbering",
            "media"} <= set(doc)
    assert doc["now"] == datetime.fromisoformat(NOW.replace("Z", "+00:00")).timestamp()
    assert doc["system"] == "acme-munich" and doc["findings"] == []
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
    # The evidence is judged at the end of the capture (last SYN), the site as of now.
    assert datetime.fromtimestamp(doc["evidence_until"], UTC).isoformat().startswith("2026-11-25T09:46:49")
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
    peer = "34.89.130.9"  # europe-west3
    wrpcap(str(cap), _rtp(OSBIZ, 20000, peer, 30000, 0x1234, 150, 1795600000.0))  # 3 s one way
    code, out, err = run("firewall", "--site", str(HEALTHY), "--capture", str(cap), "--gcp-ranges", str(CLOUD_JSON),
                         "-f", "json")
    assert code == 1, err
    # diagnose says the same: the firewall's one-way verdict is the one-way audio finding
    d_code, d_out, _ = run("diagnose", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    assert d_code == 1 and "media.one-way-audio" in {f["id"] for f in json.loads(d_out)["findings"]}
    doc = json.loads(out)
    assert doc["gcp_ranges"] == {"scope": "europe-west3", "sync_token": "1732600000000", "prefixes": 4,
                                 "source": str(CLOUD_JSON), "created": "2026-11-26T10:00:00.000000"}
    by = {v["flow"]: v for v in doc["firewall"]}
    assert by["rtp-egress"]["verdict"] == "working"
    assert by["rtp-ingress"]["verdict"] == "one-way" and not by["rtp-ingress"]["ok"]
    code, out, _ = run("firewall", "--site", str(HEALTHY), "--capture", str(cap))  # the built-in ranges
    assert code == 1 and "one-way" in out


def test_rtp_with_peers_outside_the_cloud(tmp_path: Path) -> None:
    """RTP with a us-central1 address is neither working to the cloud nor a firewall fault; the
    call is still one-way for diagnose (a finding), and firewall says why it is not its business."""
    cap = tmp_path / "rtp.pcap"
    wrpcap(str(cap), _rtp(OSBIZ, 20000, "34.16.0.9", 30000, 0x1234, 150, 1795600000.0))
    code, out, err = run("firewall", "--site", str(HEALTHY), "--capture", str(cap), "--gcp-ranges", str(CLOUD_JSON),
                         "-f", "json")
    assert code == 0, err
    by = {v["flow"]: v for v in json.loads(out)["firewall"]}
    for flow in ("rtp-egress", "rtp-ingress"):
        assert by[flow]["verdict"] == "not-observed" and by[flow]["ok"]
        assert by[flow]["notes"] == [f"not the cloud — outside the GCP europe-west3 ranges ({CLOUD_JSON} of "
                                     "2026-11-26) or the site's connector/STUN: 34.16.0.9"]
    d_code, d_out, _ = run("diagnose", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    assert d_code == 1 and "media.one-way-audio" in {f["id"] for f in json.loads(d_out)["findings"]}


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


def _refused_pcap(path: Path) -> None:
    """Every SYN of the OSBiz to the connector's 65061 is answered by RST/ACK (port closed or
    rejected by a firewall), four connection attempts."""
    pkts = []
    for i in range(4):
        t = 1795600000.0 + 3 * i
        syn = Ether() / IP(src=OSBIZ, dst=CONNECTOR) / TCP(sport=50000 + i, dport=65061, flags="S", seq=1000)
        rst = Ether() / IP(src=CONNECTOR, dst=OSBIZ) / TCP(sport=65061, dport=50000 + i, flags="RA", seq=0, ack=1001)
        syn.time, rst.time = t, t + 0.02
        pkts += [syn, rst]
    wrpcap(str(path), pkts)


def test_connector_refusing_every_syn_is_not_registered_firewall(tmp_path: Path) -> None:
    """Regression: this read "connector reachable but no REGISTER seen" with sip-tls *working*
    ("also seen: connection reset"). A refused port is a blocked one."""
    cap = tmp_path / "refused.pcap"
    _refused_pcap(cap)
    code, out, err = run("diagnose", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    doc = json.loads(out)
    assert code == 1, err
    assert doc["itsp_status"]["state"] == "not-registered"
    assert "refused" in doc["itsp_status"]["reason"]
    assert [f["id"] for f in doc["findings"]] == ["itsp.not-registered.firewall"]
    sip = next(v for v in doc["firewall"] if v["flow"] == "sip-tls")
    assert sip["verdict"] == "blocked" and sip["reason"] == "connection refused (SYN answered by RST)"
    code, out, _ = run("firewall", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    assert code == 1 and json.loads(out)["firewall"][0]["verdict"] == "blocked"


def _443_client_leaves_pcap(path: Path) -> None:
    """The OSBiz's TCP 443 answers the SYN and ACKs a ClientHello; the client leaves (FIN) before
    any ServerHello."""
    t = 1795600000.0
    client, osbiz = ("198.51.100.99", 40000), (OSBIZ, 443)
    hello = bytes.fromhex("160301002f0100002b0303") + bytes(32) + bytes.fromhex("000002130101000000")
    steps = [(client, osbiz, "S", 1, 0, b""), (osbiz, client, "SA", 9, 2, b""), (client, osbiz, "A", 2, 10, b""),
             (client, osbiz, "PA", 2, 10, hello), (osbiz, client, "A", 10, 2 + len(hello), b""),
             (client, osbiz, "FA", 2 + len(hello), 10, b""), (osbiz, client, "A", 10, 3 + len(hello), b"")]
    pkts = []
    for i, ((sa, sp), (da, dp), flags, seq, ack, data) in enumerate(steps):
        p = Ether() / IP(src=sa, dst=da) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack) / Raw(data)
        p.time = t + 0.5 * i
        pkts.append(p)
    wrpcap(str(path), pkts)


def test_an_answered_443_is_open_even_if_the_handshake_never_finished(tmp_path: Path) -> None:
    """Regression: the verdict listed "answered" as evidence yet said blocked/closed, as the failed
    handshake was dated at the connection's last packet and the answer at its first."""
    cap = tmp_path / "443-leave.pcap"
    _443_client_leaves_pcap(cap)
    code, out, err = run("diagnose", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    doc = json.loads(out)
    assert code == 1, err
    assert [f["id"] for f in doc["findings"]] == ["security.port-443-open"]
    v = doc["firewall"][-1]
    assert v["flow"] == "inbound-443" and v["verdict"] == "working" and not v["ok"]
    assert v["reason"] == "answered: port 443 is open"
    code, out, _ = run("firewall", "--site", str(HEALTHY), "--capture", str(cap), "-f", "json")
    assert code == 1 and json.loads(out)["firewall"][-1]["reason"] == "answered: port 443 is open"
