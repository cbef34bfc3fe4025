"""The fleet model and the Fleet page against a real Prometheus scraping simulated sites.

The sites are ``benchmarks/fleet_sim.py`` endpoints serving what real ``upscope serve`` instances
exposed for recorded lab scenarios; Prometheus (Debian package) scrapes them every second. What the
fleet view shows per system is checked against the recorded exposition itself (parsed here with
prometheus_client's parser), not against the fleet module's own reading of it.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from streamlit.testing.v1 import AppTest

from dashboard.fleet import (
    PROMETHEUS_ENV,
    FleetRow,
    Health,
    OpenFinding,
    RowFilter,
    filter_rows,
    load_fleet,
    service_url,
)
from dashboard.fleet_queries import timeline
from dashboard.prometheus_api import PrometheusClient, PrometheusError, Sample
from tests.live import stop_all

# one worker runs the module: its tests share one module fixture
pytestmark = pytest.mark.xdist_group("fleet")
ROOT = Path(__file__).resolve().parents[2]
SIM = ROOT / "benchmarks" / "fleet_sim.py"
STATES = ROOT / "benchmarks" / "fleet-states.json.gz"
N, DOWN = 14, 2


# --- rows without Prometheus: the health model ---------------------------------------------------------


def test_health_and_problems_of_a_row() -> None:
    ok = FleetRow("a", itsp="registered", scraped=True, jwt_days_left=200, support_days_left=300,
                  licence_headroom=3, licence_pool="unify_phone", collectors_up=8, collectors_total=8)
    assert ok.health is Health.OK and ok.problems == ()
    crit = FleetRow("b", itsp="not-registered", scraped=True,
                    findings=(OpenFinding("itsp.not-registered.firewall", "critical", "t", 1),
                              OpenFinding("jwt.expiring", "warning", "t", 1)))
    assert crit.health is Health.CRITICAL
    assert [t for _, t in crit.problems] == ["trunk not registered", "1 critical finding", "1 warning"]
    assert FleetRow("c", scraped=False, itsp=None).health is Health.NO_DATA
    assert FleetRow("d", scraped=True, stale=True).problems == ((Health.NO_DATA, "no current data"),)
    warn = FleetRow("e", itsp="registered", jwt_days_left=12.4, support_days_left=-3, licence_headroom=0,
                    licence_pool="unify_phone", collectors_down=("capture",))
    assert [t for _, t in warn.problems] == ["Software Support expired", "JWT expires in 12 d",
                                             "no free unify_phone licence", "collector down: capture"]
    assert FleetRow("f", itsp="registered", jwt_state="expired").health is Health.CRITICAL
    rows = sorted([ok, warn, FleetRow("c", scraped=False), crit], key=lambda r: r.sort_key)
    assert [r.system for r in rows] == ["b", "e", "c", "a"]


def test_service_url_only_for_a_plain_address_that_answers() -> None:
    assert FleetRow("a", instance="10.1.2.3:9661", scraped=True).service_url == "http://10.1.2.3:9661"
    assert FleetRow("a", instance="[fd00::1]:9661", scraped=True).service_url == "http://[fd00::1]:9661"
    assert FleetRow("a", instance="10.1.2.3:9661", scraped=False).service_url is None
    for bad in ("evil.example/x:1", "user@host:1", "host:1/path", "host", "a b:1"):
        assert FleetRow("a", instance=bad, scraped=True).service_url is None, bad


def test_filter() -> None:
    rows = [FleetRow("acme-munich", itsp="not-registered",
                     findings=(OpenFinding("itsp.not-registered.firewall", "critical", "Trunk blocked", 1),)),
            FleetRow("baker", itsp="registered")]
    assert [r.system for r in filter_rows(rows, RowFilter("blocked"))] == ["acme-munich"]
    assert [r.system for r in filter_rows(rows, RowFilter("BAK"))] == ["baker"]
    assert [r.system for r in filter_rows(rows, RowFilter("", frozenset({Health.OK})))] == ["baker"]


# --- a real Prometheus and simulated sites -------------------------------------------------------------


@dataclass
class Env:
    base: str
    folder: Path
    systems: dict[str, dict[str, Any]]  # name → scenario, down, address
    procs: list[subprocess.Popen[bytes]]

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return list(json.loads(resp.read())["data"]["result"])


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _sim(folder: Path, name: str, *args: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    ready = folder / f"{name}.ready.json"
    proc = subprocess.Popen([sys.executable, str(SIM), "--targets", str(folder / f"{name}.sd.json"),
                             "--ready", str(ready), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, _wait(f"simulation {name}", lambda: json.loads(ready.read_text()), 60)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus (Debian package) is not installed")
    folder = tmp_path_factory.mktemp("fleet")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        proc, ready = _sim(folder, "main", "--systems", str(N), "--down", str(DOWN), "--seed", "7")
        procs.append(proc)
        web = f"127.0.0.1:{_free_port()}"
        (folder / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "upscope", "file_sd_configs": [
                {"files": [str(folder / "*.sd.json")], "refresh_interval": "1s"}]}]}))
        procs.append(subprocess.Popen(["prometheus", f"--config.file={folder / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address={web}",
                                       "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        run = Env(f"http://{web}", folder, ready["systems"], procs)
        _wait("every site scraped", lambda: len(run.query("upscope_build_info")) == N - DOWN
              and len(run.query("up")) == N, 60)
        time.sleep(3)  # a few samples each, for the range functions
        yield run
    finally:
        stop_all(procs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _recorded() -> dict[str, dict[str, Any]]:
    """Per scenario, from the recorded exposition: ITSP state, open findings, titles, JWT state."""
    out = {}
    for rec in json.loads(gzip.decompress(STATES.read_bytes()))["states"]:
        state: dict[str, Any] = {"findings": {}, "titles": {}}
        for family in text_string_to_metric_families(rec["scrapes"][-1]["text"]):
            for s in family.samples:
                if s.name == "upscope_itsp_status" and s.value == 1:
                    state["itsp"] = s.labels["upscope_itsp_status"]
                elif s.name == "upscope_finding_active" and s.value > 0:
                    state["findings"][s.labels["id"]] = (s.labels["severity"], int(s.value))
                elif s.name == "upscope_finding_info":
                    state["titles"][s.labels["id"]] = s.labels["title"]
                elif s.name == "upscope_jwt_status" and s.value == 1:
                    state["jwt"] = s.labels["upscope_jwt_status"]
        out[rec["scenario"]] = state
    return out


@pytest.mark.e2e
def test_rows_are_what_each_site_exposes(env: Env) -> None:
    fleet = load_fleet(PrometheusClient(env.base), range_s=3600)
    assert fleet.errors == () and fleet.queries == 18
    recorded = _recorded()
    by_name = {r.system: r for r in fleet.rows}
    assert len(fleet.rows) == N
    for name, site in env.systems.items():
        if site["down"]:  # never answered: listed under its address, no data
            row = by_name[f"? {site['address']}"]
            assert row.scraped is False and row.health is Health.NO_DATA
            continue
        row, want = by_name[name], recorded[site["scenario"]]
        assert row.scraped is True and not row.stale and row.instance == site["address"], name
        assert row.itsp == want["itsp"], name
        assert row.jwt_state == want.get("jwt"), name
        assert {f.id: (f.severity, f.count) for f in row.findings} == want["findings"], name
        assert {f.id: f.title for f in row.findings} == want["titles"], name
        assert row.service_url == f"http://{site['address']}"
        assert row.collectors_total is not None and row.collectors_up == row.collectors_total
        assert row.scrape_age_s is not None and 0 <= row.scrape_age_s < 5
        assert row.support_days_left is not None and row.licence_headroom is not None
        assert row.calls is not None and row.calls >= (row.failed_calls or 0) >= 0
    ranks = [r.health.rank for r in fleet.rows]
    assert ranks == sorted(ranks), "problem systems first"


@pytest.mark.e2e
def test_a_site_that_stops_answering_stays_listed_as_no_data(env: Env) -> None:
    proc, _ = _sim(env.folder, "gone", "--systems", "1", "--prefix", "gone-", "--seed", "3")
    env.procs.append(proc)
    client = PrometheusClient(env.base)
    _wait("gone-00000 scraped", lambda: any(r.system == "gone-00000" and r.scraped
                                            for r in load_fleet(client).rows), 30)
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)

    def gone() -> FleetRow | None:
        row = next(r for r in load_fleet(client).rows if r.system == "gone-00000")
        return row if row.scraped is False else None

    row = _wait("gone-00000 not scraped", gone, 30)
    assert row.health is Health.NO_DATA and ("NO_DATA", "scrape failing") in [(h.name, t) for h, t in row.problems]
    assert row.stale and row.service_url is None and row.scrape_age_s is not None


@pytest.mark.e2e
def test_service_url_resolves_only_through_prometheus(env: Env) -> None:
    client = PrometheusClient(env.base)
    up = next(n for n, s in env.systems.items() if not s["down"])
    assert service_url(client, up) == f"http://{env.systems[up]['address']}"
    assert service_url(client, "no-such-system") is None
    for hostile in ('x"} or vector(1) or up{a="', "x\\", "\n", "a" * 300, ""):
        assert service_url(client, hostile) is None


@pytest.mark.e2e
def test_one_failing_query_leaves_its_columns_empty(env: Env) -> None:
    class Flaky(PrometheusClient):
        def query(self, expr: str, at: float | None = None) -> tuple[Sample, ...]:
            if "histogram_quantile" in expr:
                raise PrometheusError("Prometheus test: query timed out")
            return super().query(expr, at)

    fleet = load_fleet(Flaky(env.base))
    assert len(fleet.errors) == 1 and fleet.errors[0].startswith("mos: ")
    assert len([r for r in fleet.rows if not r.system.startswith("gone-")]) == N
    assert all(r.worst_mos is None for r in fleet.rows)
    assert any(r.calls for r in fleet.rows)


@pytest.mark.e2e
def test_systems_query_failure_is_the_load_failing() -> None:
    with pytest.raises(PrometheusError, match="unreachable"):
        load_fleet(PrometheusClient("http://127.0.0.1:9"))


@pytest.mark.e2e
def test_timeline_counts_systems_over_the_range(env: Env) -> None:
    lines = timeline(PrometheusClient(env.base), time.time(), 120.0)
    assert set(lines) == {"not registered", "critical finding", "scrape failing"}
    recorded = _recorded()
    up = [s for s in env.systems.values() if not s["down"]]
    not_registered = sum(1 for s in up if recorded[s["scenario"]]["itsp"] == "not-registered")
    assert lines["not registered"].points[-1][1] == not_registered
    assert lines["scrape failing"].points[-1][1] >= DOWN


@pytest.mark.e2e
def test_fleet_page(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROMETHEUS_ENV, env.base)
    at = AppTest.from_string("from dashboard.pages import fleet\nfleet.render()\n", default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Fleet"
    frame = at.dataframe[0].value
    listed = len(frame)  # N, and gone-00000 when the test of a site that stops answering ran before
    assert listed in (N, N + 1) and list(frame["#"]) == list(range(1, listed + 1))
    ranks = [list(Health).index(Health(h)) for h in frame["Health"]]
    assert ranks == sorted(ranks)
    recorded = _recorded()
    blocked = next(n for n, s in env.systems.items() if not s["down"] and recorded[s["scenario"]]["itsp"] == "not-registered")
    line = frame[frame["System"] == blocked].iloc[0]
    assert line["ITSP"] == "Not registered" and line["Open"] == f"overview?system={blocked}"
    texts = " ".join(m.value for m in at.markdown)
    assert f"**{blocked}**" in texts
    assert math.isclose(sum(int(m.value) for m in at.metric), listed)
    at.text_input[0].input(blocked).run()
    assert list(at.dataframe[0].value["System"]) == [blocked]
    at.text_input[0].input("").run()
    at.multiselect[0].select("ok").run()
    assert set(at.dataframe[0].value["Health"]) <= {"ok"}


def test_fleet_page_without_prometheus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROMETHEUS_ENV, raising=False)
    at = AppTest.from_string("from dashboard.pages import fleet\nfleet.render()\n", default_timeout=30).run()
    assert "upscope dashboard --prometheus URL" in at.info[0].value


@pytest.mark.e2e
def test_fleet_page_with_prometheus_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROMETHEUS_ENV, "http://127.0.0.1:9")
    at = AppTest.from_string("from dashboard.pages import fleet\nfleet.render()\n", default_timeout=30).run()
    assert not at.exception
    assert "Prometheus http://127.0.0.1:9/api/v1/query: unreachable" in at.error[0].value
