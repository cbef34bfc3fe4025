"""A real Prometheus (Debian package) scrapes upscope's /metrics and evaluates the shipped rules.

The Snapshot switches from registered to not registered: ``upscope_itsp_registered`` reads 1 then 0
through Prometheus' query API and UpscopeTrunkNotRegistered reaches pending/firing (the rules'
``for:`` shortened for the test). Every Grafana panel query is also run through the same server so
a PromQL typo in the dashboard fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "metrics"))

from metric_snapshots import bare_snapshot, busy_snapshot  # noqa: E402

from core.snapshot import ItspState, Snapshot  # noqa: E402
from dashboard.http_server import UpscopeHttpServer  # noqa: E402
from dashboard.metrics import make_registry  # noqa: E402

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else f"{base}{path}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _wait(what: str, check: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, list[Snapshot | None]]]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus (Debian package) is not installed")
    current: list[Snapshot | None] = [bare_snapshot(ItspState.REGISTERED)]
    server = UpscopeHttpServer(make_registry(lambda: current[0]), port=0)
    server.start()
    rules = (ROOT / "deploy" / "prometheus" / "rules" / "upscope.rules.yml").read_text()
    (tmp_path / "upscope.rules.yml").write_text(re.sub(r"for: \d+m", "for: 2s", rules))
    host, port = server.address
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [upscope.rules.yml]\n"
        f"scrape_configs:\n  - job_name: upscope\n    static_configs:\n      - targets: ['{host}:{port}']\n"
    )
    web = f"127.0.0.1:{_free_port()}"
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address={web}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://{web}"
    try:
        _wait("Prometheus ready", lambda: proc.poll() is None and urllib.request.urlopen(
            f"{base}/-/ready", timeout=2).status == 200)
        yield base, current
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        server.stop()


def _registered(base: str) -> float | None:
    result = _api(base, "/api/v1/query", query='upscope_itsp_registered{system="lab"}')["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _alert_state(base: str, name: str) -> str | None:
    for alert in _api(base, "/api/v1/alerts")["data"]["alerts"]:
        if alert["labels"]["alertname"] == name and alert["labels"].get("system") == "lab":
            return str(alert["state"])
    return None


def test_registered_then_not_registered_alert_fires(prometheus: tuple[str, list[Snapshot | None]]) -> None:
    base, current = prometheus
    _wait("upscope_itsp_registered == 1", lambda: _registered(base) == 1.0)
    assert _alert_state(base, "UpscopeTrunkNotRegistered") is None
    current[0] = bare_snapshot(ItspState.NOT_REGISTERED)
    _wait("upscope_itsp_registered == 0", lambda: _registered(base) == 0.0)
    _wait("alert pending or firing", lambda: _alert_state(base, "UpscopeTrunkNotRegistered") in ("pending", "firing"))
    _wait("alert firing", lambda: _alert_state(base, "UpscopeTrunkNotRegistered") == "firing")
    rules = _api(base, "/api/v1/rules")["data"]["groups"][0]["rules"]
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def test_dashboard_queries_run_on_a_real_prometheus(prometheus: tuple[str, list[Snapshot | None]]) -> None:
    base, current = prometheus
    current[0] = busy_snapshot()
    _wait("busy snapshot scraped", lambda: bool(_api(base, "/api/v1/query",
                                                     query='upscope_calls_active{system="acme-munich"}')["data"]["result"]))
    dash = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "upscope-trunk.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 25
    for expr in exprs:
        reply = _api(base, "/api/v1/query", query=expr.replace("$system", "acme-munich"))
        assert reply["status"] == "success", expr
    table = _api(base, "/api/v1/query", query='upscope_finding_active{system="acme-munich"} > 0')["data"]["result"]
    assert [r["metric"]["id"] for r in table] == ["media.one-way-audio"]
