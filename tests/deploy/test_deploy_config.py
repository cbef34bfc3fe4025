"""deploy/: promtool checks and unit tests of the alert rules, the example config, the Grafana dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
sys.path.insert(0, str(ROOT / "tests" / "metrics"))  # the Snapshot fixtures of the metrics tests

from metric_snapshots import busy_snapshot  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

from core.findings import CATALOGUE  # noqa: E402
from dashboard.metrics import make_registry  # noqa: E402
from dashboard.runbook import ALERT_ONLY, DOCS_URL  # noqa: E402

ALERTS = {
    "UpscopeTrunkNotRegistered", "UpscopeJwtExpiring", "UpscopeJwtExpired", "UpscopeSoftwareSupportExpiring",
    "UpscopeSoftwareSupportExpired", "UpscopeLicensePoolExhausted", "UpscopeOneWayAudio", "UpscopeMosLow",
    "UpscopeTlsCertificateExpiring", "UpscopeCollectorDown", "UpscopeCriticalFinding", "UpscopeCallsFailing",
}
_METRIC = re.compile(r"\bupscope_[a-z0-9_]+")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=PROM)


def _exposed_names() -> set[str]:
    text = generate_latest(make_registry(busy_snapshot)).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def _rules() -> list[dict[str, object]]:
    doc = yaml.safe_load((PROM / "rules" / "upscope.rules.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_promtool_check_rules() -> None:
    proc = _promtool("check", "rules", "rules/upscope.rules.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout


def test_promtool_test_rules() -> None:
    proc = _promtool("test", "rules", "tests/upscope.rules.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_check_example_config() -> None:
    proc = _promtool("check", "config", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    assert {r["alert"] for r in _rules()} == ALERTS
    tests = yaml.safe_load((PROM / "tests" / "upscope.rules.test.yml").read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        systems = {m.group(1) for s in case["input_series"] for m in [re.search(r'system="([^"]+)"', s["series"])] if m}
        for check in case["alert_rule_test"]:
            fired = {a["exp_labels"]["system"] for a in check.get("exp_alerts") or []}
            if fired:
                firing.add(check["alertname"])
            if systems - fired:  # some input system is expected NOT to fire at this time
                quiet.add(check["alertname"])
    assert firing == ALERTS
    assert quiet == ALERTS


def test_rules_and_dashboard_only_use_exposed_metrics() -> None:
    exposed = _exposed_names()
    used = set(_METRIC.findall((PROM / "rules" / "upscope.rules.yml").read_text()))
    used |= set(_METRIC.findall((GRAFANA / "dashboards" / "upscope-trunk.json").read_text()))
    missing = sorted(used - exposed)
    assert not missing, missing


def test_alerts_keep_the_system_label_and_have_text() -> None:
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}  # type: ignore[index]
        annotations = rule["annotations"]
        assert "{{ $labels.system }}" in annotations["summary"]  # type: ignore[index]
        assert annotations["description"]  # type: ignore[index]


def test_every_alert_links_to_its_remedy_in_the_docs() -> None:
    """``runbook_url`` = the docs page's anchor of the alert's ``finding``; the anchor exists once per
    finding id. Templated ones (the open finding's id) are checked by ``promtool test rules``."""
    anchors = re.findall(r'<a id="([^"]+)"></a>', (ROOT / "docs" / "findings.md").read_text())
    assert len(anchors) == len(set(anchors))
    assert set(CATALOGUE) | {e.id for e in ALERT_ONLY} == set(anchors)
    for rule in _rules():
        annotations = rule["annotations"]
        finding, url = annotations["finding"], annotations["runbook_url"]  # type: ignore[index]
        assert url == f"{DOCS_URL}#{finding}" or "{{" in finding, rule["alert"]
        if "{{" not in finding:
            assert finding in anchors, rule["alert"]


def test_grafana_dashboard() -> None:
    dash = json.loads((GRAFANA / "dashboards" / "upscope-trunk.json").read_text())
    assert dash["uid"] == "upscope-trunk"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["system"]["definition"] == "label_values(upscope_build_info, system)"
    assert variables["datasource"]["query"] == "prometheus"
    titles = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert titles == ["ITSP status", "Calls", "Media quality", "Expiries and licenses", "Findings and collectors"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert 'system="$system"' in target["expr"], panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"
    for p in dash["panels"]:  # every panel fits the 24-column grid
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24


def test_grafana_provisioning() -> None:
    dashboards = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "upscope.yml").read_text())
    assert dashboards["apiVersion"] == 1 and dashboards["providers"][0]["type"] == "file"
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"
