"""The ``upscope serve`` runtime.

Theory of operation: a scheduler thread wakes every ``tick_s`` and starts each due *collector*
(site, token, trace log, capture analysis, one per probe) on a small thread pool, so one slow probe
never delays the others. A collector returns data or raises; either way it records its status
(``upscope_collector_up``) and the service *reduces*: diagnosis over the latest inputs →
a new immutable Snapshot, swapped in atomically. Changes (ITSP state, findings opened/closed,
completed calls and streams, probe results) are written to the History; a restart reloads the open
findings and last ITSP state so nothing is reported twice. SIGHUP → ``reload()`` (site file);
SIGTERM/SIGINT → ``stop()``.

Faults of the machine are "no data" with a reason, never a verdict: a full disk marks the
``history`` collector (rows wait in memory and are written once there is room) and the
``capture`` collector (the ring cannot grow) down with "disk full"; probes stay as measured.
Each such fault is logged once a minute, not once per collector run. What the pages read on
demand (a call's pcap or messages, a packet's dissection) is ``collectors.runtime.on_demand``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.allocator import limit_arenas, release_free_heap
from collectors.analyze import Pipeline, feed_decrypted_sip
from collectors.producer import Inputs, build_snapshot
from collectors.runtime.capture_filter import trunk_filter
from collectors.runtime.history import History
from collectors.runtime.on_demand import OnDemandReads
from collectors.runtime.ring import CaptureRing, RingConfig, RingStats
from collectors.runtime.tail import LogTail
from collectors.runtime.totals import RunningTotals, digest
from collectors.runtime.window import recent
from core import netns
from core.analysis import AnalysisResult
from core.diagnosis import DiagnosisOptions
from core.errors import UpscopeError
from core.findings import Finding, sort_findings
from core.gcp_ranges import GcpRanges, load_gcp_ranges
from core.probes import ProbeResult
from core.registrations import RegistrationLedger
from core.site.model import Site
from core.smallfile import UnreadableFile, read_small_file
from core.snapshot import CollectorStatus, ItspStatus, OpenFinding, Snapshot
from traces.tracelog import TraceLogReader, TraceMessage

log = logging.getLogger("upscope.serve")
MAX_GCP_BYTES = 16 * 1024 * 1024  # the real cloud.json is ~100 KB
FAULT_LOG_INTERVAL_S = 60.0
MAX_TOKEN_BYTES = 64 * 1024  # a JWT is a few KB; more is handed on to be judged an invalid token
#: Below this much free space the capture ring cannot rotate: its files come out empty.
MIN_FREE_BYTES = 1 << 20


@dataclass
class ServeConfig:
    site_path: Path
    interface: str | None = None
    trace_log: Path | None = None
    keylog: Path | None = None
    jwt_file: Path | None = None
    captures: tuple[Path, ...] = ()  # capture files written by someone else (e.g. the lab) to follow
    db_path: Path = Path("upscope.db")
    ring_dir: Path | None = None
    ring_files: int = 10
    ring_file_mb: int = 20
    osbiz_https_ports: tuple[int, ...] = (443,)  # where the OSBiz's inbound HTTPS would answer (lab: a stand-in)
    analysis_interval_s: float = 5.0
    probe_interval_s: float = 15.0
    probe_timeout_s: float = 5.0
    token_interval_s: float = 30.0
    window_s: float = 60.0  # live evidence window: what happened in the last minute
    hold_s: float = 30.0  # a finding closes after its evidence has been gone this long
    #: A registration counts this long past its granted expiry (a late or late-read refresh).
    registration_grace_s: float = 30.0
    retention_s: float = 14 * 86400.0
    probes: tuple[str, ...] = ("sip_options_tls", "tcp_connect", "stun", "https_rest")
    probe_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    tick_s: float = 0.5
    netns: str | None = None  # capture and probe from inside this network namespace (a lab's own)


class Service(OnDemandReads):
    def __init__(
        self,
        cfg: ServeConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.history = History(cfg.db_path)
        self._lock = threading.Lock()
        self._reduce_lock = threading.Lock()
        self._stop = threading.Event()
        self._reload = threading.Event()
        limit_arenas()  # before any of the service's threads allocates (see collectors.allocator)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="collector")
        # The capture analysis (the big allocations) always runs on this one thread, so its freed
        # memory is reused cycle after cycle from one arena instead of fragmenting the probes' too.
        self._analysis_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        self._running: dict[str, bool] = {}
        self._due: dict[str, float] = {}
        self._status: dict[str, CollectorStatus] = {}
        self._site: Site | None = None
        self._site_error = ""
        self._site_mtime: int | None = None
        self._gcp: GcpRanges | None = None
        self._jwt_text: str | None = None
        self._analysis: AnalysisResult | None = None
        self._analysed_paths: list[Path] = []
        self._probe_results: dict[str, ProbeResult] = {}
        # Recent results per probe: a connector counts as lost only when its probes fail over a
        # span (``DiagnosisOptions.probe_outage_s``), not on one lost probe.
        self._probe_recent: dict[str, deque[ProbeResult]] = {}
        self._ring: CaptureRing | None = None
        self._tail = LogTail(cfg.trace_log) if cfg.trace_log is not None else None
        self._trace_reader = TraceLogReader()
        self._trace_recent: deque[TraceMessage] = deque()
        self._snapshot: Snapshot | None = None
        self._thread: threading.Thread | None = None
        # Items reappear while they are inside the analysed horizon; remember them a little longer.
        self._totals = RunningTotals(forget_after_s=2 * self._horizon_s() + 60.0)
        # The registration state outlives the analysis window and restarts (core.registrations).
        self._ledger = RegistrationLedger.from_rows(self.history.registrations())
        self._evidence_until: float | None = None
        last = self.history.last_itsp_state()
        self._itsp_last: tuple[float, str] | None = last
        self._open: dict[tuple[str, str], float] = self.history.open_findings()
        self._last_seen: dict[tuple[str, str], tuple[float, Finding]] = {}
        self._started = clock()
        self._fault_logged: dict[str, float] = {}
        self._keylog_checked: tuple[float, str | None] = (-FAULT_LOG_INTERVAL_S, None)
        self._on_demand = threading.BoundedSemaphore(1)

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._load_site()
        # The capture and the scheduler's threads (which run the probes) inherit the namespace.
        with netns.entered(self.cfg.netns):
            self._start_collectors()

    def _start_collectors(self) -> None:
        if self.cfg.interface:
            ring_dir = self.cfg.ring_dir or Path(self.cfg.db_path).with_suffix(".ring")
            capture_filter = trunk_filter(self._site, self.cfg.osbiz_https_ports)
            self._ring = CaptureRing(
                RingConfig(self.cfg.interface, Path(ring_dir), capture_filter, self.cfg.ring_files, self.cfg.ring_file_mb,
                           max(5, int(self.cfg.window_s / 2)))
            )
            self._ring.start()
        self._reduce()
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> RingStats | None:
        """Stop collectors and the capture; returns the capture tool's final statistics (drops)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._analysis_pool.shutdown(wait=True, cancel_futures=True)
        ring = self._ring.stop() if self._ring is not None else None
        if self._tail is not None:
            self._tail.close()
        self.history.close()
        return ring

    def reload(self) -> None:
        """SIGHUP: re-read the site file at the next tick."""
        self._reload.set()

    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def run_once(self) -> Snapshot:
        """Run every collector once, synchronously (tests, ``--once``)."""
        self._load_site()
        for name, fn in self._collectors().items():
            self._run(name, fn)
        return self._reduce()

    def secret_values(self) -> tuple[str, ...]:
        """Resolved secrets of the site and the JWT file: scrubbed from every export."""
        site_values = self._site.secret_values() if self._site is not None else ()
        return (*([self._jwt_text] if self._jwt_text else []), *site_values)

    # --- scheduling -----------------------------------------------------------------------
    def _collectors(self) -> dict[str, Callable[[], None]]:
        jobs: dict[str, Callable[[], None]] = {"token": self._collect_token}
        if self.cfg.captures or self._tail is not None or self._ring is not None:
            jobs["capture"] = self._collect_capture
        if self._site is not None:
            for module in self.cfg.probes:
                target = self._probe_target(module)
                if target:
                    jobs[f"probe:{module}"] = functools.partial(self._collect_probe, module, target)
        return jobs

    def _interval(self, name: str) -> float:
        if name.startswith("probe:"):
            return self.cfg.probe_interval_s
        return {"token": self.cfg.token_interval_s, "capture": self.cfg.analysis_interval_s}.get(name, 10.0)

    def _loop(self) -> None:
        last_prune = 0.0
        while not self._stop.is_set():
            now = self.clock()
            if self._reload.is_set() or self._site_changed():
                self._reload.clear()
                self._load_site()
                self._reduce()
            for name, fn in self._collectors().items():
                if self._running.get(name) or self._due.get(name, 0.0) > now:
                    continue
                self._running[name] = True
                self._due[name] = now + self._interval(name)
                pool = self._analysis_pool if name == "capture" else self._pool
                pool.submit(self._run_and_reduce, name, fn)
            if now - last_prune > 3600:
                last_prune = now
                self.history.prune(now - self.cfg.retention_s)
            self._stop.wait(self.cfg.tick_s)

    def _run_and_reduce(self, name: str, fn: Callable[[], None]) -> None:
        try:
            self._run(name, fn)
            self._reduce()
        except Exception:  # the scheduler must survive anything a collector or rule does
            if self._fault_due(f"reduce:{name}"):
                log.exception("reduce after %s failed", name)
        finally:
            self._running[name] = False

    def _fault_due(self, key: str) -> bool:
        """True at most once a minute per fault: a fault that lasts is logged, not repeated."""
        now = self.clock()
        if now - self._fault_logged.get(key, -FAULT_LOG_INTERVAL_S) < FAULT_LOG_INTERVAL_S:
            return False
        self._fault_logged[key] = now
        return True

    def _history_status(self) -> None:
        """The history "collector": down with the reason while writes fail, rows kept meanwhile."""
        self.history.flush()
        error = self.history.error
        if error:
            reason = f"{error} ({self.history.pending} rows waiting)" if self.history.pending else error
            if self._fault_due("history"):
                log.warning("history %s: %s", self.cfg.db_path, reason)
            self._set_status("history", False, reason)
        else:
            self._set_status("history", True, "")

    def _run(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except (UpscopeError, OSError, ValueError) as exc:
            self._set_status(name, False, str(exc))
        except Exception as exc:  # a bug in one collector must not take the others down
            if self._fault_due(f"collector:{name}"):
                log.exception("collector %s crashed", name)
            self._set_status(name, False, f"internal error: {type(exc).__name__}")

    def _set_status(self, name: str, up: bool, reason: str) -> None:
        with self._lock:
            self._status[name] = CollectorStatus(name, up, reason, self.clock())

    # --- collectors -----------------------------------------------------------------------
    def _site_changed(self) -> bool:
        """Wizards (and the lab) rewrite the site file in place: follow it without a SIGHUP."""
        try:
            return self.cfg.site_path.stat().st_mtime_ns != self._site_mtime
        except OSError:
            return False

    def _load_site(self) -> None:
        from core.site import load_site

        try:
            self._site_mtime = self.cfg.site_path.stat().st_mtime_ns
        except OSError:
            self._site_mtime = None
        try:
            self._site = load_site(self.cfg.site_path)
            self._site_error = ""
            self._set_status("site", True, "")
            self._gcp = self._load_gcp(self._site)
        except UpscopeError as exc:
            # Keep the last good site: a typo during editing must not blank the dashboard.
            self._site_error = str(exc)
            self._set_status("site", False, str(exc))

    def _load_gcp(self, site: Site) -> GcpRanges | None:
        """The site's copy of the GCP ranges (cloud.json), relative paths from the site file's folder."""
        name = site.gcp_ranges_file
        if not name:
            return None
        path = Path(name) if Path(name).is_absolute() else self.cfg.site_path.parent / name
        try:
            text = read_small_file(path, MAX_GCP_BYTES, "GCP ranges")
            ranges = load_gcp_ranges(text.decode("utf-8", "replace"))
        except (OSError, UpscopeError, ValueError) as exc:
            self._set_status("gcp_ranges", False, f"{path}: {exc}")
            return None
        self._set_status("gcp_ranges", True, "")
        return ranges

    def _collect_token(self) -> None:
        path = self.cfg.jwt_file
        if path is None:
            self._jwt_text = None
            self._set_status("token", True, "no JWT file configured")
            return
        try:
            text = read_small_file(path, MAX_TOKEN_BYTES, "JWT file", head=True).decode("utf-8", "replace").strip()
        except UnreadableFile:
            self._jwt_text = None
            raise
        self._jwt_text = text or None
        self._set_status("token", True, "")

    def _collect_trace(self) -> None:
        """Read what the OSBiz wrote since the last cycle; keep messages of the evidence horizon."""
        assert self._tail is not None and self.cfg.trace_log is not None
        for event in self._tail.read_new():
            if event.kind == "missing":
                self._set_status("trace_log", False, f"trace log {self.cfg.trace_log} not found")
                return
            if event.kind in ("rotated", "truncated"):
                self._trace_reader = TraceLogReader()  # a new file starts outside any block
            if event.data:
                self._trace_recent.extend(self._trace_reader.feed(event.data))
        horizon = self.clock() - self._horizon_s()
        while self._trace_recent and self._trace_recent[0].ts < horizon:
            self._trace_recent.popleft()
        self._set_status("trace_log", True, "")

    def _horizon_s(self) -> float:
        # Keep SIP a little longer than the window: calls that started before it still count.
        return self.cfg.window_s + max(60.0, self.cfg.window_s)

    def _collect_capture(self) -> None:
        if self._tail is not None:
            self._collect_trace()
        paths: list[Path] = [p for p in self.cfg.captures if p.exists()]
        if self._ring is not None:
            # Packets are aggregated per flow (e.g. SYN/SYN-ACK counts), so only ring files that
            # reach into the window are read: an answer from before a fix must not outlive it.
            # One file more than the window: a call ending inside the window must not lose the
            # RTP of one direction to a rotation boundary (that would look like one-way audio).
            since = self.clock() - self.cfg.window_s - self._ring.cfg.file_seconds
            paths += [p for p in self._ring.files() if p.stat().st_mtime >= since]
            if _free_bytes(self._ring.cfg.directory) < MIN_FREE_BYTES:
                if self._fault_due("capture-disk"):
                    log.warning("capture ring %s: disk full", self._ring.cfg.directory)
                self._set_status("capture", False, "disk full")
                return
            ring = self._ring.stats()
            if ring.error:
                if not ring.running:
                    # e.g. the tool gave up on a full disk: there is room again, so start it anew
                    log.warning("capture: %s; restarting it", ring.error)
                    with netns.entered(self.cfg.netns):
                        self._ring.start()
                self._set_status("capture", False, ring.error)
                return
        if not paths and not self._trace_recent:
            self._set_status("capture", False, "nothing to analyse yet (no capture data, no trace messages)")
            return
        keylog = self._usable_keylog()
        pipe = Pipeline()
        for path in paths:
            pipe.add_capture(path)
            # Decrypt only without a trace log: both carry the same SIP, and tshark costs a second per run.
            if keylog is not None and self._tail is None:
                feed_decrypted_sip(pipe, path, keylog, self._sip_tls_ports())
        self._analysed_paths = [*paths, *([self.cfg.trace_log] if self._trace_recent and self.cfg.trace_log else [])]
        pipe.add_trace_messages(list(self._trace_recent))
        result = pipe.finish()
        del pipe
        release_free_heap()
        with self._lock:
            self._ledger.merge(result.registrations)
            records = self._ledger.to_rows()
            if result.last_ts is not None:
                self._evidence_until = max(result.last_ts, self._evidence_until or result.last_ts)
        if result.registrations:
            self.history.save_registrations(self.clock(), records)
        self._analysis = result
        self._set_status("capture", True, "partial input" if result.partial else "")

    def _usable_keylog(self) -> Path | None:
        """The key log when it can decrypt anything; its problem is the "keylog" collector's reason
        (checked once a minute: a key log grows as sessions start)."""
        path = self.cfg.keylog
        if path is None:
            return None
        now = self.clock()
        if now - self._keylog_checked[0] >= FAULT_LOG_INTERVAL_S:
            from collectors.tls.keylog import check_keylog

            self._keylog_checked = (now, check_keylog(path))
            problem = self._keylog_checked[1]
            self._set_status("keylog", problem is None, f"{path}: {problem}" if problem else "")
            if problem:
                log.warning("key log %s: %s; SIP over TLS stays encrypted", path, problem)
        return path if self._keylog_checked[1] is None else None

    def _probe_target(self, module: str) -> str | None:
        if self._site is None:
            return None
        ep = self._site.endpoints
        if module.startswith("sip_options") or module == "tcp_connect":
            return f"{ep.connector.host}:{ep.connector.port}"
        if module == "stun":
            return f"{ep.stun.host}:{ep.stun.port}"
        if module == "https_rest":
            return f"{ep.rest.host}:{ep.rest.port}"
        return None

    def _collect_probe(self, module: str, target: str) -> None:
        from collectors.probes import run

        opts = dict(self.cfg.probe_options.get(module, {}))
        if module == "https_rest":
            opts.update(self._rest_credentials())
        result = run(module, target, timeout=self.cfg.probe_timeout_s, **opts)
        self._probe_results[module] = result
        recent_results = self._probe_recent.setdefault(module, deque(maxlen=64))
        recent_results.append(result)
        self.history.probe_result(result.ts, module, target, result.success, result.reason, result.duration_s,
                                  dict(result.details))
        # A failing probe is data about the trunk, not a broken collector.
        self._set_status(f"probe:{module}", True, "")

    def _sip_tls_ports(self) -> tuple[int, ...]:
        return (self._site.endpoints.connector.port,) if self._site is not None else ()

    def _rest_credentials(self) -> dict[str, str]:
        """Authenticate the REST probe as the OSBiz does: the API key, and the JWT for Unify Video."""
        site = self._site
        out: dict[str, str] = {}
        if site is None:
            return out
        key = site.connectivity.api_key.try_resolve() if site.connectivity.api_key is not None else None
        if key:
            out["api_key"] = key
        if site.tenant.flavour == "unify-video":
            ref = site.tenant.jwt
            token = self._jwt_text or (ref.try_resolve() if ref is not None else None)
            if token:
                out["bearer"] = token
        return out

    # --- reduce ---------------------------------------------------------------------------
    def _reduce(self) -> Snapshot:
        # Collectors finish on several threads; one reduction at a time keeps history and counters exact.
        with self._reduce_lock:
            return self._reduce_now()

    def _reduce_now(self) -> Snapshot:
        now = self.clock()
        analysis = self._analysis
        live = recent(analysis, now - self.cfg.window_s) if analysis is not None else None
        if analysis is not None:
            self._record_completed(analysis, now)
        self._history_status()  # after this reduction's writes: the snapshot says how they went
        with self._lock:
            registrations = self._ledger.registrations()
            evidence_until = self._evidence_until
            collectors = tuple(sorted(self._status.values(), key=lambda c: c.name))
        snap = build_snapshot(Inputs(
            site=self._site, site_error=self._site_error, analysis=live, probes=self._recent_probes(now),
            jwt_text=self._jwt_text,
            options=DiagnosisOptions(osbiz_https_ports=self.cfg.osbiz_https_ports, gcp_ranges=self._gcp,
                                     registration_grace_s=self.cfg.registration_grace_s),
            registrations=registrations, evidence_until=evidence_until, collectors=collectors,
            totals=self._totals.snapshot(), sources=tuple(str(p) for p in self._analysed_paths),
        ), now)
        # The service's own reduction over time: one history row per change, findings held open.
        snap = dataclasses.replace(snap, itsp=self._track_itsp(snap.itsp, now),
                                   findings=self._track_findings(snap.finding_list, now))
        self._snapshot = snap
        return snap

    def _recent_probes(self, now: float) -> tuple[ProbeResult, ...]:
        """Probe results of the last outage span (and one interval more), oldest first."""
        since = now - DiagnosisOptions().probe_outage_s - 2 * self.cfg.probe_interval_s
        found = [r for results in list(self._probe_recent.values()) for r in list(results) if r.ts >= since]
        return tuple(sorted(found, key=lambda r: r.ts))

    def _track_itsp(self, itsp: ItspStatus, now: float) -> ItspStatus:
        last = self._itsp_last
        if last is None or last[1] != itsp.state.value:
            self.history.itsp_changed(now, itsp.state.value, itsp.reason)
            self._itsp_last = (now, itsp.state.value)
            since = now
        else:
            since = last[0]
        return dataclasses.replace(itsp, since=itsp.since if itsp.since is not None and last is None else since)

    def _track_findings(self, findings: tuple[Finding, ...], now: float) -> tuple[OpenFinding, ...]:
        """Open new findings; close one only after it was absent for ``hold_s`` (no flapping).

        Evidence in a sliding window comes and goes between calls (one-way audio needs a call to
        be running); an operator wants one open/close pair per problem, not one per sample.
        """
        for f in findings:
            key = (f.id, f.subject or "")
            self._last_seen[key] = (now, f)
            if key not in self._open:
                self._open[key] = now
                self.history.finding_event(now, "opened", f.id, key[1], f.severity.value, f.title)
        for key in list(self._open):
            seen = self._last_seen.get(key)
            if seen is None and now - self._started < self.cfg.hold_s:
                continue  # open before a restart: give the collectors a chance to see it again
            if seen is None or now - seen[0] > self.cfg.hold_s:
                del self._open[key]
                self._last_seen.pop(key, None)
                self.history.finding_event(now, "closed", key[0], key[1], "", "")
        shown = sort_findings([self._last_seen[k][1] for k in self._open if k in self._last_seen])
        return tuple(OpenFinding(f, self._open.get((f.id, f.subject or ""))) for f in shown)

    def _record_completed(self, analysis: AnalysisResult, now: float) -> None:
        """History rows for what completed, and the running totals behind /metrics."""
        calls, streams = self._totals.observe(analysis, now)
        for call in calls:
            self.history.call_completed(call.start_ts, {
                "call_id_hash": digest(call.call_id), "caller": call.caller, "callee": call.callee,
                "final_code": call.final_code, "answered": call.answered, "setup_ms": call.setup_ms,
                "duration_s": call.duration_s, "one_way_audio": call.one_way_audio,
            })
        for s in streams:
            self.history.stream_completed(s.first_ts, {
                "src": f"{s.src}:{s.src_port}", "dst": f"{s.dst}:{s.dst_port}", "ssrc": s.ssrc,
                "packets": s.packets, "lost": s.lost, "mean_jitter_ms": s.mean_jitter_ms, "mos": s.mos,
            })


def _free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer may still use there (a large number when it cannot be told)."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return 1 << 62
    return st.f_bavail * st.f_frsize
