"""A real Prometheus scrapes `upscope serve` watching the lab: Registered, then the trunk is blocked.

The lab runs `sip-tls-blocked` with the fault starting after a healthy phase (``--fault-from``);
the service attaches to it as `upscope serve --lab-dir` does; Prometheus (Debian package) scrapes
it with the shipped rules (``for:`` shortened). `upscope_itsp_registered` must read 1, then 0, and
UpscopeTrunkNotRegistered must reach pending/firing.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.live import stop_all

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
FAULT_FROM_S = 14


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, path: str, **params: str) -> Any:
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=10) as resp:
        return json.loads(resp.read())


def _wait(what: str, check: Callable[[], bool], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if check():
                return time.monotonic() - t0
        except (OSError, KeyError, IndexError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def test_prometheus_sees_registered_then_not_registered_and_fires(tmp_path: Path) -> None:
    for tool in ("prometheus", "tcpdump"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (Debian package) is not installed")
    lab_dir, metrics = tmp_path / "lab", _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [*CLI, "lab", "--scenario", "sip-tls-blocked", "--out", str(lab_dir), "--port", "0", "--duration", "90",
             "--addresses", "auto", "--fault-from", str(FAULT_FROM_S), "--keepalive", "2", "--register-expires", "10"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait("the lab", lambda: json.loads((lab_dir / "lab.json").read_text())["running"], 20)
        procs.append(subprocess.Popen(
            [*CLI, "serve", "--lab-dir", str(lab_dir), "--db", str(tmp_path / "s.db"), "--metrics-addr",
             f"127.0.0.1:{metrics}", "--window", "6", "--hold", "4", "--analysis-interval", "1",
             "--probe-interval", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        rules = (ROOT / "deploy" / "prometheus" / "rules" / "upscope.rules.yml").read_text()
        (tmp_path / "upscope.rules.yml").write_text(re.sub(r"for: \d+m", "for: 2s", rules))
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [upscope.rules.yml]\n"
            f"scrape_configs:\n  - job_name: upscope\n    static_configs:\n      - targets: ['127.0.0.1:{metrics}']\n")
        web = f"127.0.0.1:{_free_port()}"
        procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address={web}", "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://{web}"

        def registered() -> float:
            result = _api(base, "/api/v1/query", query='upscope_itsp_registered{system="upscope-lab"}')
            return float(result["data"]["result"][0]["value"][1])

        def alert() -> str | None:
            for a in _api(base, "/api/v1/alerts")["data"]["alerts"]:
                if a["labels"]["alertname"] == "UpscopeTrunkNotRegistered":
                    return str(a["state"])
            return None

        _wait("upscope_itsp_registered == 1 (healthy phase)", lambda: registered() == 1.0, FAULT_FROM_S)
        assert alert() is None
        took = _wait("upscope_itsp_registered == 0 (trunk blocked)", lambda: registered() == 0.0, 60)
        _wait("UpscopeTrunkNotRegistered pending/firing", lambda: alert() in ("pending", "firing"), 30)
        _wait("UpscopeTrunkNotRegistered firing", lambda: alert() == "firing", 30)
        print(f"\nnot registered seen by Prometheus {took:.1f} s after the healthy phase was confirmed")
    finally:
        stop_all(procs)
