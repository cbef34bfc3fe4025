"""The dashboard in a real browser: Debian's chromium driven by playwright against
``upscope dashboard --lab …`` (the lab, the analysis engine, the diagnosis and Streamlit, all real).

Screenshots of every page go to a folder the test prints; with ``UPSCOPE_UPDATE_SCREENSHOTS=1``
they are also copied to ``docs/screenshots/`` for the README. The time from navigation to the
first "Registered" on the Overview is measured and printed, not asserted.
"""

from __future__ import annotations

import contextlib
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
from datetime import UTC, datetime, timedelta
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


def _stamp(page: object) -> datetime:
    """The "data of …" time of the page's banner (the browser runs in UTC)."""
    text = page.get_by_text("data of", exact=False).first.inner_text()  # type: ignore[attr-defined]
    return datetime.strptime(text.rsplit("data of ", 1)[1].strip()[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _call_starts(page: object) -> list[datetime]:
    """The start times in the Calls page's list (the grid's accessible cells: first column)."""
    grid = page.get_by_test_id("stDataFrame").first  # type: ignore[attr-defined]
    out = []
    grid.locator("[role=gridcell]").first.wait_for(timeout=30_000, state="attached")
    for cell in grid.locator("[role=gridcell]").all_text_contents():
        with contextlib.suppress(ValueError):
            out.append(datetime.strptime(cell.strip()[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
    return out


def _wait_ladder(page: object) -> object:
    """The lab places calls continuously; reload until one is listed, then its ladder."""
    ladder = page.locator(".js-plotly-plot").first  # type: ignore[attr-defined]
    for _ in range(6):
        try:
            ladder.wait_for(timeout=15_000)
            break
        except sync_api.TimeoutError:
            page.reload()  # type: ignore[attr-defined]
            page.get_by_role("heading", name="Calls", exact=True).wait_for(timeout=30_000)  # type: ignore[attr-defined]
    ladder.wait_for(timeout=15_000)
    return ladder


def test_healthy_lab_every_page_ladder_and_upload(browser: object, shots: Path, tmp_path: Path) -> None:
    dash = _dashboard("healthy", tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        # A bookmarked /overview opens the Overview (it popped up "Page not found").
        page.goto(dash.url + "overview")
        page.get_by_text("Registered", exact=True).first.wait_for(timeout=60_000)
        first_render = time.monotonic() - dash.up_at
        print(f"\nfirst render of 'Registered' {first_render:.2f} s after the server was up")
        assert page.get_by_role("heading", name="Overview", exact=True).is_visible()
        assert page.get_by_text("Page not found", exact=False).count() == 0
        page.goto(dash.url)
        page.get_by_text("Registered", exact=True).first.wait_for(timeout=60_000)
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
                ladder = _wait_ladder(page)
                assert "INVITE" in ladder.inner_text()
                assert "200 OK" in ladder.inner_text()
                # A click on the 4th arrow (the 200 OK of INVITE/100/180/200) shows that message in full.
                page.locator(".js-plotly-plot .scatterlayer .point").nth(3).click(force=True)
                page.get_by_test_id("stCode").filter(has_text="SIP/2.0 200 OK").first.wait_for(timeout=30_000)
                # The first arrow, the INVITE: the whole message with its SDP, lines that matter marked,
                # and a copy button on the message.
                invite = page.get_by_test_id("stCode").filter(
                    has_text=re.compile(r"^INVITE sip:.*Content-Type: application/sdp", re.S)).first
                for _ in range(3):  # a click while the chart is redrawn after the last one is lost
                    page.wait_for_timeout(1_500)
                    page.locator(".js-plotly-plot .scatterlayer .point").nth(0).click(force=True)
                    try:
                        invite.wait_for(timeout=10_000)
                        break
                    except sync_api.TimeoutError:
                        continue
                invite.wait_for(timeout=10_000)
                text = invite.inner_text()
                assert text.startswith("INVITE sip:") and "Call-ID: " in text and "\nm=audio " in text
                marks = page.locator("mark").all_inner_texts()
                assert any(m.startswith("c=IN IP4 ") for m in marks) and any(m.startswith("m=audio ") for m in marks)
                copy = invite.locator("button[aria-label='Copy to clipboard']")
                if not copy.count():
                    invite.hover(force=True)  # the toolbar shows on hover
                assert copy.count() == 1
                _shot(page, shots, "03-calls")
                # The call's capture (SIP + RTP) from the service: one click.
                # A click that lands while the page reruns (the live refresh) is lost: click again.
                button = page.get_by_role("button", name="Download the call's capture (SIP + RTP, pcap)")
                for attempt in range(3):
                    try:
                        with page.expect_download(timeout=30_000) as dl:
                            button.click()
                        break
                    except sync_api.TimeoutError:
                        if attempt == 2:
                            raise
                blob = Path(dl.value.path()).read_bytes()
                assert blob[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a") and len(blob) > 200
                with page.expect_download(timeout=30_000) as dl:
                    page.get_by_role("button", name="Ladder as SVG").click()
                assert Path(dl.value.path()).read_text().startswith("<svg ")
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
            if name != "Calls":
                _shot(page, shots, f"{n:02d}-{_slug(name)}")
        # The last hour lists calls the service's live window (60 s) has forgotten: from its history.
        _open(page, "Calls")
        deadline = time.monotonic() + 150
        older: list[datetime] = []
        while time.monotonic() < deadline:
            now = _stamp(page)
            older = [t for t in _call_starts(page) if t < now - timedelta(seconds=70)]
            if older:
                break
            page.wait_for_timeout(5_000)
            page.reload()
            page.get_by_role("heading", name="Calls", exact=True).wait_for(timeout=30_000)
            _wait_ladder(page)
        assert older, "no call older than the live window in the last hour"
        assert page.get_by_test_id("stSidebar").get_by_text("Last hour", exact=False).count() >= 1
        print(f"\n{len(older)} calls older than the live window listed")
        upload = PCAPS / UPLOAD
        if not upload.exists():
            pytest.skip(f"{PCAPS} has no {UPLOAD}: upload part not run")
        _open(page, "Analyze a capture")
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


def test_one_way_audio_is_one_problem_with_its_count(browser: object, shots: Path, tmp_path: Path) -> None:
    """The one-way-audio lab: every call is one-way, yet the Overview lists one problem — its count,
    the calls it affects, one remedy — and the media tile agrees."""
    dash = _dashboard("one-way-audio", tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(dash.url)
        box = page.get_by_test_id("stAlertContentError").filter(has_text="media.one-way-audio")
        deadline = time.monotonic() + 90
        count = 0
        while time.monotonic() < deadline:
            if box.count():
                found = re.search(r"(\d+)×", box.first.inner_text())
                count = int(found.group(1)) if found else 1
                if count >= 3:
                    break
            page.wait_for_timeout(1_000)
        assert count >= 3, "the one-way finding did not reach three calls"
        assert box.count() == 1  # one problem, not one box per call
        text = box.first.inner_text()
        assert text.count("Remedy:") == 1 and "Affected:" in text
        media = page.get_by_test_id("stMetric").filter(has_text="Media quality").first
        assert "One-way audio" in media.inner_text()
        print(f"\none-way audio: one finding, {count} calls")
        _shot(page, shots, "15-overview-one-way-audio")
    finally:
        dash.stop()


def _lab_capture(tmp_path: Path, scenario: str, seconds: float, per_minute: float, hold: float) -> Path:
    out = tmp_path / f"lab-{scenario}"
    proc = subprocess.run([sys.executable, "-c", "from dashboard.cli import main; main()", "lab", "--scenario",
                           scenario, "--duration", str(seconds), "--port", "0", "--calls-per-minute", str(per_minute),
                           "--call-seconds", str(hold), "--trunk-lines", "20", "--out", str(out)],
                          capture_output=True, timeout=180)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-500:]
    return out


def test_media_page_with_many_streams_stays_readable(browser: object, shots: Path, tmp_path: Path) -> None:
    """A capture of the media-impaired lab with ≥ 20 RTP streams: a table of all of them, worst
    first; one chart per picked stream whose layout has no legend over the plot and the fixed
    scales (loss 0–100 %, MOS 1–5), with data in every panel."""
    # calls of 25 s (three 10-s intervals each), one every 3 s: about 30 streams
    lab = _lab_capture(tmp_path, "media-impaired", 45, 20, 25)
    dash = Dashboard(["--capture", str(lab / "lab.pcapng"), "--keylog", str(lab / "sslkeys.log")],
                     tmp_path / "dashboard-media.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(dash.url + "media")
        page.get_by_role("heading", name="Media", exact=True).wait_for(timeout=60_000)
        title = page.get_by_test_id("stMarkdown").filter(has_text="one-way audio first, then the worst").first
        title.wait_for(timeout=60_000)
        streams = int(title.inner_text().split(" streams")[0])
        assert streams >= 20, title.inner_text()
        charts = page.locator(".js-plotly-plot")
        charts.first.wait_for(timeout=30_000)
        page.wait_for_timeout(1_500)
        layouts = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => ({
            showlegend: el._fullLayout.showlegend, loss: el._fullLayout.yaxis.range,
            mos: el._fullLayout.yaxis3.range, title: el._fullLayout.title.text,
            points: el._fullData.map(d => Array.from(d.y || []).filter(v => v !== null && !Number.isNaN(v)).length),
            xtitle: el._fullLayout.xaxis3.title.text, height: el.getBoundingClientRect().height}))""")
        assert 1 <= len(layouts) <= 12
        for chart in layouts:
            assert chart["showlegend"] is False
            assert chart["loss"] == [0, 100] and chart["mos"] == [1, 5]
            assert "#" in chart["title"] and "MOS" in chart["title"] and chart["xtitle"].startswith("time (")
            assert all(n >= 1 for n in chart["points"]) and chart["height"] >= 500, chart
        # nothing sits on the plot area: the axis titles and tick labels are inside the chart box
        box = charts.first.bounding_box()
        for sel in (".xtitle", ".ytitle", ".gtitle"):
            for el in charts.first.locator(sel).all():
                b = el.bounding_box()
                assert b is not None and box is not None and box["x"] <= b["x"] and b["x"] + b["width"] <= box["x"] + box["width"] + 1
        print(f"\nmedia page: {streams} streams, {len(layouts)} charts")
        _shot(page, shots, "04-media")
    finally:
        dash.stop()


def _trace_block(n: int, ts: float, src: tuple[str, int], dst: tuple[str, int], message: str, out: bool) -> str:
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%m/%d/%Y %H:%M:%S.%f")
    end = "<<OUT-END>>" if out else ">>IN-END<<"
    return (f'(SIP_SA [ldh:{src[0] if out else dst[0]}] {0x2A00 + n:x} "{stamp}" SIP message)\r\n'
            f"from {src[0]}:{src[1]} to {dst[0]}:{dst[1]}\r\n{message}{end}\r\n")


def _dtmf_trace(capture: Path, path: Path) -> None:
    """The OSBiz trace log of the call whose RTP the capture holds: the capture has the media
    (10.0.0.51:4000 → 10.0.0.45:10866, PCMU with RFC 4733 events), the trace the SIP that set it up."""
    times = subprocess.run(["tshark", "-r", str(capture), "-T", "fields", "-e", "frame.time_epoch"],
                           capture_output=True, text=True, check=True, timeout=60).stdout.split()
    first, last = float(times[0]), float(times[-1])
    pbx, far = ("10.0.0.45", 5060), ("10.0.0.51", 5060)

    def sdp(addr: str, port: int) -> str:
        return (f"v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n"
                f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                "a=fmtp:101 0-16\r\na=sendrecv\r\n")

    def msg(start: str, cseq: str, body: str = "", to_tag: bool = True) -> str:
        head = [start, "Via: SIP/2.0/UDP 10.0.0.45:5060;branch=z9hG4bK-dtmf-" + cseq.replace(" ", ""),
                "From: <sip:+4989700710@10.0.0.45>;tag=a1", "To: <sip:2013785496@10.0.0.51>" + (";tag=b2" if to_tag else ""),
                "Call-ID: dtmf-call@10.0.0.45", f"CSeq: {cseq}"]
        if body:
            head.append("Content-Type: application/sdp")
        return "\r\n".join([*head, f"Content-Length: {len(body)}", "", body])

    blocks = [
        _trace_block(1, first - 1.0, pbx, far, msg("INVITE sip:2013785496@10.0.0.51 SIP/2.0", "1 INVITE",
                                                   sdp("10.0.0.45", 10866), to_tag=False), True),
        _trace_block(2, first - 0.6, far, pbx, msg("SIP/2.0 200 OK", "1 INVITE", sdp("10.0.0.51", 4000)), False),
        _trace_block(3, first - 0.55, pbx, far, msg("ACK sip:2013785496@10.0.0.51 SIP/2.0", "1 ACK"), True),
        _trace_block(4, last + 0.5, pbx, far, msg("BYE sip:2013785496@10.0.0.51 SIP/2.0", "2 BYE"), True),
        _trace_block(5, last + 0.55, far, pbx, msg("SIP/2.0 200 OK", "2 BYE"), False),
    ]
    path.write_text("".join(blocks), encoding="utf-8", newline="")


def test_dtmf_keys_of_a_call(browser: object, shots: Path, tmp_path: Path) -> None:
    """asterisk_ulaw-2013785496_dtmf.pcap (RFC 4733 events, tshark: the digits 2013785496) uploaded
    with the OSBiz trace log of its call: the call shows the keys pressed, so does its stream."""
    capture = PCAPS / "asterisk_ulaw-2013785496_dtmf.pcap"
    if not capture.exists():
        pytest.skip(f"{capture} not present (the shared capture corpus lives in ../shared/pcaps)")
    trace = tmp_path / "osbiz-trace.log"
    _dtmf_trace(capture, trace)
    dash = Dashboard(["--capture", str(capture)], tmp_path / "dashboard-dtmf.log")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        page.goto(dash.url + "analyze")
        page.get_by_role("heading", name="Analyze a capture", exact=True).wait_for(timeout=60_000)
        inputs = page.locator("input[type=file]")
        inputs.nth(0).set_input_files(str(capture))
        inputs.nth(2).set_input_files(str(trace))
        page.get_by_role("button", name="Analyze", exact=True).click()
        page.get_by_text("upload asterisk_ulaw", exact=False).first.wait_for(timeout=120_000)
        _open(page, "Calls")
        keys = page.get_by_test_id("stMarkdown").filter(has_text="Keys pressed:").first
        keys.wait_for(timeout=60_000)
        assert "2013785496" in keys.inner_text()
        _shot(page, shots, "16-calls-dtmf")
        _open(page, "Media")
        grid = page.get_by_test_id("stDataFrame").first
        grid.locator("[role=gridcell]").first.wait_for(timeout=30_000, state="attached")
        assert "2013785496" in [t.strip() for t in grid.locator("[role=gridcell]").all_text_contents()]
    finally:
        dash.stop()


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
