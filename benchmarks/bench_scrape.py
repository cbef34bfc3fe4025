"""Scrape cost of upscope's /metrics: a site with 500 users and 100 active calls.

Builds one Snapshot (site file with USERS users, ACTIVE answered calls in progress with two RTP
streams each, plus as many finished calls, REGISTER/OPTIONS/INVITE traffic in the SIP message list),
serves it with ``dashboard.http_server`` on 127.0.0.1 and scrapes ``/metrics`` N times over HTTP,
then times the exposition alone (``generate_latest``) N times. Prints p50/p99/max per scrape, the
body size and the series count.

    .venv/bin/python benchmarks/bench_scrape.py [--users 500] [--calls 100] [--scrapes 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core.analysis import (
    AnalysisResult,
    CallInfo,
    KeepaliveInfo,
    RegistrationInfo,
    RtpStreamStats,
    SipMessageInfo,
)
from core.site.loader import load_site_text
from core.snapshot import CollectorStatus, ItspState, ItspStatus, Snapshot
from dashboard.http_server import UpscopeHttpServer
from dashboard.metrics import make_registry

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000.0


def build_site(users: int) -> object:
    doc = yaml.safe_load((ROOT / "examples" / "site-healthy.yaml").read_text())
    doc["users"] = [
        {"callno": str(1000 + i), "did": str(1000 + i), "first_name": "U", "last_name": f"N{i}",
         "email": f"u{i}@example.com", "station_type": "trusted-external-user",
         "licenses": ["ip-user", "unify-phone"] + (["voicemail"] if i % 3 == 0 else []), "directory": True}
        for i in range(users)
    ]
    doc["teams"] = []
    for pool in ("ip_user_mobility", "unify_phone", "voicemail"):
        doc["licenses"][pool] = {"total": users}
    doc["connectivity"]["simultaneous_calls"] = 120
    doc["wizard"]["settings"]["simultaneous_calls"] = 120
    return load_site_text(yaml.safe_dump(doc), "bench-site.yaml")


def build_snapshot(users: int, active: int) -> Snapshot:
    calls, streams, messages = [], [], []
    frame = 0
    for i in range(2 * active):  # the first `active` are in progress, the rest finished
        idx = len(streams)
        for d in range(2):
            streams.append(RtpStreamStats(
                src="192.168.1.10" if d == 0 else "35.246.178.13", src_port=10000 + 2 * i,
                dst="35.246.178.13" if d == 0 else "192.168.1.10", dst_port=20000 + 2 * i, ssrc=i * 2 + d,
                payload_type=8, codec="PCMA", clock_rate=8000, packets=3000, expected=3000 + i % 5, lost=i % 5,
                loss_pct=0.0, sequence_errors=0, duplicates=0, min_delta_ms=19.0, mean_delta_ms=20.0,
                max_delta_ms=22.0, mean_jitter_ms=1.0 + i % 7, max_jitter_ms=9.0, mos=4.1 - (i % 10) * 0.05,
                first_ts=NOW - 60, last_ts=NOW, first_frame=frame, last_frame=frame + 3000))
        for method, status in (("INVITE", None), (None, 100), (None, 180), (None, 200), ("ACK", None)):
            frame += 1
            messages.append(SipMessageInfo(frame, NOW - 60, "192.168.1.10", 5061, "35.246.178.13", 65061, "tls",
                                           method, status, "", f"call-{i}", 1, "INVITE" if method != "ACK" else "ACK"))
        calls.append(CallInfo(
            call_id=f"call-{i}", from_uri="sip:a@pbx", to_uri="sip:b@cloud", caller="100", callee="200",
            src="192.168.1.10", dst="35.246.178.13", start_ts=NOW - 60, first_frame=frame, final_code=200,
            final_reason="OK", answered=True, setup_ms=300.0 + i, pdd_ms=150.0, answer_ts=NOW - 59,
            end_ts=None if i < active else NOW - 1, duration_s=None, cancelled=False, hangup_by=None,
            reason_header=None, q850_cause=None, retransmissions=0, state="answered", messages=5,
            streams=(idx, idx + 1)))
    for k in range(200):  # keepalives and refreshes
        frame += 1
        messages.append(SipMessageInfo(frame, NOW - k, "35.246.178.13", 65061, "192.168.1.10", 5061, "tls",
                                       None, 200, "OK", f"ka-{k}", 1, "OPTIONS" if k % 10 else "REGISTER"))
    analysis = AnalysisResult(
        sources=("live",), packets=frame, first_ts=NOW - 600, last_ts=NOW, partial=False, sip_requests={},
        sip_responses={}, sip_messages=tuple(messages), calls=tuple(calls),
        registrations=(RegistrationInfo("sip:pbx@cloud", "35.246.178.13:65061", "192.168.1.10:5061", 20, 20,
                                        {"200": 20}, 200, 600, NOW - 30, NOW + 570, 40.0, True, 0),),
        keepalives=(KeepaliveInfo("options", "192.168.1.10", "35.246.178.13", 180, 180, 0, 10.0, 20.0, 30.0, NOW,
                                  rtts_ms=tuple(10.0 + k % 20 for k in range(180))),),
        rtp_streams=tuple(streams), tls_flows=(), stun=(), flows=(), errors=(),
    )
    return Snapshot(now=NOW, system="bench-site", itsp=ItspStatus(ItspState.REGISTERED, NOW - 3600, "200 OK"),
                    findings=(), analysis=analysis, site=build_site(users),
                    collectors=tuple(CollectorStatus(n, True, "", NOW) for n in ("capture", "trace-log", "probes")))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return f"p50 {p(0.50):.2f} ms  p99 {p(0.99):.2f} ms  max {ordered[-1] * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=1000)
    args = parser.parse_args(argv)
    snap = build_snapshot(args.users, args.calls)
    registry = make_registry(lambda: snap)
    body = generate_latest(registry).decode()
    series = sum(len(f.samples) for f in text_string_to_metric_families(body))
    families = sum(1 for _ in text_string_to_metric_families(body))
    print(f"snapshot: {len(snap.site.users)} users, {args.calls} active calls, {len(snap.analysis.calls)} calls, "
          f"{len(snap.analysis.rtp_streams)} RTP streams, {len(snap.analysis.sip_messages)} SIP messages")
    print(f"exposition: {families} families, {series} series, {len(body)} bytes")
    with UpscopeHttpServer(registry, port=0) as server:
        url = server.url + "/metrics"
        http_times = []
        for _ in range(args.scrapes):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=10) as resp:
                resp.read()
            http_times.append(time.perf_counter() - t0)
    direct = []
    for _ in range(args.scrapes):
        t0 = time.perf_counter()
        generate_latest(registry)
        direct.append(time.perf_counter() - t0)
    print(f"HTTP GET /metrics × {args.scrapes}: {percentiles(http_times)}  mean {statistics.fmean(http_times) * 1000:.2f} ms")
    print(f"generate_latest × {args.scrapes}: {percentiles(direct)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
