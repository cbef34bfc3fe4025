"""``upscope diagnose`` on real third-party captures, with tshark as the oracle for frame numbers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashboard.cli import app

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"


def _pcap(name: str) -> Path:
    path = PCAPS / name
    if not path.is_file():
        pytest.skip(f"{path} not found (the shared test captures live next to the repository)")
    return path


def _tshark_register_answers(path: Path, aor_user: str) -> dict[int, int]:
    """frame → status code of the REGISTER responses for one AOR user, as tshark decodes them."""
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed (Debian package; `make test` installs it)")
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", f'sip.CSeq.method == "REGISTER" && sip.Status-Code >= 200 && sip.To contains "{aor_user}"',
         "-T", "fields", "-e", "frame.number", "-e", "sip.Status-Code"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    return {int(f): int(c) for f, c in (line.split("\t") for line in out.splitlines() if line)}


def _diagnose(path: Path, *more: str) -> dict:
    result = CliRunner().invoke(app, ["diagnose", "--capture", str(path), "--format", "json", *more])
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_auth_failure_capture_frames_match_tshark() -> None:
    path = _pcap("sipnab_sip-auth-failure.pcapng")
    # An Asterisk on the LAN: named as the connector, its registration is judged as the trunk's.
    doc = _diagnose(path, "--connector", "172.16.98.101:5060")
    answers = _tshark_register_answers(path, "telephone1")
    assert answers == {2: 401, 4: 403}
    assert doc["itsp_status"]["state"] == "not-registered" and "403" in doc["itsp_status"]["reason"]
    auth = next(f for f in doc["findings"] if f["id"] == "itsp.not-registered.auth")
    frames = sorted(p for e in auth["evidence"] for p in e.get("packets", []))
    assert frames == [2, 4]
    assert {f["id"] for f in doc["findings"]} == {"itsp.not-registered.auth", "rest-api.api-key-invalid"}


def test_mixed_registrations_capture() -> None:
    """Wireshark's aaa.pcap: one AOR ends registered, another's credentials are refused."""
    path = _pcap("sngrep_aaa.pcap")
    doc = _diagnose(path, "--connector", "212.242.33.35:5060")
    assert doc["itsp_status"]["state"] == "registered"
    refused = _tshark_register_answers(path, "voi18063")
    auth = [f for f in doc["findings"] if f["id"] == "itsp.not-registered.auth"]
    assert [f["subject"].split(" ")[0] for f in auth] == ["sip:voi18063@sip.cybercity.dk"]
    frames = [p for e in auth[0]["evidence"] for p in e.get("packets", [])]
    assert frames and all(refused.get(fr) in (401, 403) for fr in frames)
    assert refused[max(frames)] == 401  # the capture's last answer for that AOR refuses the credentials
    # The registered AOR's 401/200 exchanges are normal and not reported.
    assert {f["id"] for f in doc["findings"]} == {"itsp.not-registered.auth"}


@pytest.mark.parametrize(("name", "registrar"), [
    ("sipnab_sip-auth-failure.pcapng", "172.16.98.101:5060"),
    ("sngrep_aaa.pcap", "212.242.33.35:5060"),
    ("sipnab_SIP_CALL_RTP_G711.pcap", "200.57.7.195:5060"),
])
def test_a_lan_or_other_registrar_is_not_the_unify_phone_trunk(name: str, registrar: str) -> None:
    """Without a site or --connector, only a registrar on the connector's port 65061 is the trunk:
    these registrations are listed as others and raise no trunk finding."""
    doc = _diagnose(_pcap(name))
    status = doc["itsp_status"]
    assert status["state"] == "unknown"
    assert status["reason"].startswith("no registration to a Unify Phone connector seen; ")
    assert doc["other_registrations"] and {o["registrar"] for o in doc["other_registrations"]} == {registrar}
    assert not {f["id"] for f in doc["findings"]} & {"itsp.not-registered.auth", "itsp.not-registered.firewall",
                                                     "rest-api.api-key-invalid"}
