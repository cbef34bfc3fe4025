"""N lightweight `upscope serve` look-alikes for the fleet simulation: one process, N /metrics ports.

Each endpoint serves what a real `upscope serve` exposed for one lab scenario
(``benchmarks/fleet-states.json.gz``, made by ``record_fleet_states.py``), under its own
``system`` label. Two recorded scrapes per scenario give every counter and histogram series its
recorded rate, so values grow as on the site; gauges keep the second scrape's value, and
``*_timestamp_seconds`` gauges move with the clock (a JWT that expired two days before the
recording still expired two days ago). Endpoints differ: the first ones take each recorded state
once, the others are drawn with a fleet-like mix (most systems healthy), counters start at a random point of up to an hour of traffic and grow
at 0.5-1.5x the recorded rate, and a small share answers HTTP 503 (a site whose service is down).

The endpoints listen on 127.0.0.1 with ports from the kernel; ``--targets FILE`` writes them as a
Prometheus file-based service discovery file (the same format as docs/fleet.md's).

    .venv/bin/python benchmarks/fleet_sim.py --systems 1000 --targets /tmp/fleet/targets.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import math
import random
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATES = ROOT / "benchmarks" / "fleet-states.json.gz"
#: Share of the fleet per recorded scenario (the rest of the weight is spread evenly): a partner's
#: fleet is mostly healthy, with a few systems in each fault at any time.
HEALTHY_SHARE = 0.7
DOWN_SHARE = 0.01  # endpoints answering 503
SYSTEM_PLACEHOLDER = "\x00SYSTEM\x00"


@dataclass(frozen=True, slots=True)
class Line:
    key: str  # name{labels} with the system label value replaced by SYSTEM_PLACEHOLDER
    value: float  # at the second scrape
    rate: float  # per second (counters and histogram series), else 0
    kind: str  # "counter" (grows, integer), "sum" (grows), "timestamp" (moves with the clock), "gauge"


@dataclass(frozen=True, slots=True)
class State:
    scenario: str
    header: dict[str, list[str]]  # family name → its HELP/TYPE lines
    lines: tuple[tuple[str, Line], ...]  # (family, line)
    recorded_now: float  # the recording's upscope_snapshot_timestamp_seconds


def _families(text: str) -> dict[str, str]:
    return {parts[2]: parts[3] for ln in text.splitlines()
            if ln.startswith("# TYPE ") and len(parts := ln.split()) == 4}


def _family_of(name: str, types: dict[str, str]) -> str:
    if name in types:
        return name
    for suffix in ("_total", "_bucket", "_count", "_sum", "_created"):
        if name.endswith(suffix) and name[: -len(suffix)] in types:
            return name[: -len(suffix)]
    return name


def _samples(text: str) -> dict[str, float]:
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            key, _, value = ln.rpartition(" ")
            out[key] = float(value)
    return out


def load_states(path: Path = STATES) -> list[State]:
    doc = json.loads(gzip.decompress(path.read_bytes()))
    states = []
    for rec in doc["states"]:
        (t1, first), (t2, second) = ((s["t"], s["text"]) for s in rec["scrapes"])
        types = _families(second)
        before, after = _samples(first), _samples(second)
        system = next(k.split('system="', 1)[1].split('"', 1)[0] for k in after if 'system="' in k)
        header: dict[str, list[str]] = {}
        for ln in second.splitlines():
            if ln.startswith(("# HELP ", "# TYPE ")):
                header.setdefault(ln.split()[2], []).append(ln)
        lines = []
        for key, value in after.items():
            name = key.split("{", 1)[0]
            family = _family_of(name, types)
            kind = types.get(family, "gauge")
            if name.endswith("_created"):
                continue
            if kind in ("counter", "histogram"):
                grow = "sum" if name.endswith("_sum") else "counter"
                rate = max(0.0, (value - before.get(key, value)) / max(1e-9, t2 - t1))
                line = Line(key.replace(f'system="{system}"', f'system="{SYSTEM_PLACEHOLDER}"'), value, rate, grow)
            elif name.endswith("_timestamp_seconds"):
                line = Line(key.replace(f'system="{system}"', f'system="{SYSTEM_PLACEHOLDER}"'), value, 0.0,
                            "timestamp")
            else:
                line = Line(key.replace(f'system="{system}"', f'system="{SYSTEM_PLACEHOLDER}"'), value, 0.0, "gauge")
            lines.append((family, line))
        now = after.get(f'upscope_snapshot_timestamp_seconds{{system="{system}"}}', time.time())
        states.append(State(rec["scenario"], header, tuple(lines), now))
    return states


@dataclass(frozen=True, slots=True)
class Endpoint:
    system: str
    state: State
    phase_s: float  # seconds of recorded traffic already behind the counters at start
    scale: float  # counter growth relative to the recording
    down: bool


def plan(n: int, states: list[State], seed: int = 16, prefix: str = "site-", down: int | None = None) -> list[Endpoint]:
    """N endpoints with a fleet-like mix of the recorded states; ``down`` endpoints (default: a
    random ``DOWN_SHARE``) answer 503."""
    rng = random.Random(seed)
    healthy = [s for s in states if s.scenario == "healthy"]
    faults = [s for s in states if s.scenario != "healthy"]
    out = []
    for i in range(n):
        if i < len(states):  # every recorded state at least once
            pick = states[i]
        elif healthy and (not faults or rng.random() < HEALTHY_SHARE):
            pick = healthy[0]
        else:
            pick = rng.choice(faults or healthy)
        is_down = rng.random() < DOWN_SHARE if down is None else i >= n - down
        out.append(Endpoint(f"{prefix}{i:05d}", pick, rng.uniform(0, 3600), rng.uniform(0.5, 1.5), is_down))
    return out


def render(ep: Endpoint, started: float, now: float) -> bytes:
    """The endpoint's exposition at ``now``."""
    st = ep.state
    shift = now - st.recorded_now
    t = ep.phase_s + (now - started)
    out: list[str] = []
    last_family = None
    for family, line in st.lines:
        if family != last_family:
            out.extend(st.header.get(family, ()))
            last_family = family
        if line.kind == "counter":
            value: float = math.floor(ep.scale * (line.value + line.rate * t))
        elif line.kind == "sum":
            value = ep.scale * (line.value + line.rate * t)
        elif line.kind == "timestamp":
            value = line.value + shift
        else:
            value = line.value
        out.append(f"{line.key.replace(SYSTEM_PLACEHOLDER, ep.system)} {value!r}")
    out.append("")
    return "\n".join(out).encode()


