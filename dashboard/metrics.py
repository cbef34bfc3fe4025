"""Prometheus exposition of the latest Snapshot: a custom Collector on an explicit registry.

Theory of operation: nothing is counted here. At every scrape ``UpscopeCollector.collect`` calls the
snapshot getter once and derives every family from that one immutable Snapshot, so a scrape is a
consistent picture and costs nothing between scrapes. Counters and histograms must only grow, but
the live analysis is a sliding window; so the runtime's own running totals win when the Snapshot
carries them (``extra["counters"]``: ``calls`` {state: n}, ``sip_responses`` {"METHOD CODE": n},
``rtp_streams``, ``rtp_packets_lost``, ``one_way_audio_calls``; ``extra["histograms"]``:
{name: {"buckets": {le: cumulative count}, "sum": s, "count": n}} for ``keepalive_rtt_seconds``,
``call_setup_seconds``, ``rtp_jitter_seconds``, ``rtp_mos``). Without them (offline analysis) the
values are computed from the analysis itself.

Label hygiene: every series carries ``system``; the other labels come from closed sets (states,
finding ids, SIP methods, probe modules, phases) or from configuration (probe targets, collector
names); ``_label`` bounds their length and masks anything shaped like an e-mail address or a phone
number. Call-IDs, numbers, names and secrets are never labels. Each family's HELP states its
cardinality bound per system.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import platform
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from importlib import metadata
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    StateSetMetricFamily,
)
from prometheus_client.registry import Collector

from collectors.runtime.totals import JITTER_BUCKETS, KEEPALIVE_BUCKETS, MOS_BUCKETS, SETUP_BUCKETS
from core.findings import CATALOGUE, sort_findings
from core.licensing import evaluate_licenses
from core.snapshot import ItspState, Snapshot

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9661  # see README "Prometheus metrics": the exporter port range 9100-9999 is fully allocated

JWT_STATES = ("not-set", "active", "invalid", "expiring", "expired")
_JWT_STATUS_TO_STATE = {  # core.jwt_status.JwtStatus values (DOMAIN §4) → label values
    "not set": "not-set", "active": "active", "invalid token": "invalid", "invalid": "invalid",
    "expiring": "expiring", "expired": "expired",
}
SIP_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "INFO", "NOTIFY", "SUBSCRIBE", "REFER",
    "UPDATE", "PRACK", "MESSAGE", "PUBLISH",
})
CALL_RESULTS = ("answered", "failed", "cancelled", "in-progress", "ringing")

# Bucket bounds in base units (seconds, MOS points).

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PHONE = re.compile(r"\+?\d[\d ()/-]{6,}\d")


def _label(value: object) -> str:
    """A label value: bounded, and never an e-mail address or something shaped like a phone number."""
    text = str(value)[:128]
    if _EMAIL.search(text) or _PHONE.fullmatch(text.split(":")[0]):
        return "redacted"
    return text


def _histogram(name: str, doc: str, system: str, values: Iterable[float], bounds: Sequence[float],
               given: Any = None) -> Metric:
    """From the runtime's accumulated histogram when it gives one, else from the Snapshot's values."""
    accumulated = _given_histogram(name, doc, system, given)
    if accumulated is not None:
        return accumulated
    family = HistogramMetricFamily(name, doc, labels=["system"])
    data = sorted(v for v in values if v == v)  # NaN is not an observation
    buckets, i = [], 0
    for bound in bounds:
        while i < len(data) and data[i] <= bound:
            i += 1
        buckets.append((repr(float(bound)), float(i)))
    buckets.append(("+Inf", float(len(data))))
    family.add_metric([system], buckets, float(sum(data)))
    return family


def _attr(obj: Any, *names: str) -> Any:
    """First present attribute or key of ``obj`` (the Snapshot's loosely typed parts)."""
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if not isinstance(obj, dict) and hasattr(obj, name):
            return getattr(obj, name)
    return None


def _ts(value: Any) -> float | None:
    """UNIX seconds from a float, a datetime or a date (a date means: valid through that day, UTC)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dt.date):
        return dt.datetime.combine(value + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
    return None


def _counters(snap: Snapshot) -> dict[str, Any]:
    """The runtime's monotonic totals (``extra["counters"]``): preferred over the analysis window,
    whose counts fall when old calls and streams leave it."""
    counters = snap.extra.get("counters")
    return counters if isinstance(counters, dict) else {}


def _histograms(snap: Snapshot) -> dict[str, Any]:
    given = snap.extra.get("histograms")
    return given if isinstance(given, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _given_histogram(name: str, doc: str, system: str, given: Any) -> Metric | None:
    """A histogram the runtime accumulated itself: ``{"buckets": {le: cumulative}, "sum", "count"}``."""
    if not isinstance(given, dict) or not isinstance(given.get("buckets"), dict):
        return None
    count, total = _number(given.get("count")), _number(given.get("sum"))
    if count is None or total is None:
        return None
    bounds: list[tuple[float, float]] = []
    for le, n in given["buckets"].items():
        try:
            bound = float(le)
        except (TypeError, ValueError):
            continue
        cumulative = _number(n)
        if math.isfinite(bound) and cumulative is not None:  # +Inf is ``count``
            bounds.append((bound, cumulative))
    bounds.sort()
    family = HistogramMetricFamily(name, doc, labels=["system"])
    family.add_metric([system], [(repr(le), n) for le, n in bounds] + [("+Inf", count)], total)
    return family


def _version() -> str:
    try:
        return metadata.version("upscope")
    except metadata.PackageNotFoundError:
        return "unknown"


class UpscopeCollector(Collector):
    """Reads ``get_snapshot()`` at scrape time. ``system`` labels series while no Snapshot exists yet."""

    def __init__(self, get_snapshot: Callable[[], Snapshot | None], system: str = "") -> None:
        self._get_snapshot = get_snapshot
        self._system = system
        self._version = _version()

    def describe(self) -> list[Metric]:
        return []  # families depend on the Snapshot: no eager collect at registration

    def collect(self) -> Iterator[Metric]:
        snap = self._get_snapshot()
        system = _label(snap.system if snap is not None else self._system)
        info = GaugeMetricFamily("upscope_build_info", "upscope version and Python (value 1). 1 series.",
                                 labels=["system", "version", "python"])
        info.add_metric([system, self._version, platform.python_version()], 1.0)
        yield info
        available = GaugeMetricFamily("upscope_snapshot_available",
                                      "1 when the service has a Snapshot to expose, else 0. 1 series.",
                                      labels=["system"])
        available.add_metric([system], 1.0 if snap is not None else 0.0)
        yield available
        if snap is None:
            return
        failed: list[str] = []
        for section in (self._itsp, self._sip, self._calls, self._media, self._tls_and_probes,
                        self._jwt, self._licenses, self._findings, self._collectors):
            try:
                yield from section(snap, system)
            except Exception:  # a malformed part must not take the whole scrape down
                log.exception("metrics: section %s failed", section.__name__)
                failed.append(section.__name__.strip("_"))
        errors = GaugeMetricFamily("upscope_exposition_errors",
                                   "1 for a metrics section that failed at this scrape (see the log). "
                                   "≤ 9 series.", labels=["system", "section"])
        for name in failed:
            errors.add_metric([system, name], 1.0)
        yield errors
        stamp = GaugeMetricFamily("upscope_snapshot_timestamp_seconds",
                                  "When the exposed Snapshot was taken. 1 series.", labels=["system"])
        stamp.add_metric([system], snap.now)
        yield stamp

    # --- sections: each yields families for one area ---------------------------------------------

    def _itsp(self, snap: Snapshot, system: str) -> Iterator[Metric]:
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
        analysis = snap.analysis
        regs = analysis.registrations if analysis is not None else ()
        expiry = itsp.expiry_ts
        if expiry is None:
            expiry = max((r.expiry_ts for r in regs if r.expiry_ts is not None), default=None)
        last = itsp.last_success_ts
        if last is None:
            last = max((r.last_success_ts for r in regs if r.last_success_ts is not None), default=None)
        for name, doc, value in (
            ("upscope_itsp_status_since_timestamp_seconds", "Since when the ITSP status holds. 1 series.",
             itsp.since),
            ("upscope_registration_expiry_timestamp_seconds",
             "When the granted registration runs out without a refresh. 1 series.", expiry),
            ("upscope_registration_last_success_timestamp_seconds",
             "Last successful REGISTER (2xx). 1 series.", last),
        ):
            if value is not None:
                family = GaugeMetricFamily(name, doc, labels=["system"])
                family.add_metric([system], float(value))
                yield family

    def _sip(self, snap: Snapshot, system: str) -> Iterator[Metric]:
        analysis = snap.analysis
        counts: Counter[tuple[str, str]] = Counter()
        given = _counters(snap).get("sip_responses")
        if isinstance(given, dict):  # "METHOD CODE" → total
            for key, n in given.items():
                parts = str(key).split()
                if _number(n) is not None and parts:
                    counts[(parts[0] if len(parts) == 2 else "", parts[-1])] += int(n)
        elif analysis is not None and analysis.sip_messages:
            for m in analysis.sip_messages:
                if m.status is not None:
                    counts[(m.cseq_method, str(m.status))] += 1
        elif analysis is not None:
            for key, n in analysis.sip_responses.items():  # "200" or "REGISTER 200"
                parts = str(key).split()
                counts[(parts[0] if len(parts) == 2 else "", parts[-1])] += int(n)
        responses = CounterMetricFamily(
            "upscope_sip_responses", "SIP responses seen, by CSeq method and status code. Bounded: "
            "15 methods (others → other) × codes 100-699 (others → other); in practice < 30 series.",
            labels=["system", "method", "code"])
        merged: Counter[tuple[str, str]] = Counter()
        for (method, code), n in counts.items():
            method = method.upper() if method.upper() in SIP_METHODS else "other"
            code = code if (code.isascii() and code.isdigit()) and 100 <= int(code) <= 699 else "other"
            merged[(method, code)] += n
        for (method, code), n in sorted(merged.items()):
            responses.add_metric([system, method, code], float(n))
        yield responses
        rtts = [ms / 1000.0 for k in (analysis.keepalives if analysis is not None else ()) for ms in k.rtts_ms]
        yield _histogram("upscope_keepalive_rtt_seconds",
                         "Round-trip time of trunk keepalives (OPTIONS / CRLF). 1 histogram.",
                         system, rtts, KEEPALIVE_BUCKETS, _histograms(snap).get("keepalive_rtt_seconds"))

    def _calls(self, snap: Snapshot, system: str) -> Iterator[Metric]:
        calls = snap.analysis.calls if snap.analysis is not None else ()
        active = snap.extra.get("calls_active")
        if not isinstance(active, int | float) or isinstance(active, bool):
            active = sum(1 for c in calls if c.state in ("in-progress", "ringing")
                         or (c.state == "answered" and c.end_ts is None))
        gauge = GaugeMetricFamily("upscope_calls_active", "Calls in progress on the trunk. 1 series.",
                                  labels=["system"])
        gauge.add_metric([system], float(active))
        yield gauge
        given = _counters(snap).get("calls")
        if isinstance(given, dict):  # completed calls by state, counted once by the runtime
            results: Counter[str] = Counter()
            for state, n in given.items():
                if _number(n) is not None:
                    results[state if state in CALL_RESULTS else "other"] += int(n)
        else:
            results = Counter(c.state if c.state in CALL_RESULTS else "other" for c in calls)
        total = CounterMetricFamily("upscope_calls", "Calls seen, by result. ≤ 6 series "
                                    "(answered, failed, cancelled, in-progress, ringing, other).",
                                    labels=["system", "result"])
        for result in (*CALL_RESULTS, "other"):
            if result in results or result in CALL_RESULTS:
                total.add_metric([system, result], float(results.get(result, 0)))
        yield total
        yield _histogram("upscope_call_setup_seconds", "INVITE to 200 OK of answered calls. 1 histogram.",
                         system, [c.setup_ms / 1000.0 for c in calls if c.setup_ms is not None], SETUP_BUCKETS,
                         _histograms(snap).get("call_setup_seconds"))
        configured = snap.extra.get("trunk_lines_configured")
        if configured is None:
            configured = _attr(_attr(snap.site, "connectivity"), "simultaneous_calls")
        used = snap.extra.get("trunk_lines_used", active)
        lines = GaugeMetricFamily("upscope_trunk_lines",
                                  "Unify Phone trunk lines (simultaneous circuit calls): used and configured. "
                                  "2 series.", labels=["system", "state"])
        lines.add_metric([system, "used"], float(used))
        if isinstance(configured, int | float) and not isinstance(configured, bool):
            lines.add_metric([system, "configured"], float(configured))
        yield lines

    def _media(self, snap: Snapshot, system: str) -> Iterator[Metric]:
        analysis = snap.analysis
        streams = analysis.rtp_streams if analysis is not None else ()
        calls = analysis.calls if analysis is not None else ()
        counters = _counters(snap)
        for name, key, doc, value in (
            ("upscope_rtp_streams", "rtp_streams", "RTP streams seen. 1 series.", len(streams)),
            ("upscope_rtp_packets_lost", "rtp_packets_lost",
             "RTP packets lost (expected − received, per stream, ≥ 0). 1 series.",
             sum(max(s.lost, 0) for s in streams)),
            ("upscope_one_way_audio_calls", "one_way_audio_calls",
             "Calls whose RTP flowed in one direction only. 1 series.", sum(1 for c in calls if c.one_way_audio)),
        ):
            counter = CounterMetricFamily(name, doc, labels=["system"])
            given = _number(counters.get(key))
            counter.add_metric([system], given if given is not None else float(value))
            yield counter
        yield _histogram("upscope_rtp_jitter_seconds",
                         "Mean interarrival jitter per RTP stream (RFC 3550 A.8). 1 histogram.",
                         system, [s.mean_jitter_ms / 1000.0 for s in streams], JITTER_BUCKETS,
                         _histograms(snap).get("rtp_jitter_seconds"))
        yield _histogram("upscope_rtp_mos", "MOS (ITU-T G.107 E-model) per RTP stream. 1 histogram.",
                         system, [s.mos for s in streams if s.mos is not None], MOS_BUCKETS,
                         _histograms(snap).get("rtp_mos"))

    def _tls_and_probes(self, snap: Snapshot, system: str) -> Iterator[Metric]:
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
            key = (_label(result.probe), _label(result.target))
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
            key = ("capture", _label(f"{flow.server}:{flow.server_port}"))
            if flow.cert_not_after is not None and key not in seen:
                seen.add(key)
                expiry.add_metric([system, *key], float(flow.cert_not_after))
        yield expiry
        yield success
        yield duration

    def _jwt(self, snap: Snapshot, system: str) -> Iterator[Metric]:
        state = "not-set"
        expiry: float | None = None
        if snap.jwt is not None:
            raw = _attr(snap.jwt, "status", "state")
            raw = getattr(raw, "value", raw)
            state = _JWT_STATUS_TO_STATE.get(str(raw).strip().lower(), "invalid")
            expiry = _ts(_attr(snap.jwt, "expires_at", "expiry_ts", "exp"))
        status = StateSetMetricFamily("upscope_jwt_status", "JWT status (DOMAIN §4; StateSet). 5 series.",
                                      labels=["system"])
        status.add_metric([system], {s: s == state for s in JWT_STATES})
        yield status
        if expiry is not None:
            family = GaugeMetricFamily("upscope_jwt_expiry_timestamp_seconds", "JWT exp claim. 1 series.",
                                       labels=["system"])
            family.add_metric([system], expiry)
            yield family

    def _licenses(self, snap: Snapshot, system: str) -> Iterator[Metric]:
        pools: dict[str, tuple[float, float | None]] = {}
        support: float | None = _ts(snap.extra.get("software_support_until"))
        given = snap.extra.get("licenses")
        if isinstance(given, dict):
            for name, pool in given.items():
                total, used = _attr(pool, "total"), _attr(pool, "used")
                if isinstance(total, int | float):
                    pools[str(name)] = (float(total), float(used) if isinstance(used, int | float) else None)
        elif snap.site is not None and hasattr(snap.site, "licenses"):
            report = evaluate_licenses(snap.site, dt.datetime.fromtimestamp(snap.now, dt.UTC))
            pools = {name: (float(p.total), float(p.used)) for name, p in report.pools.items()}
            if support is None:
                support = _ts(report.software_support_until)
        family = GaugeMetricFamily("upscope_licenses",
                                   "License pools (License Management → Local User licenses): total and used. "
                                   "2 series per pool type (4 types: ip_user_mobility, unify_phone, voicemail, "
                                   "ip_user_desk).", labels=["system", "type", "state"])
        for name, (total, used) in sorted(pools.items()):
            family.add_metric([system, _label(name), "total"], total)
            if used is not None:
                family.add_metric([system, _label(name), "used"], used)
        yield family
        if support is not None:
            expiry = GaugeMetricFamily("upscope_software_support_expiry_timestamp_seconds",
                                       "End of Software Support (00:00 UTC after the last valid day). 1 series.",
                                       labels=["system"])
            expiry.add_metric([system], support)
            yield expiry

    def _findings(self, snap: Snapshot, system: str) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "upscope_finding_active",
            f"Open findings by id (0 when none). One series per catalogue id ({len(CATALOGUE)}) "
            "plus any id outside the catalogue.", labels=["system", "id", "severity"])
        active = Counter((f.id, f.severity.value) for f in snap.findings)
        rows = {(spec.id, spec.severity.value): 0 for spec in CATALOGUE.values()}
        for key, n in active.items():
            rows[key] = n
        for (fid, severity), n in sorted(rows.items()):
            family.add_metric([system, _label(fid), severity], float(n))
        yield family
        # The title a fleet view shows next to the id: one series per open id (the most severe of its
        # findings), absent when the id is closed. Titles come from the catalogue and the rules' fixed
        # wordings, never from captured data.
        info = GaugeMetricFamily(
            "upscope_finding_info", "Title of each open finding id (value 1). ≤ 1 series per open "
            f"finding id (at most {len(CATALOGUE)} plus any id outside the catalogue).",
            labels=["system", "id", "severity", "title"])
        titled: set[str] = set()
        for f in sort_findings(list(snap.findings)):
            if f.id not in titled:
                titled.add(f.id)
                info.add_metric([system, _label(f.id), f.severity.value, _label(f.title)], 1.0)
        yield info

    def _collectors(self, snap: Snapshot, system: str) -> Iterator[Metric]:
        family = GaugeMetricFamily("upscope_collector_up",
                                   "1 when the collector's last run worked, 0 when it marked itself down. "
                                   "1 series per collector (capture, trace log, probes, token, license: ≤ 10).",
                                   labels=["system", "collector"])
        seen: set[str] = set()
        for c in snap.collectors:
            name = _label(c.name)
            if name not in seen:
                seen.add(name)
                family.add_metric([system, name], 1.0 if c.up else 0.0)
        yield family


def make_registry(get_snapshot: Callable[[], Snapshot | None], system: str = "") -> CollectorRegistry:
    """An explicit registry holding only the upscope collector (no process/platform defaults)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(UpscopeCollector(get_snapshot, system))
    return registry
