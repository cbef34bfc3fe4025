"""Every page against lab-made fixtures: the lab runs five scenarios (healthy and four faults) on
loopback, its artifacts (capture, OSBiz trace log, site file) go through the real analysis and
diagnosis, and the pages must show what each scenario breaks. The key-log upload is checked
against tshark decrypting the same capture."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from collectors.analyze import analyze_files
from collectors.producer import Inputs
from core.site.loader import load_site
from dashboard import data, sources
from tests.dashboard.conftest import texts

# one worker runs the module: its tests share the labs of one module fixture
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("lab_pages")]

SCENARIOS = ("healthy", "sip-tls-blocked", "one-way-audio", "license-missing", "jwt-expiring")
PAGES = ["overview", "diagnoses", "calls", "media", "registration", "users", "firewall", "traces", "analyze"]


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The scenarios, run side by side for 10 s each (each lab picks free ports)."""
    if shutil.which("dumpcap") is None:
        pytest.skip("dumpcap (tshark package) not installed: the lab cannot capture")
    root = tmp_path_factory.mktemp("labs")
    procs = {}
    for name in SCENARIOS:
        # Side by side, each on loopback addresses of its own: no lab sees another's traffic.
        cmd = [sys.executable, "-c", "from dashboard.cli import main; main()", "lab", "--scenario", name,
               "--duration", "10", "--port", "0", "--calls-per-minute", "30", "--out", str(root / name),
               "--addresses", "auto"]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for name, proc in procs.items():
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"lab {name} did not stop")
        assert proc.returncode == 0, f"lab {name}: {err.decode(errors='replace')[-500:]}"
    return {name: root / name for name in SCENARIOS}


def _snapshot(lab: Path) -> dict:  # type: ignore[type-arg]
    """The lab's artifacts diagnosed just before it stopped (at its end the trunk deregisters)."""
    info = json.loads((lab / "lab.json").read_text())
    stopped = datetime.fromisoformat(info["stopped"]).timestamp()
    result = analyze_files([lab / "lab.pcapng", lab / "osbiz-trace.log"])
    return sources.OfflineSource.from_inputs(
        Inputs(site=load_site(lab / "site.yaml"), analysis=result), now=stopped - 1.0,
        captures=(str(lab / "lab.pcapng"),),
    ).snapshot()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_page_on_every_lab_scenario(render: Callable[..., AppTest], labs: dict[str, Path],
                                          scenario: str) -> None:
    snap = _snapshot(labs[scenario])
    at = {page: render(page, snap) for page in PAGES}
    expected = json.loads((labs[scenario] / "scenario.json").read_text())["expected_findings"]
    ids = {f["id"] for f in snap["findings"]}
    assert set(expected) <= ids, (expected, ids)
    overview = {m.label.split(" ", 1)[1]: m.value for m in at["overview"].metric}
    diagnoses = texts(at["diagnoses"])
    for finding in expected:
        assert finding in diagnoses
    if scenario == "sip-tls-blocked":
        assert overview["ITSP Unify Phone (Cloud)"] == "Not registered"
        assert "itsp.not-registered.firewall" in texts(at["overview"])
        fw = at["firewall"].dataframe[0].value.set_index("flow")
        assert fw.loc["sip-tls", "verdict"] == "blocked"
        return
    assert overview["ITSP Unify Phone (Cloud)"] == "Registered"
    calls = at["calls"].dataframe[0].value
    assert len(calls) >= 2  # 30 calls/min for 10 s
    assert at["calls"].get("plotly_chart"), "the first call's ladder"
    if scenario == "healthy":
        assert overview["Active findings"] == "0 critical"
        assert not at["media"].error
    if scenario == "one-way-audio":
        assert "One-way audio" in at["media"].error[0].value
    if scenario == "jwt-expiring":
        days = int(overview["JWT"].split()[0])
        assert 0 <= days <= 31 and overview["JWT"] == f"{days} days left"
        assert ":orange[" in next(m.label for m in at["overview"].metric if m.label.endswith("JWT"))
    if scenario == "license-missing":
        users = at["users"].dataframe[0].value.set_index("callno")
        assert users.loc["100", "license_state"] == "missing (unify-phone)"
        assert "calls.license-missing" in users.loc["100", "findings"]


def test_key_log_upload_decrypts_like_tshark(labs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    lab = labs["healthy"]
    port = json.loads((lab / "lab.json").read_text())["sip_tls"]
    keys = (lab / "sslkeys.log").resolve()
    oracle = subprocess.run(
        ["tshark", "-n", "-r", str(lab / "lab.pcapng"), "-o", f"tls.keylog_file:{keys}",
         "-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},sip", "-Y", "sip", "-T", "fields",
         "-e", "sip.Call-ID"], capture_output=True, text=True, check=True,
    ).stdout.split()
    monkeypatch.delenv(data.SOURCE_ENV, raising=False)
    at = AppTest.from_string("from dashboard.pages import analyze\nanalyze.render()", default_timeout=120)
    at.run()
    at.file_uploader(key="analyze.capture").set_value(("lab.pcapng", (lab / "lab.pcapng").read_bytes(),
                                                       "application/octet-stream"))
    at.file_uploader(key="analyze.keylog").set_value(("sslkeys.log", keys.read_bytes(), "text/plain"))
    at.number_input(key="analyze.port").set_value(port)
    at.run()
    at.button(key="analyze.go").click().run()
    assert not at.exception
    snap = at.session_state[data.UPLOAD_KEY].snapshot()
    assert len(snap["analysis"]["sip_messages"]) == len(oracle) > 0
    assert f"{len(oracle)} SIP messages" in at.success[0].value

