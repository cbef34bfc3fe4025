"""Record what `upscope serve` exposes for a set of lab scenarios: the fleet simulation's input.

For each scenario: `upscope lab --scenario S --port 0 --system-name rec-S` and `upscope serve
--lab-dir` with the default settings (window, hold, intervals), then two scrapes of /metrics,
``--first`` and ``--second`` seconds after the service started. The pair lets the simulation let
counters and histograms grow at the recorded rate. Scenarios run ``--parallel`` at a time.

    .venv/bin/python benchmarks/record_fleet_states.py [--first 150] [--second 300] [--parallel 4] \
        [--out benchmarks/fleet-states.json.gz] [SCENARIO ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
SCENARIOS = ("healthy", "sip-tls-blocked", "register-forbidden", "jwt-expired", "jwt-expiring",
             "software-support-expired", "trunk-lines-busy", "license-missing", "one-way-audio", "media-impaired")


def _wait_for(what: str, check: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise RuntimeError(f"timed out waiting for {what}")


def record(scenario: str, first: float, second: float) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"fleet-rec-{scenario}-"))
    lab_dir, err = work / "lab", work / "serve.err"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [*CLI, "lab", "--scenario", scenario, "--port", "0", "--out", str(lab_dir),
             "--system-name", f"rec-{scenario}", "--duration", str(second + 60)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for("the lab", lambda: (lab_dir / "lab.json").exists()
                  and json.loads((lab_dir / "lab.json").read_text()).get("running"), 60)
        with err.open("wb") as fh:
            procs.append(subprocess.Popen(
                [*CLI, "serve", "--lab-dir", str(lab_dir), "--db", str(work / "s.db"), "--metrics-addr",
                 "127.0.0.1:0"], stdout=subprocess.DEVNULL, stderr=fh))
        line = str(_wait_for("serve's address", lambda: err.read_text().strip(), 60))
        base = line.split(" — ")[1].split("/metrics")[0]
        started = time.monotonic()
        scrapes = []
        for at in (first, second):
            time.sleep(max(0.0, started + at - time.monotonic()))
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
                scrapes.append({"t": round(time.monotonic() - started, 1), "text": resp.read().decode()})
        state = [ln for ln in scrapes[-1]["text"].splitlines()
                 if ln.startswith("upscope_itsp_status{") and ln.endswith(" 1.0")]
        print(f"{scenario}: {state}", file=sys.stderr)
        return {"scenario": scenario, "scrapes": scrapes}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--first", type=float, default=150.0)
    ap.add_argument("--second", type=float, default=300.0)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "fleet-states.json.gz")
    args = ap.parse_args()
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        states = list(pool.map(lambda s: record(s, args.first, args.second), args.scenarios))
    old = {}
    if args.out.exists():
        old = {s["scenario"]: s for s in json.loads(gzip.decompress(args.out.read_bytes()))["states"]}
    old.update({s["scenario"]: s for s in states})
    doc = {"recorded_with": "upscope lab + upscope serve (default settings), two scrapes per scenario",
           "states": [old[k] for k in sorted(old)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(gzip.compress(json.dumps(doc, indent=1).encode(), mtime=0))
    print(f"wrote {args.out} ({len(doc['states'])} scenarios)", file=sys.stderr)


if __name__ == "__main__":
    main()
