"""The fleet page against a real Prometheus scraping N simulated sites (N = 10, 100, 1 000).

For each N: ``fleet_sim.py`` serves N /metrics endpoints of recorded `upscope serve` states on
loopback and writes them as a file-based service discovery file; a real Prometheus (Debian package)
scrapes them every 30 s with the shipped alert rules loaded. At each checkpoint (minutes after every
target was first scraped) the script times the fleet page's data load (``dashboard.fleet.load_fleet``:
every instant query of the page, 4 at a time, as the page runs them) for the 15 min, 1 h and 24 h
ranges, the range chart (``timeline``, three ``query_range`` calls), and, as the peer in the same run,
one instant query of one series per system (``upscope_itsp_registered``); then it reads
Prometheus's RSS (/proc) and head series and samples appended per second (its own /metrics).

    .venv/bin/python benchmarks/bench_fleet.py [--systems 10 100 1000] [--checkpoints 2 10] \
        [--long 1000:30,65] [--out /tmp/fleet-bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This tree's dashboard, not whichever one the venv's editable install points at.
sys.path.insert(0, str(ROOT))

from dashboard.fleet import load_fleet  # noqa: E402
from dashboard.fleet_queries import timeline  # noqa: E402
from dashboard.prometheus_api import Limits, PrometheusClient, PrometheusError  # noqa: E402

SCRAPE_S = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _self_metrics(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(("prometheus_tsdb_head_series ", "prometheus_tsdb_head_samples_appended_total",
                            "process_resident_memory_bytes ", "go_memstats_heap_inuse_bytes ")):
            key, _, value = line.rpartition(" ")
            out[key.split("{")[0]] = out.get(key.split("{")[0], 0.0) + float(value)
    return out


def _timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    times, last = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - t0)
    return times, last


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, PrometheusError):
            pass  # not up yet
        time.sleep(1)
    raise RuntimeError(f"timed out waiting for {what}")


def _start_prometheus(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Prometheus on a free loopback port, once it answers /-/ready. The port is picked only now
    and picked again if Prometheus exits: between the pick and its bind another process (the
    simulation's own endpoints, another job on the machine) may take it."""
    for _ in range(5):
        base = f"http://127.0.0.1:{_free_port()}"
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
             f"--web.listen-address={base.removeprefix('http://')}", "--log.level=warn"],
            stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=5) as resp:
                    if resp.status == 200 and proc.poll() is None:
                        return proc, base
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            raise RuntimeError("Prometheus did not get ready within 120 s")
    raise RuntimeError("Prometheus could not bind a loopback port (five attempts)")


def measure(client: PrometheusClient, base: str, pid: int, minutes: float, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"minutes": minutes, "load_avg_1m": os.getloadavg()[0]}
    for label, range_s in (("15m", 900.0), ("1h", 3600.0), ("24h", 86400.0)):
        times, fleet = _timed(lambda r=range_s: load_fleet(client, range_s=r), runs)
        out[f"load_{label}_s"] = {"median": statistics.median(times), "max": max(times)}
        out[f"rows_{label}"] = len(fleet.rows)
        out[f"errors_{label}"] = list(fleet.errors)
    health: dict[str, int] = {}
    for row in fleet.rows:
        health[row.health.value] = health.get(row.health.value, 0) + 1
    out["health"] = health
    times, _ = _timed(lambda: timeline(client, time.time(), 3600.0), runs)
    out["timeline_1h_s"] = {"median": statistics.median(times), "max": max(times)}
    times, _ = _timed(lambda: client.query("upscope_itsp_registered"), runs)
    out["peer_one_query_s"] = {"median": statistics.median(times), "max": max(times)}
    first = _self_metrics(base)
    time.sleep(SCRAPE_S * 2)
    second = _self_metrics(base)
    out["head_series"] = second.get("prometheus_tsdb_head_series")
    out["samples_per_s"] = (second["prometheus_tsdb_head_samples_appended_total"]
                            - first["prometheus_tsdb_head_samples_appended_total"]) / (SCRAPE_S * 2)
    out["rss_mib"] = _rss_mib(pid)
    out["go_heap_inuse_mib"] = second.get("go_memstats_heap_inuse_bytes", 0.0) / 2**20
    return out


def run_n(n: int, checkpoints: list[float], runs: int, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    targets, ready = work / "targets.json", work / "sim.json"
    (work / "prometheus.yml").write_text(
        f"global: {{scrape_interval: {SCRAPE_S}s, evaluation_interval: {SCRAPE_S}s}}\n"
        f"rule_files: [{ROOT / 'deploy/prometheus/rules/upscope.rules.yml'}]\n"
        "scrape_configs:\n  - job_name: upscope\n    file_sd_configs:\n"
        f"      - files: [{targets}]\n        refresh_interval: 30s\n")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "benchmarks/fleet_sim.py"), "--systems", str(n),
                                       "--targets", str(targets), "--ready", str(ready)]))
        _wait("the simulation", ready.exists, 120)
        sim = json.loads(ready.read_text())
        prometheus, base = _start_prometheus(work)
        procs.append(prometheus)
        client = PrometheusClient(base, Limits(timeout_s=60))
        expected = n - sim["down"]

        def scraped() -> bool:
            got = client.query("count(upscope_build_info)")
            return bool(got) and got[0].value >= expected

        t0 = time.monotonic()
        _wait(f"{expected} systems scraped", scraped, 300)
        print(f"N={n}: every system scraped {time.monotonic() - t0:.0f} s after the start", file=sys.stderr)
        start = time.monotonic()
        results = []
        for minutes in checkpoints:
            time.sleep(max(0.0, start + minutes * 60 - time.monotonic()))
            point = measure(client, base, procs[1].pid, minutes, runs)
            print(f"N={n} @ {minutes:g} min: {json.dumps(point)}", file=sys.stderr, flush=True)
            results.append(point)
        return {"systems": n, "down": sim["down"], "mix": sim["mix"], "checkpoints": results}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work / "tsdb", ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--checkpoints", type=float, nargs="+", default=[2, 10], help="minutes")
    ap.add_argument("--long", default="1000:30,65", help="N:more,checkpoints for one N (minutes)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "fleet-bench.json")
    args = ap.parse_args()
    if shutil.which("prometheus") is None:
        sys.exit("prometheus (Debian package) is not installed")
    long_n, _, more = args.long.partition(":")
    extra = {int(long_n): [float(m) for m in more.split(",") if m]} if long_n else {}
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    report = []
    for n in args.systems:
        points = sorted(set(args.checkpoints) | set(extra.get(n, [])))
        report.append(run_n(n, points, args.runs, work / f"n{n}"))
        args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
