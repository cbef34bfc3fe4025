"""The dashboard in a real browser: Debian's chromium driven by playwright against
``upscope dashboard --lab …`` (the lab, the analysis engine, the diagnosis and Streamlit, all real).

Screenshots of every page go to a folder the test prints; with ``UPSCOPE_UPDATE_SCREENSHOTS=1``
they are also copied to ``docs/screenshots/`` for the README. The time from navigation to the
first "Registered" on the Overview is measured and printed, not asserted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# one worker runs the module: its tests share one expensive module fixture
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("browser")]

ROOT = Path(__file__).resolve().parents[2]
PCAPS = ROOT / ".." / "shared" / "pcaps"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = ["Overview", "Diagnoses", "Calls", "Media", "Registration", "Users & licenses", "Firewall",
         "Trace profiles & support", "Analyze a capture"]
UPLOAD = "sipnab_SIP_CALL_RTP_G711.pcap"

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dashboard:
    """``upscope dashboard ARGS`` on a free loopback port; stopped by pid (SIGTERM makes it stop its
    lab, service and Streamlit children), with a kill of its own process group as the last resort."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log.open("wb")
        cmd = [sys.executable, "-c", "from dashboard.cli import main; main()", "dashboard", *args,
               "--addr", f"127.0.0.1:{self.port}"]
        env = {**os.environ, "UPSCOPE_REFRESH_S": "3"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        try:
            self.up_at = self._wait_up()
        except BaseException:
            self.stop()
            raise

    def _wait_up(self) -> float:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"upscope dashboard exited with {self.proc.returncode}"
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic()
            except OSError:
                time.sleep(0.3)
        raise AssertionError("dashboard not up within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def shots() -> Iterator[Path]:
    # Outside pytest's tmp dirs, which other test runs on the machine prune.
    folder = Path(os.environ.get("UPSCOPE_SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="upscope-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    yield folder
    if os.environ.get("UPSCOPE_UPDATE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for png in folder.glob("*.png"):
            shutil.copy2(png, target / png.name)
        print(f"screenshots copied to {target}")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _dashboard(scenario: str, tmp_path: Path) -> Dashboard:
    return Dashboard(["--lab", scenario, "--lab-dir", str(tmp_path / f"lab-{scenario}")],
                     tmp_path / f"dashboard-{scenario}.log")


def _open(page: object, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=30_000)  # type: ignore[attr-defined]


def _shot(page: object, folder: Path, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the viewport grows to fit."""
    page.wait_for_timeout(800)  # type: ignore[attr-defined]  # let plotly finish drawing
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1400, "height": min(4000, max(1000, int(height)))})  # type: ignore[attr-defined]
    page.wait_for_timeout(300)  # type: ignore[attr-defined]
    page.screenshot(path=str(folder / f"{name}.png"))  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1400, "height": 1000})  # type: ignore[attr-defined]


def _site_api_key(site: Path) -> str:
    for line in site.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("api_key:"):
            return line.split(":", 1)[1].strip()
    return ""


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def test_healthy_lab_every_page_ladder_and_upload(browser: object, shots: Path, tmp_path: Path) -> None:
    dash = _dashboard("healthy", tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(dash.url)
        page.get_by_text("Registered", exact=True).first.wait_for(timeout=60_000)
        first_render = time.monotonic() - dash.up_at
        print(f"\nfirst render of 'Registered' {first_render:.2f} s after the server was up")
        _shot(page, shots, "01-overview")
        # The tiles refresh by themselves (st.fragment, UPSCOPE_REFRESH_S=3): the data time moves on
        # without a reload.
        stamp = page.get_by_text("data of", exact=False).first
        before = stamp.inner_text()
        deadline = time.monotonic() + 30
        while stamp.inner_text() == before and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        assert stamp.inner_text() != before, "the Overview did not refresh by itself"
        for n, name in enumerate(PAGES[1:], start=2):
            _open(page, name)
            if name == "Calls":
                # The lab places calls continuously; reload until one is listed, then its ladder.
                ladder = page.locator(".js-plotly-plot").first
                for _ in range(6):
                    try:
                        ladder.wait_for(timeout=15_000)
                        break
                    except sync_api.TimeoutError:
                        page.reload()
                        page.get_by_role("heading", name="Calls", exact=True).wait_for(timeout=30_000)
                ladder.wait_for(timeout=15_000)
                assert "INVITE" in ladder.inner_text()
                assert "200 OK" in ladder.inner_text()
                # A click on the 4th arrow (the 200 OK of INVITE/100/180/200) shows that message.
                page.locator(".js-plotly-plot .scatterlayer .point").nth(3).click(force=True)
                page.get_by_test_id("stCode").filter(has_text="SIP/2.0 200").first.wait_for(timeout=30_000)
                # The call's capture (SIP + RTP) from the service, as a pcap download.
                page.get_by_role("button", name="Prepare capture of this call (SIP + RTP)").click()
                with page.expect_download(timeout=30_000) as dl:
                    page.get_by_role("button", name="Download call capture").click()
                blob = Path(dl.value.path()).read_bytes()
                assert blob[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a") and len(blob) > 200
            if name == "Trace profiles & support":
                page.get_by_role("button", name="Prepare support bundle").click()
                with page.expect_download(timeout=60_000) as dl:
                    page.get_by_role("button", name="Download support bundle").click()
                with zipfile.ZipFile(dl.value.path()) as z:
                    everything = b"".join(z.read(n) for n in z.namelist())
                    assert "report.json" in z.namelist()
                # The lab's site file has the API key inline: the bundle must not carry it.
                api_key = _site_api_key(tmp_path / "lab-healthy" / "site.yaml")
                assert len(api_key) > 8 and api_key.encode() not in everything
            api_key = _site_api_key(tmp_path / "lab-healthy" / "site.yaml")
            assert api_key not in page.locator("body").inner_text(), f"API key shown on {name}"
            _shot(page, shots, f"{n:02d}-{_slug(name)}")
        upload = PCAPS / UPLOAD
        if not upload.exists():
            pytest.skip(f"{PCAPS} has no {UPLOAD}: upload part not run")
        page.locator("input[type=file]").first.set_input_files(str(upload))
        page.get_by_role("button", name="Analyze", exact=True).click()
        done = page.get_by_text(f"upload {UPLOAD}:", exact=False).first
        done.wait_for(timeout=120_000)
        summary = done.inner_text()
        # tshark (the oracle) sees 3 RTP streams tied to SDP here; the engine may find more by heuristic.
        streams = int(summary.split(" RTP streams")[0].rsplit(" ", 1)[1])
        assert streams >= 3, summary
        _shot(page, shots, "10-analyze-upload")
        _open(page, "Media")
        page.get_by_text("Showing the uploaded capture", exact=False).first.wait_for(timeout=30_000)
        _shot(page, shots, "11-media-upload")
    finally:
        dash.stop()
    assert dash.proc.returncode is not None


def test_blocked_trunk_shows_not_registered_and_the_finding(browser: object, shots: Path,
                                                            tmp_path: Path) -> None:
    dash = _dashboard("sip-tls-blocked", tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        # The first session of a fresh server arrives by a deep link: the page itself must open.
        page.goto(dash.url + "firewall")
        page.get_by_role("heading", name="Firewall", exact=True).wait_for(timeout=30_000)
        start = time.monotonic()
        page.goto(dash.url)
        # The Overview refreshes itself (st.fragment); no reload within the 60 s.
        page.get_by_text("Not registered", exact=True).first.wait_for(timeout=60_000)
        page.get_by_text("itsp.not-registered.firewall", exact=False).first.wait_for(
            timeout=max(1_000, int(60_000 - 1000 * (time.monotonic() - start))))
        print(f"\n'Not registered' + finding after {time.monotonic() - start:.1f} s")
        _shot(page, shots, "12-overview-sip-tls-blocked")
        _open(page, "Firewall")
        _shot(page, shots, "13-firewall-sip-tls-blocked")
        _open(page, "Diagnoses")
        page.get_by_text("Remedy:", exact=False).first.wait_for(timeout=30_000)
        _shot(page, shots, "14-diagnoses-sip-tls-blocked")
    finally:
        dash.stop()


def test_site_mode_runs_the_service_on_the_site(browser: object, tmp_path: Path) -> None:
    """``--site``: the example site moved onto loopback endpoints nobody answers; the service probes
    them and the Overview says the trunk is not registered (never a guess of "Registered")."""
    text = (ROOT / "examples" / "site-healthy.yaml").read_text(encoding="utf-8")
    for seed, loop in (("35.246.178.13", "127.0.0.3"), ("34.159.228.55", "127.0.0.4"),
                       ("34.117.105.255", "127.0.0.5")):
        text = text.replace(f"host: {seed}", f"host: {loop}")
    site = tmp_path / "site.yaml"
    site.write_text(text, encoding="utf-8")
    dash = Dashboard(["--site", str(site)], tmp_path / "dashboard-site.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(dash.url)
        page.get_by_text("acme-munich", exact=False).first.wait_for(timeout=60_000)
        page.get_by_text("Not registered", exact=True).first.wait_for(timeout=60_000)
    finally:
        dash.stop()
