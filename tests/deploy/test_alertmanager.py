"""deploy/alertmanager: amtool checks, the route tree, the templates, and a real Alertmanager's
inhibition and delivery to a webhook on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from core.findings import CATALOGUE
from dashboard.runbook import ALERT_ONLY
from tests.alerting import AM_DIR, alertmanager, config_for_test, webhook


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("amtool") is None:
        pytest.skip("amtool (Debian package prometheus-alertmanager) is not installed")
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60, cwd=AM_DIR)


def test_amtool_check_config() -> None:
    proc = _amtool("check-config", "alertmanager.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and "6 inhibit rules" in proc.stdout and "1 templates" in proc.stdout


@pytest.mark.parametrize(("labels", "receiver"), [
    (["system=acme-munich", "severity=critical"], "acme-oncall"),
    (["system=acme-munich", "severity=warning"], "acme-mail"),
    (["system=city-clinic", "severity=critical"], "noc-pager"),
    (["system=city-clinic", "severity=warning"], "noc-mail"),
    (["system=city-clinic"], "noc-mail"),
])
def test_route_tree_by_system_then_severity(labels: list[str], receiver: str) -> None:
    proc = _amtool("config", "routes", "test", "--config.file=alertmanager.yml", *labels)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == receiver


def _render(tmp_path: Path, text: str, alerts: list[dict[str, object]], kind: str = "text") -> str:
    data = {"receiver": "noc-pager", "status": "firing", "alerts": alerts,
            "groupLabels": {"system": "city-clinic", "alertname": "UpscopeTrunkNotRegistered"},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093"}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(data))
    proc = _amtool("template", "render", "--template.glob=templates/*.tmpl", f"--template.type={kind}",
                   f"--template.text={text}", f"--template.data={path}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _alert(finding: str, system: str = "city-clinic") -> dict[str, object]:
    return {"status": "firing", "startsAt": "2026-12-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "labels": {"alertname": "UpscopeCriticalFinding", "system": system, "severity": "critical", "id": finding},
            "annotations": {"finding": finding, "summary": f"{system}: critical finding {finding}",
                            "description": "d", "runbook_url": f"https://upscope.example.net/docs/findings.md#{finding}"}}


def test_every_remedy_reaches_the_notification_text(tmp_path: Path) -> None:
    """One render of all ids: each alert's text carries its finding's remedy as docs/findings.md has it."""
    ids = [*CATALOGUE, *(e.id for e in ALERT_ONLY)]
    text = _render(tmp_path, '{{ range .Alerts }}<<{{ .Labels.id }}>>{{ template "upscope.alert.text" . }}{{ end }}',
                   [_alert(i) for i in ids])
    parts = dict(p.split(">>", 1) for p in text.split("<<")[1:])
    remedies = {s.id: s.remedy for s in CATALOGUE.values()} | {e.id: e.remedy for e in ALERT_ONLY}
    for fid in ids:
        assert f"Remedy:    {remedies[fid]}\n" in parts[fid], fid
        assert f"Runbook:   https://upscope.example.net/docs/findings.md#{fid}\n" in parts[fid]
        assert "Dashboard: https://upscope.example.net/overview?system=city-clinic\n" in parts[fid]


def test_subject_text_and_html(tmp_path: Path) -> None:
    alert = _alert("itsp.not-registered.auth", "clinic a&b")
    subject = _render(tmp_path, '{{ template "upscope.subject" . }}', [alert])
    assert subject.strip() == "[FIRING:1] city-clinic: UpscopeTrunkNotRegistered"
    html = _render(tmp_path, '{{ template "upscope.html" . }}', [alert], "html")
    assert "clinic a&amp;b" in html and "overview?system=clinic&#43;a%26b" in html  # escaped, quoted
    assert CATALOGUE["itsp.not-registered.auth"].remedy.split(" (")[0][:40] in html


def _post(system: str, name: str, severity: str, **extra: str) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {"labels": {"alertname": name, "system": system, "severity": severity, **extra},
            "annotations": {"summary": f"{system}: {name}", "finding": extra.get("id", ""),
                            "runbook_url": "https://upscope.example.net/docs/findings.md"},
            "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(minutes=10)).isoformat()}


@pytest.mark.e2e
def test_not_registered_inhibits_call_and_media_alerts_of_its_system_only(tmp_path: Path) -> None:
    with webhook() as hook, alertmanager(config_for_test(hook.url, tmp_path), tmp_path) as am:
        am.post([
            _post("down", "UpscopeTrunkNotRegistered", "critical"),
            _post("down", "UpscopeOneWayAudio", "warning"),
            _post("down", "UpscopeCallsFailing", "warning"),
            _post("down", "UpscopeCriticalFinding", "critical", id="itsp.not-registered.firewall"),
            _post("down", "UpscopeCriticalFinding", "critical", id="calls.license-missing"),
            _post("up", "UpscopeOneWayAudio", "warning"),
            _post("acme-up", "UpscopeJwtExpired", "critical"),
            _post("acme-up", "UpscopeJwtExpiring", "warning"),
        ])
        deadline = time.monotonic() + 30
        while True:
            state = {(a["labels"]["system"], a["labels"]["alertname"], a["labels"].get("id", "")): a["status"]["state"]
                     for a in am.alerts()}
            if len(state) == 8 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        suppressed = {k for k, v in state.items() if v == "suppressed"}
        assert suppressed == {("down", "UpscopeOneWayAudio", ""), ("down", "UpscopeCallsFailing", ""),
                              ("down", "UpscopeCriticalFinding", "itsp.not-registered.firewall"),
                              ("acme-up", "UpscopeJwtExpiring", "")}, state
        # Critical alerts wait 10 s (group_wait) before their first notification.
        deadline = time.monotonic() + 40
        want = {("noc-pager", "down", "UpscopeTrunkNotRegistered"), ("noc-pager", "down", "UpscopeCriticalFinding"),
                ("acme-oncall", "acme-up", "UpscopeJwtExpired")}
        while time.monotonic() < deadline:
            got = {(r, a["labels"]["system"], a["labels"]["alertname"]) for r, a in hook.alerts()}
            if want <= got:
                break
            time.sleep(0.5)
        got_ids = {a["labels"].get("id") for _, a in hook.alerts() if a["labels"]["alertname"] == "UpscopeCriticalFinding"}
        assert want <= got, got
        assert got_ids == {"calls.license-missing"}
        assert not any(a["labels"]["alertname"] in ("UpscopeOneWayAudio", "UpscopeCallsFailing", "UpscopeJwtExpiring")
                       and a["labels"]["system"] in ("down", "acme-up") for _, a in hook.alerts())
