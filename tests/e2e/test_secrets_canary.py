"""Canary secrets: an API key, a JWT and a SIP password planted in a site never come out again.

The lab makes real evidence (Unify Video flavour, so a JWT is in play); we add a SIP password to
its site file, then run every command a partner would — check-site, analyze (table, JSON, HTML),
diagnose, firewall, bundle, and the service with its log, /metrics, /api/snapshot and /api/bundle —
and search everything they print or write for the three values (raw, base64, URL-encoded, hex).

The second half writes the canary *wrong* — an unquoted YAML tag, an alias, an anchor, a tag that
does not fit, a list or mapping where a string belongs — so the site file fails to load: the
commands, the service after SIGHUP (log, /metrics, /api/*, its bundle) and the dashboard's error
banner must name the place and the problem, never the value.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
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
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"="),
            urllib.parse.quote(secret, safe="").encode(), raw.hex().encode(), raw.hex().upper().encode()]


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


# --- the canary written wrong: the site file does not load ---------------------------------------

CANARY = "S3cr3tPW9-canary"
MALFORMED = {
    "tag": f"!{CANARY}",
    "alias": f"*{CANARY}",
    "anchor": f"&{CANARY} x",
    "int tag": f"!!int {CANARY}",
    "float tag": f"!!float {CANARY}",
    "list": f"[{CANARY}]",
    "mapping": f"{{{CANARY}: 1}}",
    "verbatim tag": f"!<tag:{CANARY}> x",
}


def _malformed_site(lab: Path, where: str, value: str) -> str:
    """The lab's site text with ``value`` written unquoted as the API key or the SIP password."""
    text = (lab / "site.yaml").read_text()
    site = yaml.safe_load(text)
    if where == "api_key":
        return text.replace(f"api_key: {site['connectivity']['api_key']}", f"api_key: {value}")
    return text.replace("password: " + SIP_PASSWORD, "password: " + value)


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_secret_never_comes_out_of_a_command(evidence: tuple[Path, dict[str, str]], tmp_path: Path,
                                                      kind: str) -> None:
    lab, _ = evidence
    for where in ("api_key", "password"):
        site = tmp_path / f"{where}.yaml"
        site.write_text(_malformed_site(lab, where, MALFORMED[kind]))
        cap = str(lab / "lab.pcapng")
        for args in (["check-site", str(site)], ["check-site", str(site), "--format", "json"],
                     ["analyze", cap, "--site", str(site), "--no-progress"],
                     ["diagnose", "--site", str(site), "--capture", cap], ["firewall", "--site", str(site)],
                     ["bundle", "-o", str(tmp_path / "b.zip"), "--site", str(site)]):
            proc = subprocess.run([*CLI, *args], capture_output=True, timeout=180, cwd=tmp_path)
            assert proc.returncode == 2, (args, proc.stderr.decode()[-300:])
            out = proc.stdout + proc.stderr
            _assert_clean(f"{args[0]} ({kind} in {where})", out, {"canary": CANARY})
            assert str(site).encode() in proc.stderr and b"Traceback" not in proc.stderr


def test_malformed_secret_after_sighup_stays_out_of_the_service(evidence: tuple[Path, dict[str, str]],
                                                                tmp_path: Path) -> None:
    lab, secrets = evidence
    site = tmp_path / "site.yaml"
    site.write_text((lab / "site.yaml").read_text())
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([*CLI, "serve", "--site", str(site), "--capture", str(lab / "lab.pcapng"),
                                 "--db", str(tmp_path / "s.db"), "--metrics-addr", "127.0.0.1:0", "--verbose",
                                 "--analysis-interval", "1", "--probe-interval", "1", "--window", "86400"],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while "/metrics" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        base = log.read_text().split(" — ")[1].split("/metrics")[0]
        for kind, value in MALFORMED.items():
            site.write_text(_malformed_site(lab, "password", value))
            os.kill(proc.pid, signal.SIGHUP)
            deadline = time.monotonic() + 15
            while True:
                with urllib.request.urlopen(base + "/api/snapshot", timeout=30) as r:
                    snap = json.loads(r.read())
                if snap.get("site_error"):
                    break
                assert time.monotonic() < deadline, f"{kind}: the broken site was not noticed"
                time.sleep(0.3)
            assert "sip_credentials.password" in snap["site_error"]
            for path in ("/metrics", "/api/snapshot", "/api/history?table=probes", "/api/history?table=findings",
                         "/api/bundle"):
                with urllib.request.urlopen(base + path, timeout=60) as r:
                    body = r.read()
                if path == "/api/bundle":
                    zf = zipfile.ZipFile(io.BytesIO(body))
                    for member in zf.namelist():
                        _assert_clean(f"{kind}: bundle:{member}", zf.read(member), {"canary": CANARY, **secrets})
                else:
                    _assert_clean(f"{kind}: {path}", body, {"canary": CANARY, **secrets})
            site.write_text((lab / "site.yaml").read_text())  # back to good before the next kind
            os.kill(proc.pid, signal.SIGHUP)
            time.sleep(1.0)
    finally:
        proc.terminate()
        proc.wait(20)
    _assert_clean("serve log", log.read_bytes(), {"canary": CANARY, **secrets})


@pytest.mark.parametrize("kind", ["tag", "alias", "int tag"])
def test_malformed_secret_stays_out_of_the_dashboard_banner(evidence: tuple[Path, dict[str, str]], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard import data

    lab, _ = evidence
    site = tmp_path / "site.yaml"
    site.write_text(_malformed_site(lab, "password", MALFORMED[kind]))
    monkeypatch.setenv(data.SOURCE_ENV, json.dumps({"kind": "files", "captures": [str(lab / "lab.pcapng")],
                                                    "site": str(site)}))
    at = AppTest.from_string("from dashboard.pages import overview\noverview.render()\n", default_timeout=60)
    at.run()
    shown = "\n".join(str(e.value) for e in at.error) + "".join(str(e.value) for e in at.exception)
    assert "sip_credentials.password" in shown, shown
    _assert_clean(f"dashboard banner ({kind})", shown.encode(), {"canary": CANARY})
