"""Benchmark ``upscope analyze --format json`` against tshark on the same capture, in the same run.

    python benchmarks/bench_analyze.py --packets 1000000 [--long 10] [--workdir /tmp/upscope-bench]

Generates the capture(s) with ``gen_capture.py`` when missing, then runs (each once, sequentially)
  upscope analyze --format json --no-progress CAPTURE
  tshark -n -q -r CAPTURE -o rtp.heuristic_rtp:TRUE -z rtp,streams -z sip,stat
and reports wall time, the time ratio, peak RSS (``wait4`` rusage of each child) and whether the
numbers agree: per RTP stream packets and lost equal, max delta and mean/max jitter within 0.01 ms,
SIP request/response counts equal. With ``--long N`` a capture N× longer is analysed too and its
peak RSS compared (memory must not grow with capture length).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
UPSCOPE = Path(sys.executable).parent / "upscope"
TOL_MS = 0.01

_STREAM = re.compile(
    r"^\s*[\d.]+\s+[\d.]+\s+(?P<src>\S+)\s+(?P<sport>\d+)\s+(?P<dst>\S+)\s+(?P<dport>\d+)\s+(?P<ssrc>0x[0-9A-Fa-f]+)"
    r"\s+(?P<pt>.+?)\s+(?P<pkts>\d+)\s+(?P<lost>-?\d+)\s+\([^)]*\)\s+(?P<mind>[\d.]+)\s+(?P<meand>[\d.]+)"
    r"\s+(?P<maxd>[\d.]+)\s+(?P<minj>[\d.]+)\s+(?P<meanj>[\d.]+)\s+(?P<maxj>[\d.]+)", re.MULTILINE)
_SIP_LINE = re.compile(r"^\s+(?:SIP (?P<code>\d{3})[^:]*|(?P<method>[A-Z]+))\s*:\s*(?P<n>\d+)\s+Packets", re.MULTILINE)


def run(cmd: list[str], out: Path) -> tuple[float, float, int, int]:
    """(wall s, CPU s, peak RSS MiB, exit status) of one child; stdout goes to ``out``.

    CPU time (user + system) is reported next to wall time because on a shared machine the
    wall clock also measures the neighbours."""
    with out.open("wb") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def tshark_streams(text: str) -> dict[tuple[str, int, str, int, int], dict[str, float]]:
    out = {}
    for m in _STREAM.finditer(text.split("RTP Streams", 1)[1] if "RTP Streams" in text else ""):
        key = (m["src"], int(m["sport"]), m["dst"], int(m["dport"]), int(m["ssrc"], 16))
        out[key] = {"packets": int(m["pkts"]), "lost": int(m["lost"]), "max_delta_ms": float(m["maxd"]),
                    "mean_jitter_ms": float(m["meanj"]), "max_jitter_ms": float(m["maxj"])}
    return out


def tshark_sip(text: str) -> tuple[int, int]:
    section = text.split("SIP Statistics", 1)[-1]
    req = sum(int(m["n"]) for m in _SIP_LINE.finditer(section) if m["method"])
    resp = sum(int(m["n"]) for m in _SIP_LINE.finditer(section) if m["code"])
    return req, resp


def compare(doc: dict[str, Any], ts_text: str) -> dict[str, Any]:
    ours = {(s["src"], s["src_port"], s["dst"], s["dst_port"], s["ssrc"]): s for s in doc["rtp_streams"]}
    theirs = tshark_streams(ts_text)
    mismatched = []
    for key, t in theirs.items():
        s = ours.get(key)
        if s is None or s["packets"] != t["packets"] or s["lost"] != t["lost"] or any(
                abs(s[f] - t[f]) > TOL_MS for f in ("max_delta_ms", "mean_jitter_ms", "max_jitter_ms")):
            mismatched.append({"stream": key, "tshark": t, "upscope": s and {f: s[f] for f in t}})
    req, resp = tshark_sip(ts_text)
    return {
        "streams_tshark": len(theirs), "streams_upscope": len(ours), "streams_mismatched": len(mismatched),
        "extra_upscope_streams": len(set(ours) - set(theirs)), "first_mismatches": mismatched[:3],
        "sip_tshark": [req, resp],
        "sip_upscope": [sum(doc["sip"]["requests"].values()), sum(doc["sip"]["responses"].values())],
    }


def ensure_capture(path: Path, packets: int, calls: int = 0) -> None:
    if not path.exists():
        cmd = [sys.executable, str(HERE / "gen_capture.py"), "--packets", str(packets), "-o", str(path)]
        subprocess.run([*cmd, "--calls", str(calls)] if calls else cmd, check=True)


def bench(capture: Path, work: Path, with_tshark: bool) -> dict[str, Any]:
    up_out = work / f"{capture.stem}.upscope.json"
    load = os.getloadavg()[0]  # the machine may be shared: the 1-minute load average before the run
    wall, cpu, rss, code = run([str(UPSCOPE), "analyze", "--format", "json", "--no-progress", str(capture)], up_out)
    res: dict[str, Any] = {"load_avg_1min": round(load, 2),
                           "capture": str(capture), "bytes": capture.stat().st_size, "upscope_s": round(wall, 2),
                           "upscope_cpu_s": round(cpu, 2), "upscope_rss_mib": rss, "upscope_exit": code}
    doc = json.loads(up_out.read_text())
    res["packets"] = doc["packets"]
    if with_tshark:
        ts_out = work / f"{capture.stem}.tshark.txt"
        wall_t, cpu_t, rss_t, _ = run(["tshark", "-n", "-q", "-r", str(capture), "-o", "rtp.heuristic_rtp:TRUE",
                                       "-z", "rtp,streams", "-z", "sip,stat"], ts_out)
        res.update(tshark_s=round(wall_t, 2), tshark_cpu_s=round(cpu_t, 2), tshark_rss_mib=rss_t,
                   speedup=round(wall_t / wall, 2), speedup_cpu=round(cpu_t / cpu, 2),
                   agreement=compare(doc, ts_out.read_text(errors="replace")))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--long", type=int, default=0,
                    help="also analyse captures this many times longer (longer calls; more calls)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/upscope-bench"))
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    base = args.workdir / f"bench-{args.packets}.pcap"
    ensure_capture(base, args.packets)
    results = [bench(base, args.workdir, with_tshark=True)]
    if args.long:
        # Two ways a capture gets longer: the same calls last longer (memory must stay flat), or
        # more calls follow each other (the result itself grows: one entry per call and stream).
        base_calls = max(1000, args.packets // 1000)
        for kind, calls, name in (("longer calls", base_calls, f"bench-{args.packets * args.long}-c{base_calls}.pcap"),
                                  ("more calls", 0, f"bench-{args.packets * args.long}.pcap")):
            longer = args.workdir / name
            ensure_capture(longer, args.packets * args.long, calls)
            results.append(bench(longer, args.workdir, with_tshark=False))
            results[-1]["long_kind"] = kind
            results[-1]["rss_growth_pct"] = round(
                100 * (results[-1]["upscope_rss_mib"] / results[0]["upscope_rss_mib"] - 1), 1)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