async def _serve_one(ep: Endpoint, started: float, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > 16384:
                break
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
            if ep.down:
                body, status = b"service stopped\n", b"503 Service Unavailable"
            elif path.split(b"?")[0] == b"/metrics":
                body, status = render(ep, started, time.time()), b"200 OK"
            else:
                body, status = b"not found\n", b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


async def run(endpoints: list[Endpoint], targets: Path | None, ready: Path | None) -> None:
    started = time.time()
    servers = []
    addresses = []
    for ep in endpoints:
        server = await asyncio.start_server(lambda r, w, ep=ep: _serve_one(ep, started, r, w), "127.0.0.1", 0,
                                            limit=32768)
        servers.append(server)
        addresses.append(f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
    if targets is not None:
        doc = [{"targets": addresses, "labels": {"fleet": "simulation"}}]
        tmp = targets.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(targets)  # file SD reads whole files only
    if ready is not None:
        ready.write_text(json.dumps({
            "endpoints": len(endpoints), "down": sum(e.down for e in endpoints), "mix": _mix(endpoints),
            "systems": {e.system: {"scenario": e.state.scenario, "down": e.down, "address": a}
                        for e, a in zip(endpoints, addresses, strict=True)}}))
    print(f"fleet_sim: {len(endpoints)} endpoints on 127.0.0.1 ({_mix(endpoints)})", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def _mix(endpoints: list[Endpoint]) -> dict[str, int]:
    mix: dict[str, int] = {}
    for e in endpoints:
        mix[e.state.scenario] = mix.get(e.state.scenario, 0) + 1
    return dict(sorted(mix.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--systems", type=int, default=100)
    ap.add_argument("--targets", type=Path, help="write the endpoints as a file_sd JSON file")
    ap.add_argument("--ready", type=Path, help="write a JSON summary here once listening")
    ap.add_argument("--states", type=Path, default=STATES)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--prefix", default="site-", help="system names are PREFIX00000, PREFIX00001, …")
    ap.add_argument("--down", type=int, help="this many endpoints (the last ones) answer 503")
    args = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 2 sockets per endpoint at least
    endpoints = plan(args.systems, load_states(args.states), args.seed, args.prefix, args.down)
    asyncio.run(run(endpoints, args.targets, args.ready))


if __name__ == "__main__":
    main()
