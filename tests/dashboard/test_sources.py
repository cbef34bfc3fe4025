"""The data gateway's two sources: the service's JSON API over a real loopback HTTP server, and
offline analyses of real captures (per-call export checked with tshark as the oracle)."""

from __future__ import annotations

import functools
import http.server
import io
import json
import shutil
import subprocess
import threading
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry
from streamlit.testing.v1 import AppTest

from collectors.producer import Inputs
from collectors.runtime.history import History
from core.site.loader import load_site_text
from dashboard import api, service_source, sources
from dashboard.http_server import Response, UpscopeHttpServer
from tests.dashboard import snapshots
from tests.dashboard.conftest import texts

PCAPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "pcaps"
G711 = PCAPS / "sipnab_SIP_CALL_RTP_G711.pcap"


class _Api(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {}

    def do_GET(self) -> None:
        status, ctype, body = self.routes.get(self.path, (404, "application/json", b'{"error": "not found"}'))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[tuple[str, dict[str, tuple[int, str, bytes]]]]:
    routes: ClassVar[dict[str, tuple[int, str, bytes]]] = {}
    handler = type("Api", (_Api,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", routes
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _json(value: Any, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(value).encode()


def test_service_source_reads_snapshot_history_capture_bundle(service: Any) -> None:
    url, routes = service
    snap = snapshots.sip_tls_blocked()
    routes["/api/snapshot"] = _json(snap)
    routes["/api/history?table=findings&limit=5000"] = _json({"table": "findings", "rows": [
        {"ts": 100.0, "event": "opened", "finding_id": "itsp.not-registered.firewall", "subject": "",
         "severity": "critical", "title": "t"},
        {"ts": 160.0, "event": "closed", "finding_id": "itsp.not-registered.firewall", "subject": "",
         "severity": "", "title": ""},
        {"ts": 200.0, "event": "opened", "finding_id": "itsp.not-registered.firewall", "subject": "",
         "severity": "critical", "title": "t"},
    ]})
    routes["/api/call.pcap?call_id=a%40b"] = (200, "application/vnd.tcpdump.pcap", b"\xd4\xc3\xb2\xa1pcap")
    routes["/api/bundle"] = (200, "application/zip", b"PK-zip")
    src = service_source.ServiceSource(url)
    assert src.snapshot()["itsp_status"]["label"] == "Not registered"
    assert [(h["opened"], h["closed"]) for h in src.history()] == [(100.0, 160.0), (200.0, None)]
    assert src.call_capture("a@b") == b"\xd4\xc3\xb2\xa1pcap"
    assert src.call_capture("gone") is None  # 404: no longer in the capture window
    assert src.bundle() == b"PK-zip"


def test_service_source_errors_are_one_line(service: Any) -> None:
    url, routes = service
    routes["/api/snapshot"] = _json({"error": "no snapshot yet"}, 503)
    with pytest.raises(sources.SourceError, match=r"answered HTTP 503"):
        service_source.ServiceSource(url).snapshot()
    routes["/api/snapshot"] = (200, "application/json", b"{not json")
    with pytest.raises(sources.SourceError, match="invalid JSON"):
        service_source.ServiceSource(url).snapshot()
    routes["/api/snapshot"] = _json([1, 2])
    with pytest.raises(sources.SourceError, match="not a snapshot"):
        service_source.ServiceSource(url).snapshot()


def test_page_shows_a_down_service_plainly(render: Callable[..., AppTest]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    at = render("overview", source=service_source.ServiceSource(f"http://127.0.0.1:{port}", timeout_s=2))
    assert "unreachable" in at.error[0].value
    assert not at.metric


@pytest.fixture
def g711() -> sources.OfflineSource:
    if not G711.exists():
        pytest.skip(f"{G711} not found (the shared captures live in ../shared/pcaps)")
    return sources.load_artifacts(sources.ArtifactSpec((str(G711),), label="g711"))


def test_offline_call_capture_has_the_calls_packets(g711: sources.OfflineSource, tmp_path: Path) -> None:
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    call = next(c for c in g711.snapshot()["analysis"]["calls"] if c["answered"])
    blob = g711.call_capture(call["call_id"])
    assert blob is not None
    out = tmp_path / "call.pcap"
    out.write_bytes(blob)
    sip = subprocess.run(["tshark", "-n", "-r", str(out), "-Y", f'sip.Call-ID == "{call["call_id"]}"'],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    # tshark on the original capture: the same SIP messages of that call.
    ref = subprocess.run(["tshark", "-n", "-r", str(G711), "-Y", f'sip.Call-ID == "{call["call_id"]}"'],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(sip) == len(ref) > 0
    rtp = subprocess.run(["tshark", "-n", "-r", str(out), "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    streams = [g711.snapshot()["analysis"]["rtp_streams"][i] for i in call["streams"]]
    assert len(rtp) >= sum(s["packets"] for s in streams) > 0


def test_offline_call_capture_unknown_call(g711: sources.OfflineSource) -> None:
    with pytest.raises(sources.SourceError, match="not found"):
        g711.call_capture("no-such-call")


def test_bundle_has_report_and_no_secret() -> None:
    secret_key = "0f0e0d0c-aaaa-bbbb-cccc-9f8e7d6c5b4a"
    text = snapshots.site_text(**{"api_key: env:UPSCOPE_API_KEY": f"api_key: {secret_key}"})
    src = sources.OfflineSource.from_inputs(Inputs(site=load_site_text(text), analysis=None), now=snapshots.NOW)
    blob = src.bundle()
    assert blob is not None
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        names = z.namelist()
        everything = b"".join(z.read(n) for n in names)
    assert "report.json" in names and "site.yaml" in names
    assert secret_key.encode() not in everything


def test_secrets_are_never_rendered(render: Callable[..., AppTest]) -> None:
    """An inline API key and JWT in the site file: no page shows either."""
    import jwt as pyjwt

    api_key = "5ecret5e-cafe-babe-dead-beef00000001"
    token = pyjwt.encode({"sub": "x", "exp": int(snapshots.NOW) + 86400 * 300}, "k" * 32, algorithm="HS256")
    text = snapshots.site_text(**{"api_key: env:UPSCOPE_API_KEY": f"api_key: {api_key}",
                                  "flavour: openscape": "flavour: unify-video", "jwt: null": f"jwt: {token}"})
    site = load_site_text(text)
    snap = sources.OfflineSource.from_inputs(Inputs(site=site, analysis=None), now=snapshots.NOW).snapshot()
    assert snap["jwt"]["status"] == "Active" and snap["jwt"]["days_left"] == 300
    for page in ("overview", "diagnoses", "calls", "media", "registration", "users", "firewall", "traces",
                 "analyze"):
        at = render(page, snap)
        shown = texts(at) + "".join(str(d.value.to_dict()) for d in at.dataframe)
        assert api_key not in shown and token not in shown and token[:40] not in shown, page
    overview = {m.label.split(" ", 1)[1]: m.value for m in render("overview", snap).metric}
    assert overview["JWT"] == "300 days left"


class _HistoryService:
    """What the /api/calls and /api/history routes read of a running Service: its history (a real
    SQLite file) and its clock. The snapshot route serves a fixed snapshot."""

    def __init__(self, history: History, now: float) -> None:
        self.history = history
        self._now = now

    def clock(self) -> float:
        return self._now

    def call_ids_by_digest(self) -> dict[str, str]:
        return {}


@pytest.fixture
def history_api(tmp_path: Path) -> Iterator[tuple[str, History]]:
    history = History(tmp_path / "h.db")
    stub = _HistoryService(history, snapshots.NOW)
    server = UpscopeHttpServer(CollectorRegistry(), "127.0.0.1", 0)
    for path in ("/api/calls", "/api/history"):
        server.add_route(path, functools.partial(api.ROUTES[path], stub))  # type: ignore[arg-type]
    body = json.dumps(snapshots.healthy()).encode()
    server.add_route("/api/snapshot", lambda _req: Response(200, body, "application/json"))
    with server:
        yield server.url, history
    history.close()


def _call(ts: float, answered: bool, code: int, caller: str = "100", callee: str = "200",
          one_way: bool = False) -> dict[str, Any]:
    return {"call_id_hash": f"h{ts}", "caller": caller, "callee": callee, "final_code": code, "answered": answered,
            "setup_ms": 100.0, "duration_s": 3.0 if answered else None, "one_way_audio": one_way}


def test_overview_calls_of_the_range_come_from_the_service_history(
        history_api: tuple[str, History], render: Callable[..., AppTest]) -> None:
    """The service's snapshot holds only its evidence window: the tile counts the history's calls
    of the picked range (here the default, the last hour) through /api/calls."""
    url, history = history_api
    for ts, answered, code in ((100, True, 200), (200, True, 200), (300, False, 486),
                               (400, False, 487),  # cancelled by the caller: not failed
                               (5000, True, 200)):  # older than the hour
        history.call_completed(snapshots.NOW - ts, _call(snapshots.NOW - ts, answered, code))
    at = render("overview", source=service_source.ServiceSource(url))
    tiles = {m.label.split(" ", 1)[1]: m.value for m in at.metric}
    assert tiles["Calls, last hour"] == "2 / 1"
    assert "4 completed calls in all" in texts(at)
    at.selectbox(key="upscope.range").select("Last 24 hours").run()
    assert {m.label.split(" ", 1)[1]: m.value for m in at.metric}["Calls, last 24 hours"] == "3 / 1"


def test_service_calls_page_searches_and_pages_the_history(history_api: tuple[str, History]) -> None:
    """/api/calls: a time range, part of a number or a whole Call-ID, statuses, pages of the newest."""
    url, history = history_api
    for n in range(120):
        history.call_completed(snapshots.NOW - 10 * n, _call(snapshots.NOW - 10 * n, n % 3 != 0, 200 if n % 3 else 503,
                                                            caller=f"+4989700{n:03d}", one_way=n == 7))
    history.call_completed(snapshots.NOW - 50, {**_call(snapshots.NOW - 50, True, 200),
                                                "call_id_hash": sources.digest("abc@pbx")})
    src = service_source.ServiceSource(url)
    page = src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, limit=50)
    assert page.total == 121 and len(page.rows) == 50
    assert [r["ts"] for r in page.rows] == sorted((r["ts"] for r in page.rows), reverse=True)
    last = src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, offset=100, limit=50)
    assert len(last.rows) == 21
    assert src.calls(snapshots.NOW - 600, snapshots.NOW + 1).total == 62  # n = 0..60 and abc@pbx
    assert [r["caller"] for r in src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, "89700042").rows] == ["+4989700042"]
    assert len(src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, "abc@pbx").rows) == 1  # by its digest
    assert src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, statuses=("failed",)).total == 40
    assert src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, statuses=("one-way",)).total == 1
    assert src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, "100%_").total == 0  # LIKE wildcards are text
    with pytest.raises(sources.SourceError, match="400"):
        src.calls(snapshots.NOW - 3600, snapshots.NOW + 1, statuses=("bogus",))
    # /api/history with from/to, and the older since= still answers
    rows = src.rows("calls", snapshots.NOW - 25, snapshots.NOW + 1)
    assert [r["ts"] for r in rows] == [snapshots.NOW - 0, snapshots.NOW - 10, snapshots.NOW - 20]
    with urllib.request.urlopen(f"{url}/api/history?table=calls&since={snapshots.NOW - 15}") as resp:
        assert len(json.loads(resp.read())["rows"]) == 2
    with urllib.request.urlopen(f"{url}/api/history?table=calls&from=2026-09-21T14:13:00Z&to=2026-09-21T14:14:00Z") \
            as resp:
        assert len(json.loads(resp.read())["rows"]) == 3  # ISO 8601: NOW is 14:13:20 UTC, so NOW-20 .. NOW
