"""The HTTP face under hostile clients: a connection cap, URL/query limits for GET and HEAD alike,
a bounded pool of SQLite readers, and /probe restricted to the site's endpoints."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from collectors.runtime.history import MAX_READERS, History
from core.errors import UpscopeError
from dashboard.http_server import MAX_QUERY_FIELDS, Response, UpscopeHttpServer
from dashboard.metrics import make_registry
from dashboard.probe_endpoint import ProbeAccess

ROOT = Path(__file__).resolve().parents[2]


def _status(url: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_slow_connections_are_capped_and_refused_at_once() -> None:
    srv = UpscopeHttpServer(make_registry(lambda: None), port=0, max_connections=5)
    idle: list[socket.socket] = []
    with srv:
        before = threading.active_count()
        for _ in range(40):  # connect and say nothing, as a slowloris client does
            idle.append(socket.create_connection(srv.address, timeout=5))
        time.sleep(0.5)
        assert threading.active_count() - before <= 5
        status, body = _status(srv.url + "/-/healthy")
        assert status == 503 and "too many connections" in body
        for s in idle:
            s.close()
        deadline = time.monotonic() + 10
        while _status(srv.url + "/-/healthy")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_too_many_query_fields_get_400_for_get_and_head(method: str, caplog: pytest.LogCaptureFixture) -> None:
    query = "&".join(f"p{i}=1" for i in range(MAX_QUERY_FIELDS + 5))
    with caplog.at_level(logging.DEBUG), UpscopeHttpServer(make_registry(lambda: None), port=0) as srv:
        conn = http.client.HTTPConnection(*srv.address, timeout=10)
        conn.request(method, f"/metrics?{query}")
        resp = conn.getresponse()
        resp.read()
        conn.close()
    assert resp.status == 400
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]


def test_overlong_url_gets_414() -> None:
    with UpscopeHttpServer(make_registry(lambda: None), port=0) as srv:
        assert _status(srv.url + "/metrics?x=" + "a" * 9000)[0] == 414


def test_history_reads_share_a_bounded_pool(tmp_path: Path) -> None:
    history = History(tmp_path / "h.db")
    history.probe_result(1.0, "tcp_connect", "127.0.0.1:1", False, "refused", 0.1, {})

    def rows(_req: object) -> Response:
        return Response(200, json.dumps(history.rows("probes")).encode(), "application/json")

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    with UpscopeHttpServer(make_registry(lambda: None), port=0) as srv:
        srv.add_route("/api/history", rows)
        _status(srv.url + "/api/history")
        start = fds()
        for _ in range(300):  # each request on a thread of its own
            assert _status(srv.url + "/api/history")[0] == 200
        assert fds() - start <= MAX_READERS
    history.close()


def test_probe_access_allows_endpoints_hosts_and_allow_entries() -> None:
    access = ProbeAccess(lambda: ["35.246.178.13:65061", "stun.example.net:3478"], lambda: ["192.0.2.10"],
                         allow=("10.1.0.0/16", "[2001:db8::1]:443"))
    assert access.refusal("35.246.178.13:65061") is None
    assert access.refusal("STUN.example.net:3478") is None
    assert access.refusal("192.0.2.10:8802") is None  # the OSBiz itself, any port
    assert access.refusal("10.1.2.3:22") is None
    assert access.refusal("[2001:db8::1]:443") is None
    for target in ("35.246.178.13:22", "127.0.0.1:6379", "169.254.169.254:80", "10.2.0.1:443",
                   "metadata.google.internal:80", "stun.example.net:3479"):
        assert access.refusal(target) is not None, target
    with pytest.raises(UpscopeError, match="neither a CIDR"):
        ProbeAccess(lambda: [], allow=("not-an-entry",))


def test_probe_route_refuses_other_targets_and_debug_without_the_flag() -> None:
    open_port = UpscopeHttpServer(make_registry(lambda: None), port=0)
    with open_port:
        allowed = f"127.0.0.1:{open_port.address[1]}"
        access = ProbeAccess(lambda: [allowed])
        with UpscopeHttpServer(make_registry(lambda: None), port=0, probe_access=access) as srv:
            status, text = _status(f"{srv.url}/probe?target={allowed}&module=tcp_connect")
            assert status == 200 and "probe_success 1.0" in text
            status, text = _status(f"{srv.url}/probe?target=127.0.0.1:{_closed_port()}&module=tcp_connect")
            assert status == 403 and "not one of this site's endpoints" in text
            status, text = _status(f"{srv.url}/probe?target={allowed}&module=tcp_connect&debug=true")
            assert status == 403 and "--probe-debug" in text
        with UpscopeHttpServer(make_registry(lambda: None), port=0, probe_endpoint=False) as srv:
            assert _status(f"{srv.url}/probe?target={allowed}&module=tcp_connect")[0] == 404


def test_serve_restricts_probe_by_default(tmp_path: Path) -> None:
    connector = _closed_port()
    site = tmp_path / "site.yaml"
    text = (ROOT / "examples" / "site-healthy.yaml").read_text()
    site.write_text(text.replace("connector: {host: 35.246.178.13, port: 65061,",
                                 f"connector: {{host: 127.0.0.1, port: {connector},"))
    log = tmp_path / "serve.log"
    cli = [sys.executable, "-c", "from dashboard.cli import main; main()", "serve", "--site", str(site),
           "--db", str(tmp_path / "s.db"), "--metrics-addr", "127.0.0.1:0", "--no-probes"]
    for extra, expect_other in (([], 403), (["--probe-allow", "127.0.0.0/8", "--probe-debug"], 200)):
        with log.open("wb") as fh:
            proc = subprocess.Popen([*cli, *extra], stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            deadline = time.monotonic() + 30
            while not re.search(r"http://[\d.]+:\d+", log.read_text()):
                assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                time.sleep(0.2)
            base = re.search(r"http://[\d.]+:\d+", log.read_text()).group(0)  # type: ignore[union-attr]
            assert _status(f"{base}/probe?target=127.0.0.1:{connector}&module=tcp_connect")[0] == 200
            status, _ = _status(f"{base}/probe?target=127.0.0.1:{_closed_port()}&module=tcp_connect&debug=true")
            assert status == expect_other
        finally:
            proc.terminate()
            proc.wait(20)
