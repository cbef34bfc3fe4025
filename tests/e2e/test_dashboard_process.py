"""`upscope dashboard` killed outright (SIGKILL) still leaves no lab, service or Streamlit behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import descendants, is_running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def test_killed_dashboard_takes_lab_service_and_streamlit_with_it(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [sys.executable, "-c", "from dashboard.cli import main; main()", "dashboard", "--lab", "healthy",
           "--addr", f"127.0.0.1:{port}"]
    with (tmp_path / "dashboard.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _up(f"http://127.0.0.1:{port}/_stcore/health"):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "dashboard.log").read_text()
            time.sleep(0.3)
        family = descendants(proc.pid)
        assert len(family) >= 3, family  # the lab, the service, Streamlit (and the lab's capture)
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 30
        while any(is_running(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {p: Path(f"/proc/{p}/cmdline").read_bytes()[:120] for p in family if is_running(p)}
        assert not left, f"outlived the dashboard: {left}"
    finally:
        # last resort for a failed run: the dashboard's whole session (it was started as its leader)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
