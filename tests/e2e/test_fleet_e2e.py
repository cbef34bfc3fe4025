"""A fleet on loopback: three sites, a real Prometheus, a real Alertmanager, the Fleet page in Chromium.

Three labs (healthy, sip-tls-blocked, jwt-expired), each with its own ``system`` name, are watched by
three ``upscope serve`` with the DEFAULT settings (window, hold, intervals). Prometheus (Debian
package) finds them by file-based service discovery, scrapes every 15 s and evaluates the SHIPPED
alert rules (their ``for:`` unchanged) and sends to Alertmanager (Debian package) running the shipped
route tree, inhibit rules and templates, with every receiver pointed at a webhook on 127.0.0.1.
``upscope dashboard --prometheus`` serves the Fleet page. The test asserts what a NOC would see:

- the Fleet page (a real browser) lists the three systems with the right ITSP status and findings,
  problem systems first, and a row's link opens that system's own pages;
- Alertmanager delivers UpscopeTrunkNotRegistered for the blocked site and UpscopeJwtExpired for the
  other, each with its ``system``, the finding and the runbook link, and the notification text
  (rendered by amtool from what was delivered) carries the remedy; nothing ever arrives for the
  healthy site during the whole run (more than the rules' 2-minute ``for:`` plus a window).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.findings import CATALOGUE
from dashboard.runbook import DOCS_URL
from tests.alerting import AM_DIR, alertmanager, config_for_test, free_port, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SITES = {"fleet-healthy": "healthy", "fleet-blocked": "sip-tls-blocked", "fleet-jwt": "jwt-expired"}
#: How long the healthy site is watched for a false alarm: the rules' longest `for:` that a healthy
#: trunk could trip (UpscopeTrunkNotRegistered, 2 m) plus two 60-s windows and the evaluation.
WATCH_S = 6 * 60


def _wait(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (OSError, KeyError, IndexError, ValueError):
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


class Procs:
    """Processes of this test, stopped in reverse order by pid."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, **kw)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    running = Procs(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _serve_address(log: Path) -> str:
    """HOST:PORT from serve's first line ("watching … — http://HOST:PORT/metrics, …"), "" before it."""
    line = next((ln for ln in log.read_text().splitlines() if " — http://" in ln), "")
    return line.split(" — http://")[1].split("/metrics")[0] if line else ""


