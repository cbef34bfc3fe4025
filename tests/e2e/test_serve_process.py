"""`upscope serve` as a process next to a running lab: HTTP faces, signals, failure isolation.

One lab (healthy, short keepalives) and one service process are shared by the tests of this module;
each test looks at one behaviour the issue asks for.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import children, command, is_running

# one worker runs the module: its tests share one expensive module fixture
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("serve_process")]

CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]


@dataclass
class Running:
    lab_dir: Path
    db: Path
    base: str
    proc: subprocess.Popen[bytes]
    stderr: Path


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def _snapshot(base: str) -> dict:
    try:
        return json.loads(_get(f"{base}/api/snapshot"))
    except OSError:
        return {}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("serve-proc")
    lab_dir, db, err = root / "lab", root / "serve.db", root / "serve.stderr"
    lab = subprocess.Popen([*CLI, "lab", "--scenario", "healthy", "--out", str(lab_dir), "--port", "0",
                            "--addresses", "auto", "--duration", "90", "--keepalive", "2", "--calls-per-minute", "30", "--call-seconds", "2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: (lab_dir / "lab.json").exists() and json.loads((lab_dir / "lab.json").read_text()).get("running"),
          20, "the lab")
    with err.open("wb") as fh:
        proc = subprocess.Popen([*CLI, "serve", "--lab-dir", str(lab_dir), "--db", str(db), "--metrics-addr",
                                 "127.0.0.1:0", "--window", "6", "--hold", "4", "--analysis-interval", "1",
                                 "--probe-interval", "2"], stdout=subprocess.DEVNULL, stderr=fh)
    line = _wait(lambda: err.read_text().strip(), 20, "serve to print its address")
    base = line.split(" — ")[1].split("/metrics")[0]
    run = Running(lab_dir, db, base, proc, err)
    try:
        _wait(lambda: _snapshot(base).get("itsp_status", {}).get("state") == "registered", 30, "Registered")
        yield run
    finally:
        for p in (proc, lab):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_metrics_pass_promtool(running: Running) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    text = _get(f"{running.base}/metrics")
    assert b"upscope_itsp_registered{" in text
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check.stderr


def test_snapshot_api_and_history(running: Running) -> None:
    snap = _snapshot(running.base)
    assert snap["itsp_status"]["label"] == "Registered"
    assert snap["findings"] == []
    names = {c["name"]: c["up"] for c in snap["collectors"]}
    assert names["capture"] and names["trace_log"] and names["site"]
    hist = json.loads(_get(f"{running.base}/api/history?table=itsp_state"))
    assert hist["rows"][0]["state"] == "registered"


def test_call_capture_download_is_a_pcap(running: Running) -> None:
    calls = _wait(lambda: [c for c in (_snapshot(running.base).get("analysis") or {}).get("calls", [])
                           if c["answered"] and c["end_ts"]], 20, "an answered call")
    from urllib.parse import quote

    data = _get(f"{running.base}/api/call.pcap?call_id={quote(calls[0]['call_id'])}")
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1")


def test_calls_beyond_the_window_with_their_messages(running: Running) -> None:
    """/api/calls lists calls the live window (6 s here) has forgotten; their full messages (read
    again from the trace log and capture files, credentials redacted) and their capture are still
    there by the digest the history keeps; /api/packet dissects a frame of the service's own files."""
    from urllib.parse import quote, urlencode

    def older() -> list[dict]:
        now = _snapshot(running.base).get("now") or time.time()
        page = json.loads(_get(f"{running.base}/api/calls?" + urlencode({"from": now - 3600, "to": now})))
        return [r for r in page["rows"] if r["ts"] < now - 10 and r["answered"]]

    row = _wait(older, 60, "an answered call older than the live window")[0]
    live = {c["call_id"] for c in (_snapshot(running.base).get("analysis") or {}).get("calls", [])}
    answer = json.loads(_get(f"{running.base}/api/messages?call={row['call_id_hash']}"))
    assert answer["call_id"] not in live and answer["messages"]
    texts = [m["text"] for m in answer["messages"]]
    assert texts[0].startswith("INVITE ") and any("\nm=audio " in t for t in texts)
    assert all(f"Call-ID: {answer['call_id']}" in t for t in texts)
    pcap = _get(f"{running.base}/api/call.pcap?call={row['call_id_hash']}")
    assert pcap[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1") and len(pcap) > 500
    # the REGISTER's digest credentials (the API key is its password) never leave
    reg = [c for c in (_snapshot(running.base).get("analysis") or {}).get("sip_messages", [])
           if c["cseq_method"] == "REGISTER"]
    if reg:
        regs = json.loads(_get(f"{running.base}/api/messages?call_id={quote(reg[0]['call_id'])}"))["messages"]
        auth = [m["text"] for m in regs if "Authorization:" in m["text"]]
        assert all("response=<redacted>" in t for t in auth)
    # a frame of one of its capture files, and a name that is not one
    snap = _snapshot(running.base)
    files = [Path(p).name for p in snap.get("sources", []) if not p.endswith(".log")]
    if files:
        detail = json.loads(_get(f"{running.base}/api/packet?" + urlencode({"source": files[0], "frame": 1})))
        assert detail["frame"] == 1 and (detail["lines"] or detail["note"])
    other = json.loads(_get(f"{running.base}/api/packet?source=..%2F..%2Fetc%2Fpasswd&frame=1"))
    assert other["lines"] == [] and "not one of this service's capture files" in other["note"]


def test_sighup_reloads_the_site(running: Running) -> None:
    site = running.lab_dir / "site.yaml"
    text = site.read_text()
    # The service follows the file by itself too; SIGHUP must work on an unchanged mtime as well.
    running.proc.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    assert running.proc.poll() is None
    assert _snapshot(running.base)["itsp_status"]["state"] == "registered"
    assert site.read_text() == text


def test_failing_collector_is_marked_down_and_others_go_on(running: Running) -> None:
    trace = running.lab_dir / "osbiz-trace.log"
    moved = trace.with_suffix(".away")
    os.rename(trace, moved)
    try:
        def trace_down() -> dict | None:
            snap = _snapshot(running.base)
            row = next((c for c in snap.get("collectors", []) if c["name"] == "trace_log"), None)
            return snap if row and not row["up"] else None

        snap = _wait(trace_down, 15, "the trace_log collector to mark itself down")
        reason = next(c["reason"] for c in snap["collectors"] if c["name"] == "trace_log")
        assert "not found" in reason
        assert all(c["up"] for c in snap["collectors"] if c["name"].startswith("probe:"))
        assert b"upscope_collector_up{collector=\"trace_log\"" in _get(f"{running.base}/metrics") or \
            b'collector="trace_log"' in _get(f"{running.base}/metrics")
    finally:
        os.rename(moved, trace)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("dumpcap"), reason="the ring capture on lo needs root")
def test_killed_service_takes_its_capture_with_it(running: Running, tmp_path: Path) -> None:
    err = tmp_path / "serve.stderr"
    with err.open("wb") as fh:
        proc = subprocess.Popen([*CLI, "serve", "--lab-dir", str(running.lab_dir), "--db", str(tmp_path / "db"),
                                 "--metrics-addr", "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=fh)
    try:
        _wait(lambda: err.read_text().strip(), 20, "serve to print its address")
        captures = _wait(lambda: [c for c in children(proc.pid) if command(c) == "dumpcap"], 20, "its dumpcap")
        proc.kill()  # no chance to stop the ring: the parent-death signal must
        proc.wait(10)
        _wait(lambda: not any(is_running(c) for c in captures), 10, "the ring's dumpcap to stop")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_stops_cleanly_with_history(running: Running) -> None:
    running.proc.send_signal(signal.SIGTERM)
    assert running.proc.wait(20) == 0
    assert "stopped" in running.stderr.read_text()
    with sqlite3.connect(running.db) as db:
        states = [r[0] for r in db.execute("SELECT state FROM itsp_state ORDER BY ts")]
        probes = db.execute("SELECT COUNT(*) FROM probes").fetchone()[0]
    assert "registered" in states and probes > 0
