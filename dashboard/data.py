"""The dashboard's one data gateway: every page reads through this module.

Theory of operation: a *source* yields the JSON shape of a Snapshot (``core.snapshot.snapshot_to_dict``)
plus a finding history, a per-call capture and a support bundle. Two kinds exist behind one
interface, so pages cannot tell them apart:

- ``ServiceSource(base_url)`` reads the JSON API of a running ``upscope serve``.
- ``OfflineSource`` holds a snapshot dict built from an analysis result (+ optional site). It backs
  uploads, ``--capture`` and, through ``ArtifactSource``, a directory of lab/site artifacts that is
  re-analysed when its files change (the embedded default until the service runs the lab).

Pages never touch the raw dict layout beyond this module: the ``*_frame`` helpers turn the
snapshot into DataFrames and the ``*_tile`` helpers compute the Overview figures. Nothing here
renders a secret: the snapshot dict is already the public form (fingerprints only), and the
bundle/capture bytes come from the service or from the user's own capture file.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import streamlit as st

from core.analysis import AnalysisResult
from core.errors import UpscopeError
from core.findings import Finding, sort_findings
from core.snapshot import ItspState, ItspStatus, Snapshot, snapshot_to_dict
from core.trace_profiles import TRACE_SETS


class SourceError(UpscopeError):
    """The data source could not deliver (service down, bad answer, unreadable artifacts)."""


class DataSource(Protocol):
    """What every page may ask for."""

    label: str

    def snapshot(self) -> dict[str, Any]: ...

    def history(self) -> list[dict[str, Any]]: ...

    def call_capture(self, call_id: str) -> bytes | None: ...

    def bundle(self) -> bytes | None: ...


# --- the service -------------------------------------------------------------------------------


class ServiceSource:
    """The JSON API of ``upscope serve`` (``/api/snapshot``, ``/api/history``, …)."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.label = f"service {self.base_url}"

    def _get(self, path: str) -> bytes:
        url = self.base_url + path
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
                body: bytes = resp.read()
                return body
        except urllib.error.HTTPError as exc:
            raise SourceError(f"service {url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"service {url} unreachable: {reason}") from exc

    def _json(self, path: str) -> Any:
        try:
            return json.loads(self._get(path))
        except ValueError as exc:
            raise SourceError(f"service {self.base_url}{path} sent invalid JSON") from exc

    def snapshot(self) -> dict[str, Any]:
        snap = self._json("/api/snapshot")
        if not isinstance(snap, dict) or "itsp_status" not in snap:
            raise SourceError(f"service {self.base_url}/api/snapshot is not a snapshot")
        return snap

    def history(self) -> list[dict[str, Any]]:
        raw = self._json("/api/history")
        # The service may answer a bare list or {"findings": [...], ...}.
        items = raw.get("findings", []) if isinstance(raw, dict) else raw
        return [h for h in items if isinstance(h, dict)] if isinstance(items, list) else []

    def call_capture(self, call_id: str) -> bytes | None:
        return self._get("/api/calls/" + urllib.parse.quote(call_id, safe="") + "/pcap")

    def bundle(self) -> bytes | None:
        return self._get("/api/bundle")


# --- offline: an analysis result ---------------------------------------------------------------


def itsp_from_analysis(result: AnalysisResult | None, now: float) -> ItspStatus:
    """ITSP status as the trunk's REGISTER traffic shows it (DOMAIN §9).

    Registered from a 2xx until the granted expiry passes; the TLS flows say why when nothing
    registered. Without any REGISTER or TLS flow the state is unknown, never guessed.
    """
    if result is None:
        return ItspStatus(ItspState.UNKNOWN, None, "no data analysed yet")
    regs = sorted(result.registrations, key=lambda r: r.last_success_ts or 0.0)
    ok = [r for r in regs if r.registered]
    if ok:
        r = ok[-1]
        since = next((s.ts for s in r.timeline if s.state == "registered"), r.last_success_ts)
        return ItspStatus(
            ItspState.REGISTERED, since, f"registered at {r.registrar}", r.registrar,
            r.expiry_ts, r.last_success_ts,
        )
    if regs:
        r = regs[-1]
        since = r.timeline[-1].ts if r.timeline else None
        why = f"last answer {r.last_code}" if r.last_code else f"{r.unanswered} REGISTER unanswered"
        return ItspStatus(
            ItspState.NOT_REGISTERED, since, f"{why} from {r.registrar}", r.registrar,
            r.expiry_ts, r.last_success_ts,
        )
    bad = [f for f in result.tls_flows if f.syn_answered is False or f.handshake in ("failed", "incomplete")]
    if bad:
        f = bad[0]
        what = "TCP SYN unanswered" if f.syn_answered is False else f"TLS handshake {f.handshake}"
        return ItspStatus(
            ItspState.NOT_REGISTERED, f.first_ts, f"{what} to {f.server}:{f.server_port}",
            f"{f.server}:{f.server_port}",
        )
    return ItspStatus(ItspState.UNKNOWN, None, "no REGISTER or TLS flow to the connector seen")


@dataclass
class OfflineSource:
    """A fixed snapshot dict (+ the capture files it came from, for per-call export)."""

    snap: dict[str, Any]
    label: str = "offline analysis"
    captures: tuple[str, ...] = ()
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_analysis(
        cls,
        result: AnalysisResult | None,
        *,
        site: Any = None,
        findings: Sequence[Finding] = (),
        jwt: Any = None,
        system: str | None = None,
        now: float | None = None,
        label: str = "offline analysis",
        captures: Sequence[str] = (),
    ) -> OfflineSource:
        # Offline, "now" is the end of the capture: "calls in the last hour" then means the
        # capture's last hour, and ITSP "since" reads against the capture's own clock.
        when = now if now is not None else (result.last_ts if result and result.last_ts else time.time())
        name = system or _site_name(site) or (Path(captures[0]).name if captures else "capture")
        snap = Snapshot(
            now=when, system=name, itsp=itsp_from_analysis(result, when),
            findings=tuple(sort_findings(list(findings))), analysis=result, site=site, jwt=jwt,
        )
        return cls(snapshot_to_dict(snap), label=label, captures=tuple(captures))

    def snapshot(self) -> dict[str, Any]:
        return self.snap

    def history(self) -> list[dict[str, Any]]:
        return list(self.events)

    def call_capture(self, call_id: str) -> bytes | None:
        return export_call(self.snap, call_id, self.captures)

    def bundle(self) -> bytes | None:
        return offline_bundle(self.snap, self.events)


def _site_name(site: Any) -> str | None:
    system = getattr(site, "system", None)
    name = getattr(system, "name", None)
    return name if isinstance(name, str) else None


# --- artifacts re-analysed (lab directory, --capture, --site) ------------------------------------

#: Loads artifacts into an OfflineSource; injected so tests and the CLI choose the engine.
Loader = Callable[["ArtifactSpec"], OfflineSource]


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    """Files an offline source is built from. ``lab_dir`` holds the lab's standard file names."""

    captures: tuple[str, ...] = ()
    keylog: str | None = None
    site: str | None = None
    jwt_file: str | None = None
    label: str = "offline analysis"
    live: bool = False  # re-analyse when the files change (lab running) instead of once

    @classmethod
    def from_lab_dir(cls, lab_dir: str | Path, label: str) -> ArtifactSpec:
        d = Path(lab_dir)
        caps = tuple(str(d / n) for n in ("lab.pcapng", "osbiz-trace.log") if (d / n).exists())

        def opt(name: str) -> str | None:
            return str(d / name) if (d / name).exists() else None

        return cls(caps, opt("sslkeys.log"), opt("site.yaml"), opt("jwt.txt"), label, live=True)

    def stamp(self) -> tuple[tuple[str, float, int], ...]:
        """Change detector: path, mtime, size of every file."""
        out = []
        for p in (*self.captures, self.keylog, self.site, self.jwt_file):
            if p is None:
                continue
            try:
                st = Path(p).stat()
                out.append((p, st.st_mtime, st.st_size))
            except OSError:
                out.append((p, 0.0, -1))
        return tuple(out)


class ArtifactSource:
    """Re-analyses artifacts when they change, at most every ``min_interval_s``; tracks the
    finding history (opened/closed) between analyses so the Diagnoses page has one offline."""

    def __init__(
        self,
        spec_fn: Callable[[], ArtifactSpec],
        loader: Loader,
        min_interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._spec_fn = spec_fn
        self._loader = loader
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._current: OfflineSource | None = None
        self._stamp: tuple[tuple[str, float, int], ...] | None = None
        self._checked = 0.0
        self._open: dict[tuple[str, str], dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self.label = spec_fn().label

    def _refresh(self) -> OfflineSource:
        with self._lock:
            now = self._clock()
            if self._current is not None and now - self._checked < self._min_interval_s:
                return self._current
            self._checked = now
            spec = self._spec_fn()
            stamp = spec.stamp()
            if self._current is not None and (stamp == self._stamp or not spec.live):
                return self._current
            fresh = self._loader(spec)
            self._stamp = stamp
            self._track(fresh.snap, now)
            fresh.events = self._events
            self._current = fresh
            return fresh

    def _track(self, snap: dict[str, Any], now: float) -> None:
        seen = {(f["id"], f.get("subject") or ""): f for f in snap.get("findings", [])}
        for key, f in seen.items():
            if key not in self._open:
                event = {"id": key[0], "subject": key[1], "severity": f.get("severity"),
                         "title": f.get("title"), "opened": now, "closed": None}
                self._open[key] = event
                self._events.append(event)
        for key in [k for k in self._open if k not in seen]:
            self._open.pop(key)["closed"] = now

    def snapshot(self) -> dict[str, Any]:
        return self._refresh().snapshot()

    def history(self) -> list[dict[str, Any]]:
        return self._refresh().history()

    def call_capture(self, call_id: str) -> bytes | None:
        return self._refresh().call_capture(call_id)

    def bundle(self) -> bytes | None:
        return self._refresh().bundle()


# --- per-call capture and offline bundle -------------------------------------------------------


def call_filter(snap: dict[str, Any], call_id: str) -> str | None:
    """A Wireshark display filter for one call: its SIP frames and the UDP 5-tuples of its streams."""
    analysis = snap.get("analysis") or {}
    call = next((c for c in analysis.get("calls", []) if c.get("call_id") == call_id), None)
    if call is None:
        return None
    parts = []
    frames = [int(f) for f in call.get("frames", [])] or [int(call.get("first_frame", 0))]
    parts.append("frame.number in {" + " ".join(str(f) for f in frames if f > 0) + "}")
    streams = analysis.get("rtp_streams", [])
    for idx in call.get("streams", []):
        if 0 <= idx < len(streams):
            s = streams[idx]
            ip = "ipv6" if ":" in str(s["src"]) else "ip"
            parts.append(
                f"({ip}.src=={s['src']} && udp.srcport=={int(s['src_port'])} && "
                f"{ip}.dst=={s['dst']} && udp.dstport=={int(s['dst_port'])})"
            )
    return " || ".join(parts)


def export_call(snap: dict[str, Any], call_id: str, captures: Sequence[str]) -> bytes | None:
    """The call's SIP + RTP packets as pcapng, cut from the capture file with tshark.

    Only a single packet capture can be cut (frame numbers refer to it); an OSBiz trace log has no
    packets to export. Returns None when that is impossible (no capture, no tshark, unknown call).
    """
    pcaps = [c for c in captures if not c.endswith((".log", ".txt"))]
    tshark = shutil.which("tshark")
    flt = call_filter(snap, call_id)
    if len(pcaps) != 1 or tshark is None or flt is None:
        return None
    with tempfile.TemporaryDirectory(prefix="upscope-call-") as tmp:
        out = Path(tmp) / "call.pcapng"
        proc = subprocess.run(
            [tshark, "-n", "-r", pcaps[0], "-Y", flt, "-w", str(out)],
            capture_output=True, timeout=120, check=False,
        )
        if proc.returncode != 0 or not out.exists():
            return None
        return out.read_bytes()


def offline_bundle(snap: dict[str, Any], events: Sequence[dict[str, Any]]) -> bytes:
    """A support bundle from what an offline source holds: the public snapshot, the findings as
    text, the trace checklist and the finding history. The snapshot dict is the public form, so
    no secret can enter the zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("snapshot.json", json.dumps(snap, indent=2, sort_keys=True, default=str))
        z.writestr("history.json", json.dumps(list(events), indent=2, default=str))
        lines = [f"upscope support bundle for {snap.get('system')} at {fmt_ts(snap.get('now'))}", ""]
        for f in snap.get("findings", []):
            lines += [f"[{f['severity']}] {f['id']}: {f['title']}", f"  remedy: {f['remedy']}"]
            lines += [f"  evidence: {e['text']}" for e in f.get("evidence", [])]
        lines += ["", "Trace checklist:"]
        lines += [f"- {r['item']} ({r['kind']})" for r in trace_checklist(snap)]
        z.writestr("README.txt", "\n".join(lines) + "\n")
    return buf.getvalue()


# --- presentation helpers (all pages) ----------------------------------------------------------


def fmt_ts(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "—"
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_ago(ts: Any, now: float) -> str:
    if not isinstance(ts, int | float):
        return "since unknown"
    secs = max(0, int(now - float(ts)))
    if secs < 120:
        span = f"{secs} s"
    elif secs < 7200:
        span = f"{secs // 60} min"
    elif secs < 172800:
        span = f"{secs // 3600} h"
    else:
        span = f"{secs // 86400} d"
    return f"since {fmt_ts(ts)} ({span} ago)"


def analysis(snap: dict[str, Any]) -> dict[str, Any]:
    a = snap.get("analysis")
    return a if isinstance(a, dict) else {}


def site(snap: dict[str, Any]) -> dict[str, Any]:
    s = snap.get("site")
    return s if isinstance(s, dict) else {}


_CALL_COLS = ["call_id", "start", "caller", "callee", "state", "final_code", "final_reason", "setup_ms",
              "duration_s", "messages", "streams", "one_way_audio", "src", "dst", "start_ts"]


def calls_frame(snap: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for c in analysis(snap).get("calls", []):
        rows.append({
            "call_id": c["call_id"], "start": fmt_ts(c.get("start_ts")), "caller": c.get("caller", ""),
            "callee": c.get("callee", ""), "state": c.get("state", ""), "final_code": c.get("final_code"),
            "final_reason": c.get("final_reason", ""), "setup_ms": c.get("setup_ms"),
            "duration_s": c.get("duration_s"), "messages": c.get("messages", 0),
            "streams": len(c.get("streams", [])), "one_way_audio": bool(c.get("one_way_audio")),
            "src": c.get("src", ""), "dst": c.get("dst", ""), "start_ts": c.get("start_ts"),
        })
    return pd.DataFrame(rows, columns=_CALL_COLS)


def filter_calls(df: pd.DataFrame, text: str = "", states: Sequence[str] = ()) -> pd.DataFrame:
    """sngrep-style filter: free text over id/caller/callee/addresses/code, plus call states."""
    out = df
    if states:
        out = out[out["state"].isin(list(states))]
    needle = text.strip().lower()
    if needle:
        hay = out[["call_id", "caller", "callee", "src", "dst", "final_code", "final_reason"]].astype(str)
        mask = hay.apply(lambda col: col.str.lower().str.contains(needle, regex=False)).any(axis=1)
        out = out[mask]
    return out


_STREAM_COLS = ["stream", "src", "dst", "ssrc", "codec", "packets", "lost", "loss_pct", "mean_jitter_ms",
                "max_jitter_ms", "max_delta_ms", "mos", "call_id", "one_way_audio", "first", "duration_s"]


def streams_frame(snap: dict[str, Any]) -> pd.DataFrame:
    a = analysis(snap)
    one_way = {i for c in a.get("calls", []) if c.get("one_way_audio") for i in c.get("streams", [])}
    rows = []
    for i, s in enumerate(a.get("rtp_streams", [])):
        rows.append({
            "stream": i, "src": f"{s['src']}:{s['src_port']}", "dst": f"{s['dst']}:{s['dst_port']}",
            "ssrc": f"0x{int(s['ssrc']):08X}", "codec": s.get("codec", ""), "packets": s.get("packets", 0),
            "lost": s.get("lost", 0), "loss_pct": s.get("loss_pct", 0.0),
            "mean_jitter_ms": s.get("mean_jitter_ms"), "max_jitter_ms": s.get("max_jitter_ms"),
            "max_delta_ms": s.get("max_delta_ms"), "mos": s.get("mos"), "call_id": s.get("call_id"),
            "one_way_audio": i in one_way, "first": fmt_ts(s.get("first_ts")),
            "duration_s": round(float(s.get("last_ts", 0)) - float(s.get("first_ts", 0)), 3),
        })
    return pd.DataFrame(rows, columns=_STREAM_COLS)


def intervals_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """One row per stream and 10-s interval (DOMAIN §10) for the Media charts."""
    rows = []
    for i, s in enumerate(analysis(snap).get("rtp_streams", [])):
        name = f"#{i} {s['src']}:{s['src_port']}→{s['dst']}:{s['dst_port']}"
        for iv in s.get("intervals", []):
            expected = iv.get("expected") or 0
            rows.append({
                "stream": name, "time": datetime.fromtimestamp(float(iv["start"]), UTC),
                "loss_pct": 100.0 * iv.get("lost", 0) / expected if expected else 0.0,
                "mean_jitter_ms": iv.get("mean_jitter_ms"), "max_jitter_ms": iv.get("max_jitter_ms"),
                "mos": iv.get("mos"), "packets": iv.get("packets"),
            })
    return pd.DataFrame(rows, columns=["stream", "time", "loss_pct", "mean_jitter_ms", "max_jitter_ms",
                                       "mos", "packets"])


def sip_messages(snap: dict[str, Any], call_id: str | None = None) -> list[dict[str, Any]]:
    msgs = analysis(snap).get("sip_messages", [])
    return [m for m in msgs if call_id is None or m.get("call_id") == call_id]


def registration_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """REGISTER and OPTIONS messages in time order: the Registration timeline."""
    rows = []
    for m in analysis(snap).get("sip_messages", []):
        if m.get("cseq_method") not in ("REGISTER", "OPTIONS"):
            continue
        rows.append({
            "time": datetime.fromtimestamp(float(m["ts"]), UTC), "frame": m.get("frame"),
            "kind": m["cseq_method"], "message": m.get("method") or str(m.get("status")),
            "summary": m.get("summary", ""), "from": f"{m['src']}:{m['src_port']}",
            "to": f"{m['dst']}:{m['dst_port']}",
        })
    return pd.DataFrame(rows, columns=["time", "frame", "kind", "message", "summary", "from", "to"])


def keepalive_frame(snap: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for k in analysis(snap).get("keepalives", []):
        for n, rtt in enumerate(k.get("rtts_ms", [])):
            rows.append({"keepalive": f"{k['kind']} {k['client']}→{k['peer']}", "n": n + 1, "rtt_ms": rtt})
    return pd.DataFrame(rows, columns=["keepalive", "n", "rtt_ms"])


def findings_by_severity(snap: dict[str, Any]) -> dict[str, int]:
    out = {"critical": 0, "warning": 0, "info": 0}
    for f in snap.get("findings", []):
        out[f.get("severity", "info")] = out.get(f.get("severity", "info"), 0) + 1
    return out


def trace_checklist(snap: dict[str, Any]) -> list[dict[str, Any]]:
    """What to switch on and collect for the current findings (``core.trace_profiles``), each item
    once, with the finding ids that need it."""
    from core.findings import CATALOGUE

    order: dict[tuple[str, str], list[str]] = {}
    for f in snap.get("findings", []):
        spec = CATALOGUE.get(f["id"])
        traces = TRACE_SETS[spec.trace_family] if spec else None
        items: list[tuple[str, str]] = [("trace profile", p) for p in f.get("trace_profiles", [])]
        items += [("trace component", c) for c in f.get("trace_components", [])]
        if traces is not None:
            items += [("collect", c) for c in traces.collect]
        for kind, item in items:
            ids = order.setdefault((kind, item), [])
            if f["id"] not in ids:
                ids.append(f["id"])
    return [{"kind": k, "item": i, "for": ", ".join(ids)} for (k, i), ids in order.items()]


# --- Overview tiles -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tile:
    label: str
    value: str
    help: str = ""
    state: str = "neutral"  # "ok" | "warn" | "bad" | "neutral"


def _days_until(value: Any, now: float) -> int | None:
    if isinstance(value, int | float):
        return int((float(value) - now) // 86400)
    if isinstance(value, str) and value:
        try:
            d = date.fromisoformat(value[:10])
        except ValueError:
            return None
        end = datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=UTC).timestamp()
        return int((end - now) // 86400)
    return None


def itsp_tile(snap: dict[str, Any]) -> Tile:
    it = snap.get("itsp_status") or {}
    state = it.get("state", "unknown")
    label = it.get("label") or "Unknown"
    help_ = f"{fmt_ago(it.get('since'), snap.get('now', time.time()))}. {it.get('reason', '')}".strip()
    return Tile("ITSP Unify Phone (Cloud)", label, help_,
                {"registered": "ok", "not-registered": "bad"}.get(state, "warn"))


def jwt_tile(snap: dict[str, Any]) -> Tile:
    jwt = snap.get("jwt")
    flavour = (site(snap).get("tenant") or {}).get("flavour")
    if not isinstance(jwt, dict) or not jwt:
        if flavour == "unify-video":
            return Tile("JWT", "Not set", "Unify Video flavour needs a JWT", "bad")
        return Tile("JWT", "Not needed" if flavour == "openscape" else "—",
                    "Unify Phone for OpenScape needs no JWT" if flavour == "openscape" else "no JWT data")
    status = str(jwt.get("status") or jwt.get("state") or "unknown")
    exp = jwt.get("expires_at", jwt.get("exp"))
    days = jwt.get("days_left")
    if days is None:
        days = _days_until(exp, float(snap.get("now", time.time())))
    fp = jwt.get("fingerprint")
    value = status if days is None else f"{status}, {days} days left"
    tone = {"active": "ok", "expiring": "warn"}.get(status.lower(), "bad")
    return Tile("JWT", value, f"expires {fmt_ts(exp)}" + (f", fingerprint {fp}" if fp else ""), tone)


def license_tile(snap: dict[str, Any]) -> Tile:
    s = site(snap)
    lic = s.get("licenses") or {}
    pool = lic.get("unify_phone") or {}
    total = pool.get("total")
    used = pool.get("used")
    if used is None:
        used = sum(1 for u in s.get("users", []) if "unify-phone" in (u.get("licenses") or []))
    if total is None:
        return Tile("Unify Phone licenses", "—", "no site file")
    tone = "ok" if used <= total else "bad"
    return Tile("Unify Phone licenses", f"{used} / {total}", "used / total", tone)


def support_tile(snap: dict[str, Any]) -> Tile:
    until = (site(snap).get("licenses") or {}).get("software_support_until")
    days = _days_until(until, float(snap.get("now", time.time())))
    if days is None:
        return Tile("Software Support", "—", "not in the site file")
    tone = "ok" if days > 30 else ("warn" if days >= 0 else "bad")
    value = f"{days} days left" if days >= 0 else f"expired {-days} days ago"
    return Tile("Software Support", value, f"until {until}", tone)


def active_calls(snap: dict[str, Any]) -> int:
    return sum(1 for c in analysis(snap).get("calls", [])
               if c.get("state") in ("in-progress", "ringing") or (c.get("answered") and c.get("end_ts") is None))


def trunk_tile(snap: dict[str, Any]) -> Tile:
    configured = (site(snap).get("connectivity") or {}).get("simultaneous_calls")
    used = active_calls(snap)
    if configured is None:
        return Tile("Trunk lines", f"{used} / —", "in use / configured (no site file)")
    tone = "bad" if configured == 0 or used >= configured else "ok"
    return Tile("Trunk lines", f"{used} / {configured}", "in use / configured", tone)


def calls_tile(snap: dict[str, Any]) -> Tile:
    now = float(snap.get("now", time.time()))
    recent = [c for c in analysis(snap).get("calls", []) if float(c.get("start_ts", 0)) >= now - 3600]
    answered = sum(1 for c in recent if c.get("answered"))
    failed = sum(1 for c in recent if c.get("state") == "failed")
    return Tile("Calls last hour", f"{answered} / {failed}",
                f"answered / failed; {len(recent)} calls in all", "warn" if failed else "ok")


def media_tile(snap: dict[str, Any]) -> Tile:
    streams = analysis(snap).get("rtp_streams", [])
    if not streams:
        return Tile("Media quality", "—", "no RTP streams seen")
    moses = [s["mos"] for s in streams if s.get("mos") is not None]
    worst = min(moses) if moses else None
    expected = sum(max(0, int(s.get("expected", 0))) for s in streams)
    lost = sum(max(0, int(s.get("lost", 0))) for s in streams)
    loss = 100.0 * lost / expected if expected else 0.0
    tone = "ok" if (worst is None or worst >= 3.6) and loss < 1.0 else "warn"
    return Tile("Media quality", f"MOS {worst:.2f}" if worst is not None else "MOS —",
                f"loss {loss:.1f} %; worst MOS of {len(streams)} streams", tone)


def findings_tile(snap: dict[str, Any]) -> Tile:
    n = findings_by_severity(snap)
    tone = "bad" if n["critical"] else ("warn" if n["warning"] else "ok")
    return Tile("Active findings", f"{n['critical']} critical", f"{n['warning']} warning · {n['info']} info", tone)


def overview_tiles(snap: dict[str, Any]) -> list[Tile]:
    return [itsp_tile(snap), jwt_tile(snap), license_tile(snap), support_tile(snap), trunk_tile(snap),
            calls_tile(snap), media_tile(snap), findings_tile(snap)]


# --- Users & licenses, Firewall ----------------------------------------------------------------


def users_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """Users with their derived call number and numbering verdict, as the site model exposes them
    (``derived_call_number`` / ``numbering_verdict`` when the site model computes them)."""
    rows = []
    for u in site(snap).get("users", []):
        rows.append({
            "callno": u.get("callno"), "name": f"{u.get('first_name', '')} {u.get('last_name', '')}".strip(),
            "did": u.get("did"), "station_type": u.get("station_type"),
            "licenses": ", ".join(u.get("licenses") or []),
            "call_number": u.get("derived_call_number") or u.get("call_number"),
            "verdict": u.get("numbering_verdict") or u.get("verdict") or "",
        })
    return pd.DataFrame(rows, columns=["callno", "name", "did", "station_type", "licenses", "call_number",
                                       "verdict"])


def license_pools(snap: dict[str, Any]) -> pd.DataFrame:
    s = site(snap)
    lic = s.get("licenses") or {}
    users = s.get("users", [])
    derived = {
        "ip_user_mobility": sum(1 for u in users if "ip-user" in (u.get("licenses") or [])),
        "unify_phone": sum(1 for u in users if "unify-phone" in (u.get("licenses") or [])),
        "voicemail": sum(1 for u in users if "voicemail" in (u.get("licenses") or [])),
    }
    rows = []
    for name, pool in lic.items():
        if not isinstance(pool, dict) or "total" not in pool:
            continue
        used = pool.get("used", derived.get(name, 0))
        rows.append({"pool": name, "used": used, "free": max(0, int(pool["total"]) - int(used)),
                     "total": pool["total"]})
    return pd.DataFrame(rows, columns=["pool", "used", "free", "total"])


#: DOMAIN §7 flows; endpoints come from the site file (seed addresses as defaults).
SEED_ENDPOINTS = {"connector": ("35.246.178.13", 65061), "stun": ("34.159.228.55", 3478),
                  "rest": ("34.117.105.255", 443)}


def _endpoint(snap: dict[str, Any], name: str) -> tuple[str, int]:
    ep = (site(snap).get("endpoints") or {}).get(name) or {}
    host, port = SEED_ENDPOINTS[name]
    return str(ep.get("host", host)), int(ep.get("port", port))


def firewall_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """The expected flows of DOMAIN §7 against what the analysis observed: one verdict per flow.

    Verdicts: ``ok`` (answered), ``blocked`` (SYN unanswered, RST or ICMP unreachable, request
    unanswered), ``not observed`` (no traffic of that kind in the data), ``violated`` (the never-
    open inbound 443 answered).
    """
    a = analysis(snap)
    flows = a.get("flows", [])
    system = site(snap).get("system") or {}
    osbiz = {system.get("public_ip"), system.get("private_ip")} - {None}
    rows = []

    def tcp_verdict(host: str, port: int) -> tuple[str, str]:
        fl = [f for f in flows if f["proto"] == "tcp" and f["dst"] == host and f["dst_port"] == port]
        tls = [t for t in a.get("tls_flows", []) if t["server"] == host and t["server_port"] == port]
        if any(f.get("syn_ack") for f in fl) or any(t.get("syn_answered") or t.get("handshake") == "ok"
                                                     for t in tls):
            return "ok", f"{sum(f['packets'] for f in fl)} packets, handshake answered"
        if fl or tls:
            syn = sum(f.get("syn", 0) for f in fl)
            return "blocked", f"{syn} SYN unanswered, {sum(f.get('rst', 0) for f in fl)} RST, " \
                              f"{sum(f.get('icmp_unreachable', 0) for f in fl)} ICMP unreachable"
        return "not observed", "no packets to this destination"

    host, port = _endpoint(snap, "connector")
    rows.append(("SIP over TLS to connector", f"OSBiz → {host}", f"TCP {port}", *tcp_verdict(host, port)))
    host, port = _endpoint(snap, "rest")
    rows.append(("REST API (provisioning)", f"OSBiz → {host}", f"TCP {port}", *tcp_verdict(host, port)))
    host, port = _endpoint(snap, "stun")
    stun = [t for t in a.get("stun", []) if t["server"] == host and t["server_port"] == port]
    if any(t.get("response_frame") for t in stun):
        v = ("ok", f"{sum(1 for t in stun if t.get('response_frame'))} of {len(stun)} STUN requests answered")
    elif stun:
        v = ("blocked", f"{len(stun)} STUN requests unanswered")
    else:
        v = ("not observed", "no STUN to this server")
    rows.append(("STUN/TURN", f"OSBiz → {host}", f"{port} TCP/UDP", *v))
    media = (site(snap).get("endpoints") or {}).get("media_ports") or {}
    lo, hi = int(media.get("first", 10000)), int(media.get("last", 49999))
    streams = a.get("rtp_streams", [])
    out_ = [s for s in streams if s["src"] in osbiz and lo <= s["src_port"] <= hi] if osbiz else []
    in_ = [s for s in streams if s["dst"] in osbiz and lo <= s["dst_port"] <= hi] if osbiz else []
    for name, sel in (("RTP egress", out_), ("RTP ingress", in_)):
        if not osbiz:
            v = ("not observed", "no OSBiz address in the site file")
        elif sel:
            v = ("ok", f"{len(sel)} streams, {sum(s['packets'] for s in sel)} packets")
        elif streams:
            v = ("blocked", "RTP seen, but none in this direction")
        else:
            v = ("not observed", "no RTP in the data")
        rows.append((name, "OSBiz ⇄ cloud", f"UDP {lo}–{hi}", *v))
    inbound = [f for f in flows if f["proto"] == "tcp" and f["dst_port"] == 443 and f["dst"] in osbiz]
    if any(f.get("syn_ack") for f in inbound):
        v = ("violated", "inbound TCP 443 to the OSBiz was answered")
    elif inbound:
        v = ("ok", "inbound TCP 443 attempts not answered")
    else:
        v = ("not observed", "no inbound TCP 443 seen")
    rows.append(("never: inbound 443", "anything → OSBiz", "TCP 443", *v))
    return pd.DataFrame(rows, columns=["flow", "path", "port", "verdict", "evidence"])


# --- loading artifacts (the engines of the other packages) --------------------------------------


def load_artifacts(spec: ArtifactSpec) -> OfflineSource:
    """Analyse capture files / an OSBiz trace log (+ key log), read the site file, diagnose."""
    from collectors.analyze import analyze_files

    result = analyze_files([Path(c) for c in spec.captures], keylog=Path(spec.keylog) if spec.keylog else None)
    return OfflineSource.from_analysis(
        result, label=spec.label, captures=spec.captures, now=time.time() if spec.live else None,
    )


# --- the Streamlit side: which source this browser session reads ---------------------------------

#: The CLI hands the default source to the Streamlit process in this variable (JSON).
SOURCE_ENV = "UPSCOPE_DASHBOARD_SOURCE"
UPLOAD_KEY = "upscope.upload"


def source_from_config(config: dict[str, Any]) -> DataSource:
    """``{"kind": "service", "url": …}`` or ``{"kind": "lab", "dir": …}`` or
    ``{"kind": "files", "captures": […], "keylog": …, "site": …}``."""
    kind = config.get("kind")
    if kind == "service":
        return ServiceSource(str(config["url"]))
    if kind == "lab":
        lab_dir = str(config["dir"])
        label = str(config.get("label") or f"lab {Path(lab_dir).name}")
        return ArtifactSource(lambda: ArtifactSpec.from_lab_dir(lab_dir, label), load_artifacts)
    if kind == "files":
        spec = ArtifactSpec(
            tuple(str(c) for c in config.get("captures", [])), config.get("keylog"), config.get("site"),
            config.get("jwt_file"), str(config.get("label") or "offline analysis"), live=False,
        )
        return ArtifactSource(lambda: spec, load_artifacts)
    raise SourceError(f"dashboard source {kind!r} unknown (service, lab or files)")


@st.cache_resource(show_spinner=False)
def _default_source(config_json: str) -> DataSource:
    # One source per server process, shared by all sessions: the lab is analysed once per change.
    return source_from_config(json.loads(config_json))


def current_source() -> DataSource:
    """The upload of this browser session if there is one, else the server's default source."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is not None:
        return upload  # type: ignore[no-any-return]
    import os

    config = os.environ.get(SOURCE_ENV)
    if not config:
        raise SourceError(f"no data source: start the dashboard with `upscope dashboard` ({SOURCE_ENV} unset)")
    return _default_source(config)


def set_upload(source: OfflineSource | None) -> None:
    if source is None:
        st.session_state.pop(UPLOAD_KEY, None)
    else:
        st.session_state[UPLOAD_KEY] = source


def page_snapshot() -> tuple[DataSource, dict[str, Any]]:
    """Every page starts here: the source, its snapshot, and a one-line banner saying what is shown.
    A source failure is shown plainly and stops the page (no traceback)."""
    try:
        src = current_source()
        snap = src.snapshot()
    except UpscopeError as exc:
        st.error(str(exc))
        st.stop()
    banner = f"{snap.get('system', '?')} · {src.label} · data of {fmt_ts(snap.get('now'))}"
    if st.session_state.get(UPLOAD_KEY) is not None:
        cols = st.columns([4, 1])
        cols[0].info(f"Showing the uploaded capture: {banner}")
        if cols[1].button("Back to live data", key="upscope.back-live"):
            set_upload(None)
            st.rerun()
    else:
        st.caption(banner)
    return src, snap
