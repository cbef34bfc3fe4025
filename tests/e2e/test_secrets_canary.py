"""Canary secrets: an API key, a JWT and a SIP password planted in a site never come out again.

The lab makes real evidence (Unify Video flavour, so a JWT is in play); we add a SIP password to
its site file, then run every command a partner would — check-site, analyze (table, JSON, HTML),
diagnose, firewall, bundle, and the service with its log, /metrics, /api/snapshot and /api/bundle —
and search everything they print or write for the three values (and their base64 forms).
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

# one worker runs the module: its tests share one expensive module fixture
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("secrets_canary")]

CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
SIP_PASSWORD = "CANARY-sip-password-9d2f7c"


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run([*CLI, *args], capture_output=True, timeout=180, cwd=cwd)
    assert proc.returncode in (0, 1), f"{args[0]} exit {proc.returncode}: {proc.stderr.decode()[-500:]}"
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")


def _forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]


def _assert_clean(name: str, blob: bytes, secrets: dict[str, str]) -> None:
    for label, secret in secrets.items():
        for form in _forms(secret):
            assert form not in blob, f"{label} leaked into {name}"


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("canary")
    lab = root / "lab"
    subprocess.run([*CLI, "lab", "--scenario", "jwt-expiring", "--out", str(lab), "--port", "0", "--duration", "8",
                    "--addresses", "auto", "--keepalive", "2", "--calls-per-minute", "30", "--call-seconds", "2"],
                   check=True, timeout=60, capture_output=True)
    site = yaml.safe_load((lab / "site.yaml").read_text())
    site["sip_credentials"] = {"username": "osbiz", "password": SIP_PASSWORD}
    (lab / "site.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    secrets = {"API key": site["connectivity"]["api_key"], "JWT": (lab / "jwt.txt").read_text().strip(),
               "SIP password": SIP_PASSWORD}
    assert all(len(v) >= 16 for v in secrets.values())
    return lab, secrets


def test_cli_outputs_and_files_hold_no_secret(evidence: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    lab, secrets = evidence
    site, cap, trace, keys, jwt = (str(lab / n) for n in
                                   ("site.yaml", "lab.pcapng", "osbiz-trace.log", "sslkeys.log", "jwt.txt"))
    outputs = {
        "check-site table": _run("check-site", site, cwd=tmp_path),
        "check-site json": _run("check-site", site, "--format", "json", cwd=tmp_path),
        "analyze json": _run("analyze", cap, trace, "--keylog", keys, "--site", site, "--format", "json",
                             "--no-progress", cwd=tmp_path),
        "analyze table": _run("analyze", cap, "--keylog", keys, "--site", site, "--no-progress", cwd=tmp_path),
        "analyze html": _run("analyze", cap, trace, "--format", "html", "--out", str(tmp_path / "html"),
                             "--no-progress", cwd=tmp_path),
        "diagnose json": _run("diagnose", "--site", site, "--capture", cap, "--trace-log", trace, "--keylog", keys,
                              "--jwt-file", jwt, "--format", "json", cwd=tmp_path),
        "diagnose table": _run("diagnose", "--site", site, "--capture", cap, "--jwt-file", jwt, cwd=tmp_path),
        "firewall": _run("firewall", "--site", site, "--capture", cap, "--format", "json", cwd=tmp_path),
        "bundle": _run("bundle", "-o", str(tmp_path / "b.zip"), "--site", site, "--capture", cap, "--trace-log",
                       trace, "--keylog", keys, "--jwt-file", jwt, cwd=tmp_path),
    }
    for name, text in outputs.items():
        _assert_clean(name, text.encode(), secrets)
    assert "jwt.expiring" in outputs["diagnose json"]  # the token was read and judged, not ignored
    for path in (tmp_path / "html").rglob("*"):
        if path.is_file():
            _assert_clean(str(path.name), path.read_bytes(), secrets)
    zf = zipfile.ZipFile(tmp_path / "b.zip")
    assert "site.yaml" in zf.namelist()
    for member in zf.namelist():
        _assert_clean(f"bundle:{member}", zf.read(member), secrets)


def test_service_log_metrics_api_and_bundle_hold_no_secret(evidence: tuple[Path, dict[str, str]],
                                                          tmp_path: Path) -> None:
    lab, secrets = evidence
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([*CLI, "serve", "--site", str(lab / "site.yaml"), "--capture", str(lab / "lab.pcapng"),
                                 "--trace-log", str(lab / "osbiz-trace.log"), "--jwt-file", str(lab / "jwt.txt"),
                                 "--db", str(tmp_path / "s.db"), "--metrics-addr", "127.0.0.1:0", "--verbose",
                                 "--analysis-interval", "1", "--probe-interval", "1", "--window", "86400"],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "/metrics" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        base = log.read_text().split(" — ")[1].split("/metrics")[0]
        time.sleep(4)  # a few collector rounds, including failing probes (the lab is gone)
        bodies = {}
        for path in ("/metrics", "/api/snapshot", "/api/history?table=probes", "/api/bundle"):
            with urllib.request.urlopen(base + path, timeout=30) as r:
                bodies[path] = r.read()
        snap = json.loads(bodies["/api/snapshot"])
        assert snap["site"] is not None and snap["probes"]
        for path, body in bodies.items():
            if path == "/api/bundle":
                zf = zipfile.ZipFile(io.BytesIO(body))
                for member in zf.namelist():
                    _assert_clean(f"service bundle:{member}", zf.read(member), secrets)
            else:
                _assert_clean(path, body, secrets)
    finally:
        proc.terminate()
        proc.wait(20)
    _assert_clean("serve log", log.read_bytes(), secrets)
