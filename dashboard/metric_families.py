"""The metric families of a Snapshot, one function per area (ITSP, SIP, calls, media, TLS and
probes, JWT, licences, findings, collectors), and the label hygiene they share: every label value
is bounded, and anything shaped like an e-mail address or a phone number is masked."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    StateSetMetricFamily,
)

from collectors.runtime.totals import RunningTotals
from core.findings import CATALOGUE, sort_findings
from core.jwt_status import JwtStatus
from core.snapshot import Histogram, ItspState, Snapshot, Totals

EMPTY_TOTALS = RunningTotals(forget_after_s=0.0).snapshot()

#: JWT status → StateSet label value.
JWT_STATES: dict[JwtStatus, str] = {
    JwtStatus.NOT_SET: "not-set", JwtStatus.ACTIVE: "active", JwtStatus.INVALID: "invalid",
    JwtStatus.EXPIRING: "expiring", JwtStatus.EXPIRED: "expired",
}
SIP_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO", "NOTIFY", "SUBSCRIBE", "REFER",
    "UPDATE", "PRACK", "MESSAGE", "PUBLISH",
})
CALL_RESULTS = ("answered", "failed", "cancelled", "in-progress", "ringing")

# Bucket bounds in base units (seconds, MOS points).

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE = re.compile(r"\+?\d[\d ()/-]{6,}\d")


def label(value: object) -> str:
    """A label value: bounded, and never an e-mail address or something shaped like a phone number."""
    text = str(value)[:128]
    if _EMAIL.search(text) or _PHONE.fullmatch(text.split(":")[0]):
        return "redacted"
    return text


def histogram(name: str, doc: str, system: str, hist: Histogram) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=["system"])
    buckets = [(repr(float(b)), float(n)) for b, n in zip(hist.bounds, hist.counts, strict=True)]
    family.add_metric([system], [*buckets, ("+Inf", float(hist.count))], hist.sum)
    return family


def totals_of(snap: Snapshot) -> Totals:
    """The producer always fills ``totals``; a Snapshot built without it exposes zeros."""
    return snap.totals if snap.totals is not None else EMPTY_TOTALS


def itsp(snap: Snapshot, system: str) -> Iterator[Metric]:
    itsp = snap.itsp
    registered = GaugeMetricFamily("upscope_itsp_registered",
                                   "1 when the Unify Phone (Cloud) trunk is registered, else 0. 1 series.",
                                   labels=["system"])
    registered.add_metric([system], 1.0 if itsp.state is ItspState.REGISTERED else 0.0)
    yield registered
    status = StateSetMetricFamily("upscope_itsp_status",
                                  "ITSP status of Unify Phone (Cloud) (StateSet). 4 series.",
                                  labels=["system"])
    status.add_metric([system], {s.value: s is itsp.state for s in ItspState})
    yield status
    for name, doc, value in (
        ("upscope_itsp_status_since_timestamp_seconds", "Since when the ITSP status holds. 1 series.",
         itsp.since),
        ("upscope_registration_expiry_timestamp_seconds",
         "When the granted registration runs out without a refresh. 1 series.", itsp.expiry_ts),
        ("upscope_registration_last_success_timestamp_seconds",
         "Last successful REGISTER (2xx). 1 series.", itsp.last_success_ts),
    ):
        if value is not None:
            family = GaugeMetricFamily(name, doc, labels=["system"])
            family.add_metric([system], float(value))
            yield family

def sip(snap: Snapshot, system: str) -> Iterator[Metric]:
    totals = totals_of(snap)
    responses = CounterMetricFamily(
        "upscope_sip_responses", "SIP responses seen, by CSeq method and status code. Bounded: "
        "15 methods (others → other) × codes 100-699 (others → other); in practice < 30 series.",
        labels=["system", "method", "code"])
    merged: Counter[tuple[str, str]] = Counter()
    for key, n in totals.sip_responses.items():  # "METHOD CODE"
        method, _, code = key.rpartition(" ")
        method = method.upper() if method.upper() in SIP_METHODS else "other"
        code = code if (code.isascii() and code.isdigit()) and 100 <= int(code) <= 699 else "other"
        merged[(method, code)] += n
    for (method, code), n in sorted(merged.items()):
        responses.add_metric([system, method, code], float(n))
    yield responses
    yield histogram("upscope_keepalive_rtt_seconds",
                     "Round-trip time of trunk keepalives (OPTIONS / CRLF). 1 histogram.",
                     system, totals.keepalive_rtt_seconds)

def calls(snap: Snapshot, system: str) -> Iterator[Metric]:
    gauge = GaugeMetricFamily("upscope_calls_active", "Calls in progress on the trunk. 1 series.",
                              labels=["system"])
    gauge.add_metric([system], float(snap.trunk.used))
    yield gauge
    totals = totals_of(snap)
    results: Counter[str] = Counter()
    for state, n in totals.calls.items():
        results[state if state in CALL_RESULTS else "other"] += n
    total = CounterMetricFamily("upscope_calls", "Calls seen, by result. ≤ 6 series "
                                "(answered, failed, cancelled, in-progress, ringing, other).",
                                labels=["system", "result"])
    for result in (*CALL_RESULTS, "other"):
        if result in results or result in CALL_RESULTS:
            total.add_metric([system, result], float(results.get(result, 0)))
    yield total
    yield histogram("upscope_call_setup_seconds", "INVITE to 200 OK of answered calls. 1 histogram.",
                     system, totals.call_setup_seconds)
    lines = GaugeMetricFamily("upscope_trunk_lines",
                              "Unify Phone trunk lines (simultaneous circuit calls): used and configured. "
                              "2 series.", labels=["system", "state"])
    lines.add_metric([system, "used"], float(snap.trunk.used))
    if snap.trunk.configured is not None:
        lines.add_metric([system, "configured"], float(snap.trunk.configured))
    yield lines

def media(snap: Snapshot, system: str) -> Iterator[Metric]:
    totals = totals_of(snap)
    for name, doc, value in (
        ("upscope_rtp_streams", "RTP streams seen. 1 series.", totals.rtp_streams),
        ("upscope_rtp_packets_lost", "RTP packets lost (expected − received, per stream, ≥ 0). 1 series.",
         totals.rtp_packets_lost),
        ("upscope_one_way_audio_calls", "Calls whose RTP flowed in one direction only. 1 series.",
         totals.one_way_audio_calls),
    ):
        counter = CounterMetricFamily(name, doc, labels=["system"])
        counter.add_metric([system], float(value))
        yield counter
    yield histogram("upscope_rtp_jitter_seconds",
                     "Mean interarrival jitter per RTP stream (RFC 3550 A.8). 1 histogram.",
                     system, totals.rtp_jitter_seconds)
    yield histogram("upscope_rtp_mos", "MOS (ITU-T G.107 E-model) per RTP stream. 1 histogram.",
                     system, totals.rtp_mos)

def tls_and_probes(snap: Snapshot, system: str) -> Iterator[Metric]:
    expiry = GaugeMetricFamily(
        "upscope_tls_cert_expiry_timestamp_seconds",
        "notAfter of the peer certificate, by source (probe module or capture) and server. "
        "≤ 1 series per probe target + 1 per TLS server in the capture (typically 1-3).",
        labels=["system", "source", "target"])
    seen: set[tuple[str, str]] = set()
    success = GaugeMetricFamily("upscope_probe_success", "1 when the last run of the probe succeeded. "
                                "1 series per configured probe (typically 3-6).",
                                labels=["system", "probe", "target"])
    duration = GaugeMetricFamily("upscope_probe_duration_seconds",
                                 "Duration of the last probe run by phase (resolve, connect, tls, request). "
                                 "≤ 4 series per configured probe.", labels=["system", "probe", "target", "phase"])
    probed: set[tuple[str, str]] = set()
    for result in snap.probes:
        key = (label(result.probe), label(result.target))
        if key in probed:
            continue  # one series per (probe, target): the Snapshot holds the latest first
        probed.add(key)
        success.add_metric([system, *key], 1.0 if result.success else 0.0)
        for phase in ("resolve", "connect", "tls", "request"):
            if phase in result.phases:
                duration.add_metric([system, *key, phase], float(result.phases[phase]))
        not_after = result.details.get("cert_not_after")
        if isinstance(not_after, int | float) and key not in seen:
            seen.add(key)
            expiry.add_metric([system, *key], float(not_after))
    flows = snap.analysis.tls_flows if snap.analysis is not None else ()
    for flow in flows:
        key = ("capture", label(f"{flow.server}:{flow.server_port}"))
        if flow.cert_not_after is not None and key not in seen:
            seen.add(key)
            expiry.add_metric([system, *key], float(flow.cert_not_after))
    yield expiry
    yield success
    yield duration

def jwt(snap: Snapshot, system: str) -> Iterator[Metric]:
    jwt = snap.jwt
    state = JWT_STATES[jwt.status] if jwt is not None else "not-set"
    status = StateSetMetricFamily("upscope_jwt_status", "JWT status (StateSet). 5 series.",
                                  labels=["system"])
    status.add_metric([system], {s: s == state for s in JWT_STATES.values()})
    yield status
    if jwt is not None and jwt.expires_at is not None:
        family = GaugeMetricFamily("upscope_jwt_expiry_timestamp_seconds", "JWT exp claim. 1 series.",
                                   labels=["system"])
        family.add_metric([system], jwt.expires_at.timestamp())
        yield family

def licenses(snap: Snapshot, system: str) -> Iterator[Metric]:
    family = GaugeMetricFamily("upscope_licenses",
                               "License pools (License Management → Local User licenses): total and used. "
                               "2 series per pool type (4 types: ip_user_mobility, unify_phone, voicemail, "
                               "ip_user_desk).", labels=["system", "type", "state"])
    pools = snap.licenses.pools if snap.licenses is not None else {}
    for name, pool in sorted(pools.items()):
        family.add_metric([system, label(name), "total"], float(pool.total))
        family.add_metric([system, label(name), "used"], float(pool.used))
    yield family
    until = snap.licenses.software_support_until if snap.licenses is not None else None
    if until is not None:
        expiry = GaugeMetricFamily("upscope_software_support_expiry_timestamp_seconds",
                                   "End of Software Support (00:00 UTC after the last valid day). 1 series.",
                                   labels=["system"])
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
        expiry.add_metric([system], end.timestamp())
        yield expiry

def findings(snap: Snapshot, system: str) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "upscope_finding_active",
        f"Open findings by id (0 when none). One series per catalogue id ({len(CATALOGUE)}) "
        "plus any id outside the catalogue.", labels=["system", "id", "severity"])
    active = Counter((f.id, f.severity.value) for f in snap.finding_list)
    rows = {(spec.id, spec.severity.value): 0 for spec in CATALOGUE.values()}
    for key, n in active.items():
        rows[key] = n
    for (fid, severity), n in sorted(rows.items()):
        family.add_metric([system, label(fid), severity], float(n))
    yield family
    # The title a fleet view shows next to the id: one series per open id (the most severe of its
    # findings), absent when the id is closed. Titles come from the catalogue and the rules' fixed
    # wordings, never from captured data.
    info = GaugeMetricFamily(
        "upscope_finding_info", "Title of each open finding id (value 1). ≤ 1 series per open "
        f"finding id (at most {len(CATALOGUE)} plus any id outside the catalogue).",
        labels=["system", "id", "severity", "title"])
    titled: set[str] = set()
    for f in sort_findings(list(snap.finding_list)):
        if f.id not in titled:
            titled.add(f.id)
            info.add_metric([system, label(f.id), f.severity.value, label(f.title)], 1.0)
    yield info

def collectors(snap: Snapshot, system: str) -> Iterator[Metric]:
    family = GaugeMetricFamily("upscope_collector_up",
                               "1 when the collector's last run worked, 0 when it marked itself down. "
                               "1 series per collector (capture, trace log, probes, token, license: ≤ 10).",
                               labels=["system", "collector"])
    seen: set[str] = set()
    for c in snap.collectors:
        name = label(c.name)
        if name not in seen:
            seen.add(name)
            family.add_metric([system, name], 1.0 if c.up else 0.0)
    yield family


#: The sections of a scrape, in order; a section that fails is named by its function.
SECTIONS: tuple[Callable[[Snapshot, str], Iterator[Metric]], ...] = (itsp, sip, calls, media, tls_and_probes, jwt, licenses, findings, collectors,)