def test_fleet_page_and_alerts_for_three_sites(procs: Procs, tmp_path: Path) -> None:
    for tool in ("prometheus", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (Debian package) is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

    # --- three sites: a lab and an upscope serve (default settings) each ---------------------------
    for system, scenario in SITES.items():
        procs.start(f"lab-{system}", [*CLI, "lab", "--scenario", scenario, "--port", "0", "--out",
                                      str(tmp_path / system), "--system-name", system, "--addresses", "auto"])
    for system in SITES:
        _wait(f"lab {system}", lambda s=system: json.loads((tmp_path / s / "lab.json").read_text())["running"], 60)
        procs.start(f"serve-{system}", [*CLI, "serve", "--lab-dir", str(tmp_path / system), "--db",
                                        str(tmp_path / f"{system}.db"), "--metrics-addr", "127.0.0.1:0"])
    served_at = time.monotonic()
    targets = {s: _wait(f"serve {s} address", lambda s=s: _serve_address(tmp_path / f"serve-{s}.log"), 60)
               for s in SITES}

    with ExitStack() as stack:
        hook = stack.enter_context(webhook())
        am = stack.enter_context(alertmanager(config_for_test(hook.url, tmp_path), tmp_path))

        # --- Prometheus: file-based discovery of the sites, the shipped rules, Alertmanager -----
        (tmp_path / "sites.yml").write_text(yaml.safe_dump([{"targets": list(targets.values())}]))
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
            "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
            "rule_files": [str(ROOT / "deploy" / "prometheus" / "rules" / "upscope.rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am.url.removeprefix("http://")]}]}]},
            "scrape_configs": [{"job_name": "upscope",
                                "file_sd_configs": [{"files": [str(tmp_path / "sites.yml")]}]}],
        }))
        web = f"127.0.0.1:{free_port()}"
        procs.start("prometheus", ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={web}"])
        prom = f"http://{web}"

        def query(expr: str) -> list[dict[str, Any]]:
            answer = _get(f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
            return list(answer["data"]["result"])

        _wait("Prometheus scraping the three sites", lambda: len(query("upscope_build_info")) == 3, 120)

        # --- the Fleet page in a browser ---------------------------------------------------------
        port = free_port()
        procs.start("dashboard", [*CLI, "dashboard", "--prometheus", prom, "--addr", f"127.0.0.1:{port}"],
                    env={**os.environ, "UPSCOPE_FLEET_REFRESH_S": "10"}, start_new_session=True)
        url = f"http://127.0.0.1:{port}/"
        _wait("the dashboard", lambda: urllib.request.urlopen(url + "_stcore/health", timeout=2).status == 200, 60)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1600, "height": 1400})
            page.goto(url)
            page.get_by_role("heading", name="Fleet", exact=True).wait_for(timeout=60_000)

            def problems() -> list[str]:
                return [t for t in page.locator("[class*='st-key-fleet-problem-']").all_inner_texts() if t.strip()]

            def fleet_as_expected() -> list[str] | None:
                listed = problems()
                blocked = next((h for h in listed if "fleet-blocked" in h), "")
                jwt = next((h for h in listed if "fleet-jwt" in h), "")
                body = page.locator("body").inner_text()
                ok = ("trunk not registered" in blocked and "itsp.not-registered.firewall" in blocked
                      and CATALOGUE["itsp.not-registered.firewall"].title in blocked
                      and "rest-api.jwt-expired" in jwt and "JWT expired" in jwt
                      and "ITSP status: Registered" in jwt
                      and not any("fleet-healthy" in h for h in listed)
                      and "3 systems" in body)
                return listed if ok else None

            listed = _wait("the Fleet page listing the blocked and the JWT site as problems, the healthy one not",
                           fleet_as_expected, 240, every=3)
            assert all("critical" in h for h in listed), listed
            # Problem systems first: the table's first rows are the two problem sites.
            grid = page.get_by_test_id("stDataFrame").first
            grid.wait_for()
            order = page.evaluate(
                "() => Array.from(document.querySelectorAll('[data-testid=stDataFrame] [role=row]'))"
                ".map(r => r.innerText)")
            systems = [next((s for s in SITES if s in row), None) for row in order]
            systems = [s for s in systems if s]
            assert systems[-1] == "fleet-healthy" and set(systems[:2]) == {"fleet-blocked", "fleet-jwt"}, order
            if os.environ.get("UPSCOPE_UPDATE_SCREENSHOTS") == "1":
                page.wait_for_timeout(1000)
                page.screenshot(path=str(ROOT / "docs" / "screenshots" / "15-fleet.png"), full_page=True)
            # A row's link opens that system's own pages (its upscope serve, found through Prometheus).
            # Streamlit opens markdown links in a new tab: a new browser session, as a NOC would get.
            with page.context.expect_page() as opened:
                page.get_by_role("link", name="Open the pages of fleet-blocked").click()
            system_page = opened.value
            system_page.get_by_role("heading", name="Overview", exact=True).wait_for(timeout=60_000)
            system_page.get_by_text("fleet-blocked · service http://", exact=False).first.wait_for(timeout=60_000)
            system_page.get_by_text("Not registered", exact=True).first.wait_for(timeout=60_000)
            browser.close()

        # --- Alertmanager: the two problem sites alert, each with its system; the healthy never --
        def delivered(name: str, system: str) -> dict[str, Any] | None:
            return next((a for _, a in hook.alerts() if a["labels"]["alertname"] == name
                         and a["labels"].get("system") == system and a["status"] == "firing"), None)

        blocked = _wait("UpscopeTrunkNotRegistered for fleet-blocked at the webhook",
                        lambda: delivered("UpscopeTrunkNotRegistered", "fleet-blocked"), 420, every=2)
        jwt = _wait("UpscopeJwtExpired for fleet-jwt at the webhook",
                    lambda: delivered("UpscopeJwtExpired", "fleet-jwt"), 120, every=2)
        print(f"\nUpscopeTrunkNotRegistered delivered {time.monotonic() - served_at:.0f} s after serve started")
        assert blocked["annotations"]["finding"] == "itsp.not-registered.firewall"
        assert blocked["annotations"]["runbook_url"] == f"{DOCS_URL}#itsp.not-registered.firewall"
        assert jwt["annotations"]["runbook_url"] == f"{DOCS_URL}#rest-api.jwt-expired"
        # The notification text made from what Alertmanager delivered carries remedy and link.
        payload = next(n for n in hook.received if any(a["labels"]["alertname"] == "UpscopeTrunkNotRegistered"
                                                        for a in n["alerts"]))
        (tmp_path / "delivered.json").write_text(json.dumps(payload))
        rendered = subprocess.run(
            ["amtool", "template", "render", f"--template.glob={AM_DIR / 'templates'}/*.tmpl",
             '--template.text={{ template "upscope.text" . }}', f"--template.data={tmp_path / 'delivered.json'}"],
            capture_output=True, text=True, timeout=60)
        assert rendered.returncode == 0, rendered.stderr
        assert CATALOGUE["itsp.not-registered.firewall"].remedy in rendered.stdout
        assert "/overview?system=fleet-blocked" in rendered.stdout

        time.sleep(max(0.0, served_at + WATCH_S - time.monotonic()))
        healthy = [(r, a["labels"]) for r, a in hook.alerts() if a["labels"].get("system") == "fleet-healthy"]
        assert healthy == [], f"alerts for the healthy site: {healthy}"
        pending = [a["labels"] for a in _get(f"{prom}/api/v1/alerts")["data"]["alerts"]
                   if a["labels"].get("system") == "fleet-healthy"]
        assert pending == [], f"the healthy site has pending/firing alerts in Prometheus: {pending}"
        assert {a["labels"]["system"] for _, a in hook.alerts()} <= {"fleet-blocked", "fleet-jwt"}
