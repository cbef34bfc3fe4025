"""Benchmark ``upscope analyze --format json`` against tshark and sngrep on the same captures, in the same run.

    python benchmarks/bench_analyze.py --packets 1000000 --runs 5 [--long 10] [--workdir /tmp/upscope-bench]

Generates the captures with ``gen_capture.py`` when missing — the realistic profile and the ideal
one, of the same packet count — then, ``--runs`` times, runs on each capture, one after the other
and in a rotating order (so no tool always runs first or last on a shared machine):

  upscope analyze --format json --no-progress CAPTURE
  tshark -n -q -r CAPTURE -o rtp.heuristic_rtp:TRUE -z rtp,streams -z sip,stat
  sngrep -I CAPTURE -N -q -r

and reports per tool the medians of wall time, CPU time (user + system of the child, ``wait4``)
and peak RSS, the median of the per-run CPU ratios tshark/upscope and sngrep/upscope, the 1-minute
load average before each run, the realistic/ideal CPU ratio of upscope, and whether upscope agrees
with tshark: per RTP stream packets and lost equal, max delta and mean/max jitter within 0.01 ms,
SIP request/response counts equal. It also times ``upscope analyze`` of a 10-packet capture end
to end (the fixed cost: interpreter, imports). With ``--long N`` a realistic capture N× longer
(the same calls lasting N× longer) is analysed too and its peak RSS compared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
UPSCOPE = Path(sys.executable).parent / "upscope"
TOL_MS = 0.01
PACKAGES = ("core", "collectors", "traces", "dashboard")

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


def ensure_capture(path: Path, packets: int, profile: str, calls: int = 0) -> None:
    if not path.exists():
        cmd = [sys.executable, str(HERE / "gen_capture.py"), "--profile", profile, "--packets", str(packets),
               "-o", str(path)]
        subprocess.run([*cmd, "--calls", str(calls)] if calls else cmd, check=True)


def commands(capture: Path) -> dict[str, list[str]]:
    return {
        "upscope": [str(UPSCOPE), "analyze", "--format", "json", "--no-progress", str(capture)],
        "tshark": ["tshark", "-n", "-q", "-r", str(capture), "-o", "rtp.heuristic_rtp:TRUE",
                   "-z", "rtp,streams", "-z", "sip,stat"],
        "sngrep": ["sngrep", "-I", str(capture), "-N", "-q", "-r"],
    }


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def bench(captures: dict[str, Path], work: Path, runs: int) -> dict[str, Any]:
    """``runs`` rounds over every capture and tool, rotating the tools' order each round."""
    tools = ["upscope", "tshark", "sngrep"]
    samples: dict[str, dict[str, list[dict[str, float]]]] = {name: {t: [] for t in tools} for name in captures}
    agreement: dict[str, Any] = {}
    for r in range(runs):
        order = tools[r % 3:] + tools[:r % 3]
        for name, capture in captures.items():
            for tool in order:
                out = work / f"{capture.stem}.{tool}.out"
                load = os.getloadavg()[0]  # the machine may be shared: the load just before the run
                wall, cpu, rss, code = run(commands(capture)[tool], out)
                samples[name][tool].append({"wall_s": wall, "cpu_s": cpu, "rss_mib": rss, "exit": code, "load": load})
            if r == 0:
                doc = json.loads((work / f"{capture.stem}.upscope.out").read_text())
                ts_text = (work / f"{capture.stem}.tshark.out").read_text(errors="replace")
                agreement[name] = {"packets": doc["packets"], **compare(doc, ts_text)}
    result: dict[str, Any] = {}
    for name, per_tool in samples.items():
        row: dict[str, Any] = {"capture": str(captures[name]), "bytes": captures[name].stat().st_size,
                               "agreement": agreement[name]}
        for tool, xs in per_tool.items():
            row[tool] = {k: median([x[k] for x in xs]) for k in ("wall_s", "cpu_s", "rss_mib")}
            row[tool]["exit"] = sorted({x["exit"] for x in xs})
        up = [x["cpu_s"] for x in per_tool["upscope"]]
        for peer in ("tshark", "sngrep"):
            ratios = [p["cpu_s"] / u for p, u in zip(per_tool[peer], up, strict=True)]
            row[f"{peer}_over_upscope_cpu"] = {"median": median(ratios), "min": round(min(ratios), 2),
                                               "max": round(max(ratios), 2)}
        row["load_avg_1min"] = [round(x["load"], 2) for xs in per_tool.values() for x in xs]
        result[name] = row
    if "realistic" in result and "ideal" in result:
        pairs = zip(samples["realistic"]["upscope"], samples["ideal"]["upscope"], strict=True)
        result["realistic_over_ideal_upscope_cpu"] = median([a["cpu_s"] / b["cpu_s"] for a, b in pairs])
    return result


def small(work: Path, runs: int) -> dict[str, float]:
    """``upscope analyze`` of a 10-packet capture, end to end (median wall and CPU of ``runs``)."""
    tiny = work / "bench-10.pcap"
    if not tiny.exists():
        big = work / "bench-realistic-100000.pcap"
        ensure_capture(big, 100_000, "realistic")
        subprocess.run(["editcap", "-r", str(big), str(tiny), "1-10"], check=True, capture_output=True)
    times = [run(commands(tiny)["upscope"], work / "bench-10.upscope.out") for _ in range(runs)]
    return {"wall_s": median([t[0] for t in times]), "cpu_s": median([t[1] for t in times]),
            "max_wall_s": round(max(t[0] for t in times), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profiles", default="realistic,ideal", help="comma-separated: realistic, ideal")
    ap.add_argument("--long", type=int, default=0,
                    help="also analyse a realistic capture this many times longer (the same calls, longer)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/upscope-bench"))
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    # measured with the bytecode compiled, as an installed package has it (a shell with
    # PYTHONDONTWRITEBYTECODE=1 would otherwise compile the edited modules on every run)
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(HERE.parent / d) for d in PACKAGES)],
                   check=True, capture_output=True)
    captures = {}
    for profile in args.profiles.split(","):
        path = args.workdir / f"bench-{profile}-{args.packets}.pcap"
        ensure_capture(path, args.packets, profile)
        captures[profile] = path
    report: dict[str, Any] = {"ten_packets": small(args.workdir, args.runs)}
    report.update(bench(captures, args.workdir, args.runs))
    if args.long:
        calls = max(10, args.packets // 1600)
        longer = args.workdir / f"bench-realistic-{args.packets * args.long}-c{calls}.pcap"
        ensure_capture(longer, args.packets * args.long, "realistic", calls)
        wall, cpu, rss, code = run(commands(longer)["upscope"], args.workdir / f"{longer.stem}.upscope.out")
        base_rss = report["realistic"]["upscope"]["rss_mib"] if "realistic" in report else None
        report["longer"] = {"capture": str(longer), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rss_mib": rss,
                            "exit": code, "rss_growth_pct": round(100 * (rss / base_rss - 1), 1) if base_rss else None}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
