"""Live capture and memory of `upscope serve` watching the lab (issue 5 benchmarks).

Runs `upscope lab` with a call load, attaches `upscope serve --lab-dir` (which, as root, captures
`lo` itself into a ring of dumpcap files, exactly as on a site), samples the service's RSS, then
stops both and reports:

* the packet rate on the wire (from the ring files) and the capture tool's own drop count;
* whether every RTP stream the lab sent is in the capture: the ring files are analysed with the
  same engine and the stream packet sum is compared with the lab's own counters (RTP sent by
  the PBX side and the connector side);
* the RSS of the service over time (min/max after warm-up, drift in %).

    .venv/bin/python benchmarks/bench_serve.py --seconds 75 --load high     # ≥ 10 000 packets/s
    .venv/bin/python benchmarks/bench_serve.py --seconds 60 --load 50k      # the 50 000 packets/s target
    .venv/bin/python benchmarks/bench_serve.py --seconds 1800 --load normal # 30-minute soak

Not a test: figures go into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-c", "from dashboard.cli import main; main()"]
LOADS = {
    # 10 new calls/s held 12 s → ~120 calls → 2 streams × 50 packets/s each ≈ 12 000 packets/s.
    "high": ["--trunk-lines", "150", "--users", "100", "--calls-per-minute", "600", "--call-seconds", "12"],
    # 50 000 packets/s: 250 calls in progress (500 streams of 50 packets/s) at the lab's limits
    # (600 calls/minute, 100 users), so 25-s calls.
    "50k": ["--trunk-lines", "300", "--users", "100", "--calls-per-minute", "600", "--call-seconds", "25"],
    # The dashboard's default pace: a call every 5 s, 4-s calls.
    "normal": ["--calls-per-minute", "12", "--call-seconds", "4"],
}


def rss_kib(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(m.group(1)) if m else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=75.0, help="length of the measured run")
    ap.add_argument("--load", choices=sorted(LOADS), default="high")
    ap.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval, s")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds excluded from the rate and the RSS drift")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--rtp-base", type=int, default=30000, help="the lab's first RTP port (disjoint ranges let runs share lo)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="upscope-bench-serve-"))
    lab_dir, db = work / "lab", work / "serve.db"
    lab = subprocess.Popen([*CLI, "lab", "--scenario", "healthy", "--out", str(lab_dir), "--port", "0",
                            "--duration", str(args.seconds + 5), "--keepalive", "5", "--rtp-base", str(args.rtp_base),
                            *LOADS[args.load]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not ((lab_dir / "lab.json").exists() and json.loads((lab_dir / "lab.json").read_text()).get("running")):
        if time.monotonic() > deadline or lab.poll() is not None:
            raise SystemExit("the lab did not start")
        time.sleep(0.2)
    err = (work / "serve.stderr").open("wb")
    serve = subprocess.Popen([*CLI, "serve", "--lab-dir", str(lab_dir), "--db", str(db), "--metrics-addr",
                              "127.0.0.1:0", "--ring-files", "1000", "--ring-mb", "100", "--window", "30"],
                             stdout=subprocess.DEVNULL, stderr=err)
    t0 = time.monotonic()
    samples: list[tuple[float, int]] = []
    while time.monotonic() - t0 < args.seconds and lab.poll() is None:
        kib = rss_kib(serve.pid)
        if kib is not None:
            samples.append((time.monotonic() - t0, kib))
        time.sleep(args.sample)
    out, _ = lab.communicate(timeout=60)
    serve.send_signal(signal.SIGTERM)
    serve.wait(60)
    err.close()
    stats = json.loads(out)["stats"]
    log = (work / "serve.stderr").read_text()
    drop = re.search(r"capture: (\d+) packets received, (\d+) dropped", log)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from collectors.analyze import analyze_files

    ring = sorted((db.with_suffix(".ring")).glob("ring*"))
    result = analyze_files(ring)
    sent = stats["pbx"]["rtp_out"] + stats["connector"]["rtp_out"]
    captured = sum(s.packets for s in result.rtp_streams)
    answered = stats["pbx"]["calls_placed"]["answered"] + stats["pbx"]["calls_received"]["answered"]
    span = (result.last_ts or 0.0) - (result.first_ts or 0.0)
    steady = [kib for t, kib in samples if t >= args.warmup]
    report = {
        "load": args.load, "seconds": args.seconds, "ring_files": len(ring),
        "packets": result.packets, "capture_span_s": round(span, 1),
        "mean_packets_per_s": round(result.packets / max(span, 1e-9)),
        "capture_tool_received_dropped": [int(drop.group(1)), int(drop.group(2))] if drop else None,
        "rtp_packets_sent_by_lab": sent, "rtp_packets_in_capture": captured,
        "rtp_streams_in_capture": len(result.rtp_streams), "rtp_streams_expected": 2 * answered,
        "serve_rss_mib": {"first": round(steady[0] / 1024, 1), "min": round(min(steady) / 1024, 1),
                          "max": round(max(steady) / 1024, 1), "last": round(steady[-1] / 1024, 1),
                          "drift_pct": round(100 * (max(steady) - min(steady)) / min(steady), 1)} if steady else None,
        # The trend matters more than the spread: RSS at each tenth of the run after warm-up.
        "serve_rss_mib_by_tenth": [round(steady[int(i * (len(steady) - 1) / 10)] / 1024, 1) for i in range(11)]
        if steady else None,
        "workdir": str(work),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
