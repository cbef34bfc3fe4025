"""Running the lab and ``upscope serve`` as a user does, for the live end-to-end tests.

``Lab`` and ``Serve`` start the real CLI in a child process (``python -c "…main()"``, so the
checkout under test runs, not an installed copy) and stop it on exit. ``Serve`` reads the address
the service prints, so tests use ``--metrics-addr 127.0.0.1:0`` and never collide on a port.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
        return body


def metric_values(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric family in an exposition (labels as written)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


def stop_all(procs: list[subprocess.Popen[bytes]], wait_s: float = 20.0) -> None:
    """Terminate helper processes newest first (Prometheus before the targets it scrapes), then kill
    what has not stopped in ``wait_s``."""
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            p.kill()


class _Process:
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a test may have stopped it
            self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Lab(_Process):
    """``upscope lab --out DIR --port 0 --addresses auto …`` until ``lab.json`` says it runs: every
    lab on loopback addresses of its own, so labs of tests running side by side never meet."""

    def __init__(self, out: Path, scenario: str = "healthy", *args: str) -> None:
        self.out = out
        self.proc = subprocess.Popen([*CLI, "lab", "--scenario", scenario, "--out", str(out), "--port", "0",
                                      "--addresses", "auto", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> Lab:
        def running() -> bool:
            info = self.out / "lab.json"
            if self.proc.poll() is not None:
                raise AssertionError(f"lab exited early with {self.proc.returncode}")
            try:
                return bool(info.exists() and json.loads(info.read_text()).get("running"))
            except ValueError:
                return False

        wait_for(running, 30, "the lab to run")
        return self


class Serve(_Process):
    """``upscope serve --lab-dir DIR --metrics-addr 127.0.0.1:0 --db DB [args]``; ``base`` is its URL."""

    def __init__(self, lab_dir: Path, db: Path, *args: str) -> None:
        self.stderr = db.with_suffix(".stderr")
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen([*CLI, "serve", "--lab-dir", str(lab_dir), "--db", str(db),
                                          "--metrics-addr", "127.0.0.1:0", *args], stdout=subprocess.DEVNULL, stderr=err)
        self.base = ""

    def __enter__(self) -> Serve:
        line = wait_for(lambda: self._address(), 30, "serve to print its address")
        self.base = line
        return self

    def _address(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}: {self.stderr.read_text()[-800:]}")
        m = re.search(r"(http://127\.0\.0\.1:\d+)/metrics", self.stderr.read_text())
        return m.group(1) if m else None

    def snapshot(self) -> dict[str, Any]:
        doc = json.loads(http_get(f"{self.base}/api/snapshot"))
        assert isinstance(doc, dict)
        return doc

    def metrics(self) -> str:
        return http_get(f"{self.base}/metrics").decode()

    def history(self, table: str) -> list[dict[str, Any]]:
        rows = json.loads(http_get(f"{self.base}/api/history?table={table}&limit=5000"))["rows"]
        assert isinstance(rows, list)
        return rows
