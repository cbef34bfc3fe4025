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
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


# Extra RTP beside the lab (``--extra-pps``): G.711 streams of 50 packets/s from 127.0.0.78 to the
# OSBiz's address on the top ports of the lab's media range (what the service's capture filter
# takes: media to or from the OSBiz), announced by no SDP, so the analysis must find them with
# its RTP heuristic.
EXTRA_SRC = "127.0.0.78"


def blast(pps: int, seconds: float, base: int, dst: str) -> dict[str, object]:
    """Send ``pps`` packets/s of extra RTP for ``seconds``; return what was sent per stream."""
    streams = max(1, round(pps / 50))
    width = min(streams, 64)  # receiving ports; each pairs with ceil(streams / width) sending ports
    ports = [base + 398 - 2 * k for k in range(width)]
    socks = []
    for port in ports:  # bound but never read: the kernel drops what overflows, no ICMP
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        r.bind((dst, port))
        socks.append(r)
    senders = []
    for k in range(-(-streams // width)):
        t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t.bind((EXTRA_SRC, ports[k]))
        senders.append(t)
    rng = random.Random(5)
    first = [(rng.randrange(1 << 32), rng.randrange(1 << 16), rng.randrange(1 << 32)) for _ in range(streams)]
    payload = b"\xd5" * 160
    sent = [0] * streams
    start, tick = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        for i, (ssrc, seq, ts) in enumerate(first):
            n = sent[i]
            head = struct.pack("!BBHII", 0x80, 8 | (0x80 if n == 0 else 0), (seq + n) & 0xFFFF,
                               (ts + 160 * n) & 0xFFFFFFFF, ssrc)
            senders[i // width].sendto(head + payload, (dst, ports[i % width]))
            sent[i] = n + 1
        tick += 1
        time.sleep(max(0.0, start + tick * 0.02 - time.monotonic()))
    elapsed = time.monotonic() - start
    return {"seconds": round(elapsed, 1), "packets": sum(sent), "packets_per_s": round(sum(sent) / elapsed),
            "streams": [[EXTRA_SRC, ports[i // width], dst, ports[i % width], first[i][0], sent[i]]
                        for i in range(streams)]}


def _packets_per_second(ring: list[Path]) -> list[int]:
    """Packets in each whole second of capture time over the ring files."""
    from collectors.capture.files import CaptureFile

    stamps = [batch.ts.copy() for path in ring for batch in CaptureFile(path).batches()]
    if not stamps:
        return []
    ts = np.concatenate(stamps)
    counts = np.bincount((ts - ts.min()).astype(np.int64))
    return [int(c) for c in counts[1:-1]]


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a running process (/proc/PID/stat), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--blast":  # the extra-RTP sender, run as a child
        print(json.dumps(blast(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=75.0, help="length of the measured run")
    ap.add_argument("--load", choices=sorted(LOADS), default="high")
    ap.add_argument("--sample", type=float, default=5.0, help="RSS sampling interval, s")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds excluded from the rate and the RSS drift")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--rtp-base", type=int, default=30000, help="the lab's first RTP port (disjoint ranges let runs share lo)")
    ap.add_argument("--extra-pps", type=int, default=0,
                    help="extra RTP beside the lab's calls, packets/s (unannounced streams, 50 packets/s each)")
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
    extra = None
    if args.extra_pps:
        time.sleep(5)  # the service's capture is running before the first extra packet
        import yaml

        osbiz = yaml.safe_load((lab_dir / "site.yaml").read_text())["system"]["private_ip"]
        extra = subprocess.Popen([sys.executable, __file__, "--blast", str(args.extra_pps), str(args.seconds - 15),
                                  str(args.rtp_base), osbiz], stdout=subprocess.PIPE)
    samples: list[tuple[float, int]] = []
    while time.monotonic() - t0 < args.seconds and lab.poll() is None:
        kib = rss_kib(serve.pid)
        if kib is not None:
            samples.append((time.monotonic() - t0, kib))
        time.sleep(args.sample)
    extra_sent = json.loads(extra.communicate(timeout=120)[0]) if extra is not None else None
    out, _ = lab.communicate(timeout=60)
    serve_cpu = _cpu_s(serve.pid)
    serve.send_signal(signal.SIGTERM)
    serve.wait(60)
    err.close()
    stats = json.loads(out)["stats"]
    log = (work / "serve.stderr").read_text()
    drop = re.search(r"capture: (\d+) packets received, (\d+) dropped", log)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from collectors.analyze import analyze_files

    ring = sorted((db.with_suffix(".ring")).glob("ring*"))
    t_analysis = time.process_time()
    result = analyze_files(ring)
    t_analysis = time.process_time() - t_analysis
    per_second = _packets_per_second(ring)
    extras = {(s.src, s.src_port, s.dst, s.dst_port, s.ssrc): s.packets for s in result.rtp_streams
              if s.src == EXTRA_SRC}
    sent = stats["pbx"]["rtp_out"] + stats["connector"]["rtp_out"]
    captured = sum(s.packets for s in result.rtp_streams) - sum(extras.values())
    answered = stats["pbx"]["calls_placed"]["answered"] + stats["pbx"]["calls_received"]["answered"]
    span = (result.last_ts or 0.0) - (result.first_ts or 0.0)
    steady = [kib for t, kib in samples if t >= args.warmup]
    report = {
        "load": args.load, "seconds": args.seconds, "ring_files": len(ring),
        "packets": result.packets, "capture_span_s": round(span, 1),
        "mean_packets_per_s": round(result.packets / max(span, 1e-9)),
        "capture_tool_received_dropped": [int(drop.group(1)), int(drop.group(2))] if drop else None,
        "rtp_packets_sent_by_lab": sent, "rtp_packets_in_capture": captured,
        "rtp_streams_in_capture": len(result.rtp_streams) - len(extras), "rtp_streams_expected": 2 * answered,
        "extra_rtp": None if extra_sent is None else {
            "sent_packets_per_s": extra_sent["packets_per_s"], "streams_sent": len(extra_sent["streams"]),
            "streams_found": len(extras),
            "streams_with_every_packet": sum(extras.get(tuple(x[:5])) == x[5] for x in extra_sent["streams"]),
            "packets_sent": extra_sent["packets"], "packets_in_capture": sum(extras.values())},
        # packets per second of capture time, whole seconds only (the first and last are cut)
        "packets_per_s_each_second": {"seconds": len(per_second), "min": min(per_second, default=0),
                                      "median": sorted(per_second)[len(per_second) // 2] if per_second else 0,
                                      "max": max(per_second, default=0),
                                      "seconds_at_50000_or_more": sum(n >= 50000 for n in per_second)},
        "serve_cpu_s": serve_cpu,
        "offline_analysis_of_the_ring_cpu_s": round(t_analysis, 2),
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
