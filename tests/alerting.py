"""A real Alertmanager for tests: the shipped config with every receiver pointed at a webhook on
127.0.0.1 that the test runs, so what Alertmanager delivers (and to which receiver) can be asserted."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AM_DIR = ROOT / "deploy" / "alertmanager"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Webhook:
    """The notifications Alertmanager POSTed (its webhook JSON, one dict per notification)."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alerts(self) -> list[tuple[str, dict[str, Any]]]:
        """(receiver, alert) for every alert of every notification so far."""
        with self.lock:
            return [(n["receiver"], a) for n in self.received for a in n["alerts"]]


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(min(int(self.headers.get("Content-Length", "0")), 10_000_000))
            with hook.lock:
                hook.received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def config_for_test(hook_url: str, directory: Path) -> Path:
    """The shipped alertmanager.yml with its route tree, inhibit rules and templates as they are, and
    every receiver (same names) posting to ``hook_url`` instead of mail and pager services."""
    doc = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text())
    doc["receivers"] = [{"name": r["name"], "webhook_configs": [{"url": hook_url, "send_resolved": True}]}
                        for r in doc["receivers"]]
    doc["templates"] = [str(AM_DIR / "templates" / "*.tmpl")]
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Alertmanager:
    url: str
    proc: subprocess.Popen[bytes]

    def post(self, alerts: list[dict[str, Any]]) -> None:
        req = urllib.request.Request(self.url + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/api/v2/alerts?inhibited=true&silenced=true", timeout=10) as resp:
            return list(json.loads(resp.read()))


@contextmanager
def alertmanager(config: Path, directory: Path) -> Iterator[Alertmanager]:
    if not Path(ALERTMANAGER).exists() or shutil.which("amtool") is None:
        pytest.skip("Alertmanager (Debian package prometheus-alertmanager) is not installed")
    addr = f"127.0.0.1:{free_port()}"
    log = (directory / "alertmanager.log").open("wb")
    proc = subprocess.Popen([ALERTMANAGER, f"--config.file={config}", f"--storage.path={directory / 'am-data'}",
                             f"--web.listen-address={addr}", "--cluster.listen-address=", "--log.level=warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    am = Alertmanager(f"http://{addr}", proc)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (directory / "alertmanager.log").read_text()
            try:
                with urllib.request.urlopen(am.url + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Alertmanager not ready within 30 s"
            time.sleep(0.2)
        yield am
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
