"""The dashboard's one data gateway: every page reads through this module.

Theory of operation: a *source* yields the JSON shape of a Snapshot (``core.snapshot.snapshot_to_dict``)
plus a finding history, a per-call capture and a support bundle. Two kinds exist behind one
interface, so pages cannot tell them apart:

- ``ServiceSource(base_url)`` reads the JSON API of a running ``upscope serve``.
- ``OfflineSource`` holds a snapshot dict built from an analysis result (+ optional site), diagnosed
  by the same engine as the service. It backs uploads and ``--capture``.

Pages never touch the raw dict layout beyond this module: the ``*_frame`` helpers turn the
snapshot into DataFrames and the ``*_tile`` helpers compute the Overview figures. Nothing here
renders a secret: the snapshot dict is already the public form (fingerprints only), and the
bundle/capture bytes come from the service or from the user's own capture file.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import streamlit as st

from collectors.export import export_call
from core.analysis import AnalysisResult
from core.diagnosis import DiagnosisInputs, diagnose
from core.errors import UpscopeError
from core.findings import CATALOGUE
from core.jwt_status import jwt_state, jwt_state_for_ref
from core.licensing import evaluate_licenses
from core.numbering import derive_all
from core.secrets import SecretKind, SecretRef
from core.site.loader import load_site
from core.site.model import Site
from core.snapshot import ITSP_LABELS, ItspState, Snapshot, snapshot_to_dict
from core.trace_profiles import TRACE_SETS
from traces.bundle import build_bundle
from traces.call_export import select_call


class SourceError(UpscopeError):
    """The data source could not deliver (service down, bad answer, unreadable artifacts)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status when the service answered with an error


class DataSource(Protocol):
    """What every page may ask for."""

    label: str

    def snapshot(self) -> dict[str, Any]: ...

    def history(self) -> list[dict[str, Any]]: ...

    def call_capture(self, call_id: str) -> bytes | None: ...

    def bundle(self) -> bytes | None: ...

    def calls_since(self, ts: float) -> list[dict[str, Any]]:
        """Completed calls since ``ts``: dicts with ``ts``, ``answered``, ``final_code``."""
        ...


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
            raise SourceError(f"service {url} answered HTTP {exc.code}", exc.code) from exc
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
        raw = self._json("/api/history?table=findings&limit=5000")
        rows = raw.get("rows") if isinstance(raw, dict) else None
        if not isinstance(rows, list):
            raise SourceError(f"service {self.base_url}/api/history sent no rows")
        return history_from_events([r for r in rows if isinstance(r, dict)])

    def call_capture(self, call_id: str) -> bytes | None:
        try:
            return self._get("/api/call.pcap?call_id=" + urllib.parse.quote(call_id, safe=""))
        except SourceError as exc:
            if exc.status == 404:
                return None  # the call is no longer in the service's capture window
            raise

    def bundle(self) -> bytes | None:
        return self._get("/api/bundle")

    def calls_since(self, ts: float) -> list[dict[str, Any]]:
        # The snapshot holds only the service's evidence window; the last hour is in its history.
        raw = self._json(f"/api/history?table=calls&since={ts:.3f}&limit=5000")
        rows = raw.get("rows") if isinstance(raw, dict) else None
        if not isinstance(rows, list):
            raise SourceError(f"service {self.base_url}/api/history sent no rows")
        return [r for r in rows if isinstance(r, dict)]


def history_from_events(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's finding events (opened/closed rows, oldest first) as one entry per episode
    with ``opened`` and ``closed`` (None while open), the shape the Diagnoses page shows."""
    open_: dict[tuple[str, str], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for r in sorted(rows, key=lambda r: float(r.get("ts") or 0.0)):
        key = (str(r.get("finding_id")), str(r.get("subject") or ""))
        if r.get("event") == "opened" and key not in open_:
            episode = {"id": key[0], "subject": key[1], "severity": r.get("severity"), "title": r.get("title"),
                       "opened": r.get("ts"), "closed": None}
            open_[key] = episode
            out.append(episode)
        elif r.get("event") == "closed" and key in open_:
            open_.pop(key)["closed"] = r.get("ts")
    return out


# --- offline: an analysis result ---------------------------------------------------------------


@dataclass
class OfflineSource:
    """A fixed snapshot dict, plus what per-call export and the bundle need: the analysis result,
    the capture files it came from, the site file text and the resolved secrets (kept in memory
    only, to scrub them from exports as a last defence)."""

    snap: dict[str, Any]
    label: str = "offline analysis"
    captures: tuple[str, ...] = ()
    result: AnalysisResult | None = None
    site_text: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_analysis(
        cls,
        result: AnalysisResult | None,
        *,
        site: Site | None = None,
        jwt_token_text: str | None = None,
        now: float | None = None,
        label: str = "offline analysis",
        captures: Sequence[str] = (),
        site_text: str | None = None,
    ) -> OfflineSource:
        """Diagnose ``result`` (+ site, + the JWT in use) exactly as the service does.

        Offline, "now" is the end of the capture: "calls in the last hour" then means the
        capture's last hour, and ITSP "since" reads against the capture's own clock.
        """
        when = now if now is not None else (result.last_ts if result and result.last_ts else time.time())
        at = to_dt(when) or datetime.now(UTC)  # a capture's clock can be anything
        when = at.timestamp()
        diag = diagnose(DiagnosisInputs(site=site, analysis=result, jwt_token_text=jwt_token_text, now=at))
        jwt = None
        if jwt_token_text is not None:
            jwt = jwt_state(jwt_token_text, at)
        elif site is not None and site.tenant.jwt is not None:
            jwt = jwt_state_for_ref(site.tenant.jwt, at, key_ref=site.tenant.jwt_verify_key,
                                    algorithms=site.tenant.jwt_algorithms)
        name = _site_name(site) or (Path(captures[0]).name if captures else "capture")
        snap = Snapshot(
            now=when, system=name, itsp=diag.itsp, findings=diag.findings, analysis=result, site=site,
            jwt=jwt, extra={"firewall": [v.to_dict() for v in diag.firewall]},
        )
        secrets = _secret_values(site) + ((jwt_token_text,) if jwt_token_text else ())
        return cls(snapshot_to_dict(snap), label=label, captures=tuple(captures), result=result,
                   site_text=site_text, secrets=secrets)

    def snapshot(self) -> dict[str, Any]:
        return self.snap

    def history(self) -> list[dict[str, Any]]:
        return []  # one analysis has no history; the service keeps it

    def call_capture(self, call_id: str) -> bytes | None:
        """The call's SIP (from captures and OSBiz trace logs) and RTP as one pcap."""
        if self.result is None or not self.captures:
            return None
        try:
            selection = select_call(self.result, call_id)
        except UpscopeError as exc:
            raise SourceError(str(exc)) from exc
        buf = io.BytesIO()
        outcome = export_call([Path(c) for c in self.captures], selection, buf)
        return buf.getvalue() if outcome.written else None

    def bundle(self) -> bytes | None:
        return build_bundle(self.snap, site_text=self.site_text, secrets=self.secrets,
                            call_capture=self.call_capture)

    def calls_since(self, ts: float) -> list[dict[str, Any]]:
        return [{"ts": c.get("start_ts"), "answered": c.get("answered"), "final_code": c.get("final_code"),
                 "caller": c.get("caller"), "callee": c.get("callee"), "setup_ms": c.get("setup_ms"),
                 "duration_s": c.get("duration_s"), "one_way_audio": c.get("one_way_audio")}
                for c in analysis(self.snap).get("calls", [])
                if isinstance(c.get("start_ts"), int | float) and c["start_ts"] >= ts
                and c.get("state") not in ("in-progress", "ringing")]


def _secret_values(site: Site | None) -> tuple[str, ...]:
    """The site's resolvable secrets (API key, SIP password, JWT reference)."""
    if site is None:
        return ()
    refs = [site.connectivity.api_key, site.tenant.jwt]
    if site.sip_credentials is not None:
        refs += [getattr(site.sip_credentials, name) for name in type(site.sip_credentials).model_fields]
    return tuple(v for r in refs if isinstance(r, SecretRef) and (v := r.try_resolve()))


def _site_name(site: Any) -> str | None:
    system = getattr(site, "system", None)
    name = getattr(system, "name", None)
    return name if isinstance(name, str) else None


# --- capture files analysed in the dashboard (uploads, --capture) --------------------------------


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    """Files an offline source is built from."""

    captures: tuple[str, ...] = ()
    keylog: str | None = None
    site: str | None = None
    jwt_file: str | None = None
    label: str = "offline analysis"
    tls_ports: tuple[int, ...] = ()  # SIP/TLS server ports besides 5061/65061 (for the key log)


# --- presentation helpers (all pages) ----------------------------------------------------------


def to_dt(ts: Any) -> datetime | None:
    """UNIX seconds → aware datetime; None for what is not a representable time (hostile captures
    carry any timestamp)."""
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def snap_time(snap: dict[str, Any]) -> datetime:
    """The snapshot's "now" (the time every figure is judged at)."""
    return to_dt(snap.get("now")) or datetime.now(UTC)


def fmt_ts(ts: Any) -> str:
    when = to_dt(ts)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"


def fmt_ago(ts: Any, now: float) -> str:
    if to_dt(ts) is None:
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


def call_history_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    cols = ["time", "caller", "callee", "final_code", "answered", "setup_ms", "duration_s", "one_way_audio"]
    return pd.DataFrame([{**{k: r.get(k) for k in cols}, "time": fmt_ts(r.get("ts"))}
                         for r in sorted(rows, key=lambda r: -float(r.get("ts") or 0))], columns=cols)


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


_STREAM_COLS = ["stream", "name", "src", "dst", "ssrc", "codec", "packets", "lost", "loss_pct", "mean_jitter_ms",
                "max_jitter_ms", "max_delta_ms", "mos", "call_id", "one_way_audio", "first", "duration_s"]


def streams_frame(snap: dict[str, Any]) -> pd.DataFrame:
    a = analysis(snap)
    one_way = {i for c in a.get("calls", []) if c.get("one_way_audio") for i in c.get("streams", [])}
    rows = []
    for i, s in enumerate(a.get("rtp_streams", [])):
        rows.append({
            "stream": i, "name": stream_name(i, s), "src": f"{s['src']}:{s['src_port']}", "dst": f"{s['dst']}:{s['dst_port']}",
            "ssrc": f"0x{int(s['ssrc']):08X}", "codec": s.get("codec", ""), "packets": s.get("packets", 0),
            "lost": s.get("lost", 0), "loss_pct": s.get("loss_pct", 0.0),
            "mean_jitter_ms": s.get("mean_jitter_ms"), "max_jitter_ms": s.get("max_jitter_ms"),
            "max_delta_ms": s.get("max_delta_ms"), "mos": s.get("mos"), "call_id": s.get("call_id"),
            "one_way_audio": i in one_way, "first": fmt_ts(s.get("first_ts")),
            "duration_s": round(float(s.get("last_ts", 0)) - float(s.get("first_ts", 0)), 3),
        })
    return pd.DataFrame(rows, columns=_STREAM_COLS)


def call_streams(snap: dict[str, Any], call_id: str) -> pd.DataFrame:
    """The call's RTP streams: those the call lists (SDP association) and those naming the call."""
    df = streams_frame(snap)
    call: dict[str, Any] = next((c for c in analysis(snap).get("calls", []) if c.get("call_id") == call_id), {})
    listed = set(call.get("streams", []))
    return df[(df["call_id"] == call_id) | df["stream"].isin(listed)]


def stream_name(index: int, s: dict[str, Any]) -> str:
    return f"#{index} {s['src']}:{s['src_port']}→{s['dst']}:{s['dst_port']}"


def intervals_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """One row per stream and 10-s interval (DOMAIN §10) for the Media charts."""
    rows = []
    for i, s in enumerate(analysis(snap).get("rtp_streams", [])):
        name = stream_name(i, s)
        for iv in s.get("intervals", []):
            expected = iv.get("expected") or 0
            rows.append({
                "stream": name, "time": to_dt(iv["start"]),
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
            "time": to_dt(m["ts"]), "frame": m.get("frame"),
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
        return int((float(value) - now) // 86400) if to_dt(value) is not None else None
    if isinstance(value, str) and value:
        try:
            d = date.fromisoformat(value[:10])
        except ValueError:
            return None
        end = datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=UTC).timestamp()
        return int((end - now) // 86400)
    return None


def itsp_label_de(snap: dict[str, Any]) -> str:
    """The German label of the OSBiz Assistant for the ITSP state (``core.snapshot.ITSP_LABELS``)."""
    state = str((snap.get("itsp_status") or {}).get("state"))
    try:
        return ITSP_LABELS[ItspState(state)][1]
    except ValueError:
        return "—"


def itsp_tile(snap: dict[str, Any]) -> Tile:
    it = snap.get("itsp_status") or {}
    state = it.get("state", "unknown")
    label = it.get("label") or "Unknown"
    help_ = f"{fmt_ago(it.get('since'), snap.get('now', time.time()))}. {it.get('reason', '')}".strip()
    return Tile("ITSP Unify Phone (Cloud)", label, help_,
                {"registered": "ok", "not-registered": "bad"}.get(state, "warn"))


def site_model(snap: dict[str, Any]) -> Site | None:
    """The site of the snapshot as the core model again (its public form round-trips: secrets are
    references like ``env:NAME``), so numbering and licensing use the core rules, not a copy."""
    raw = snap.get("site")
    if not isinstance(raw, dict):
        return None
    try:
        return Site.model_validate(raw)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return None


def jwt_info(snap: dict[str, Any]) -> dict[str, Any] | None:
    """The JWT state: the snapshot's, else judged from the site's token reference (status,
    expiry and fingerprint only — the token itself never leaves ``core.jwt_status``)."""
    jwt = snap.get("jwt")
    if isinstance(jwt, dict) and jwt:
        return jwt
    model = site_model(snap)
    if model is None or model.tenant.jwt is None:
        return None
    if model.tenant.jwt.kind is SecretKind.INLINE:
        # The public site form keeps no inline value; only the service that holds it can judge it.
        return {"status": "unknown", "reason": "inline token, not judged here"}
    at = snap_time(snap)
    return jwt_state_for_ref(model.tenant.jwt, at, key_ref=model.tenant.jwt_verify_key,
                             algorithms=model.tenant.jwt_algorithms).to_dict()


def jwt_tile(snap: dict[str, Any]) -> Tile:
    flavour = (site(snap).get("tenant") or {}).get("flavour")
    jwt = jwt_info(snap)
    if jwt is None:
        if flavour == "unify-video":
            return Tile("JWT", "Not set", "Unify Video flavour needs a JWT", "bad")
        if flavour == "openscape":
            return Tile("JWT", "Not needed", "Unify Phone for OpenScape needs no JWT")
        return Tile("JWT", "—", "no JWT data")
    status = str(jwt.get("status") or "unknown")
    days = jwt.get("days_left")
    value = status if days is None else f"{days} days left"
    tone = {"active": "ok", "expiring": "warn", "unknown": "neutral", "not set": "neutral" if flavour != "unify-video" else "bad"}
    detail = f"{status}: {jwt.get('reason', '')}" + (f"; fingerprint {jwt['fingerprint']}" if jwt.get("fingerprint")
                                                    else "")
    return Tile("JWT", value, detail, tone.get(status.lower(), "bad"))


def license_tile(snap: dict[str, Any]) -> Tile:
    pools = license_pools(snap)
    row = pools[pools["pool"] == "unify_phone"]
    if row.empty:
        return Tile("Unify Phone licenses", "—", "no site file")
    used, total = int(row["used"].iloc[0]), int(row["total"].iloc[0])
    return Tile("Unify Phone licenses", f"{used} / {total}", "used / total", "ok" if used <= total else "bad")


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
    extra = snap.get("extra") or {}
    configured = extra.get("trunk_lines_configured",
                           (site(snap).get("connectivity") or {}).get("simultaneous_calls"))
    used = extra.get("trunk_lines_used", active_calls(snap))
    if configured is None:
        return Tile("Trunk lines", f"{used} / —", "in use / configured (no site file)")
    tone = "bad" if configured == 0 or used >= configured else "ok"
    return Tile("Trunk lines", f"{used} / {configured}", "in use / configured", tone)


def calls_tile(rows: Sequence[dict[str, Any]] | None) -> Tile:
    """Completed calls of the last hour; failed = rejected with a 4xx–6xx other than 487 (the caller
    cancelled, RFC 3261 §15)."""
    if rows is None:
        return Tile("Calls last hour", "—", "call history unavailable")
    answered = sum(1 for r in rows if r.get("answered"))
    failed = sum(1 for r in rows if not r.get("answered") and isinstance(r.get("final_code"), int)
                 and r["final_code"] >= 400 and r["final_code"] != 487)
    return Tile("Calls last hour", f"{answered} / {failed}",
                f"answered / failed; {len(rows)} completed calls in all", "warn" if failed else "ok")


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


def overview_tiles(snap: dict[str, Any], last_hour_calls: Sequence[dict[str, Any]] | None) -> list[Tile]:
    return [itsp_tile(snap), jwt_tile(snap), license_tile(snap), support_tile(snap), trunk_tile(snap),
            calls_tile(last_hour_calls), media_tile(snap), findings_tile(snap)]


# --- Users & licenses, Firewall ----------------------------------------------------------------


def users_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """Users with the call number the numbering plan derives (``core.numbering``), its verdict and
    the license state (``core.licensing``)."""
    cols = ["callno", "name", "did", "station_type", "call_number", "numbering", "problems", "licenses",
            "license_state"]
    model = site_model(snap)
    if model is None:
        return pd.DataFrame([], columns=cols)
    at = snap_time(snap)
    lic = evaluate_licenses(model, at)
    rows = []
    for user, number, ul in zip(model.users, derive_all(model), lic.users, strict=True):
        rows.append({
            "callno": user.callno, "name": user.display_name, "did": user.did, "station_type": user.station_type,
            "call_number": number.derived, "numbering": number.verdict,
            "problems": ", ".join(p.value for p in number.problems), "licenses": ", ".join(user.licenses),
            "license_state": ul.state + (f" ({', '.join(ul.missing or ul.expired)})" if ul.state != "ok" else ""),
        })
    return pd.DataFrame(rows, columns=cols)


def license_pools(snap: dict[str, Any]) -> pd.DataFrame:
    cols = ["pool", "used", "free", "total", "needed", "expired"]
    model = site_model(snap)
    if model is None:
        return pd.DataFrame([], columns=cols)
    lic = evaluate_licenses(model, snap_time(snap))
    return pd.DataFrame([{"pool": name, "used": p.used, "free": max(0, p.total - p.used), "total": p.total,
                          "needed": p.needed, "expired": p.expired} for name, p in lic.pools.items()], columns=cols)


def firewall_frame(snap: dict[str, Any]) -> pd.DataFrame:
    """The firewall verdicts the diagnosis engine made (``core.firewall``, DOMAIN §7), one per flow."""
    rows = []
    for v in (snap.get("extra") or {}).get("firewall") or []:
        rows.append({
            "flow": v.get("flow"), "verdict": v.get("verdict"), "as required": bool(v.get("ok")),
            "reason": v.get("reason"), "proto": v.get("proto"), "source": v.get("source"),
            "destination": v.get("destination"), "description": v.get("description"),
        })
    # Verdict first: the table is wider than the page and the verdict is what matters.
    return pd.DataFrame(rows, columns=["flow", "verdict", "as required", "reason", "proto", "source",
                                       "destination", "description"])


# --- loading artifacts (the engines of the other packages) --------------------------------------


def load_artifacts(spec: ArtifactSpec) -> OfflineSource:
    """Analyse capture files / an OSBiz trace log (+ key log), read the site file and the JWT in
    use, diagnose. Bad input raises an ``UpscopeError`` naming the file; so does an engine failure
    on hostile input, which must not reach the page as a traceback."""
    try:
        return _load_artifacts(spec)
    except UpscopeError:
        raise
    except Exception as exc:
        name = Path(spec.captures[0]).name if spec.captures else spec.label
        raise SourceError(f"{name}: analysis failed ({type(exc).__name__}: {exc})") from exc


def _load_artifacts(spec: ArtifactSpec) -> OfflineSource:
    from collectors.analyze import analyze_files

    model = load_site(spec.site) if spec.site else None
    site_text = Path(spec.site).read_text(encoding="utf-8", errors="replace") if spec.site else None
    token = None
    if spec.jwt_file:
        try:
            token = Path(spec.jwt_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise SourceError(f"{spec.jwt_file}: cannot read the JWT file ({exc.strerror})") from exc
    result = None
    if spec.captures:
        # SIP/TLS on a non-standard port is decrypted only when tshark is told the port.
        ports = spec.tls_ports + ((model.endpoints.connector.port,) if model is not None else ())
        result = analyze_files([Path(c) for c in spec.captures],
                               keylog=Path(spec.keylog) if spec.keylog else None, tls_ports=ports)
    return OfflineSource.from_analysis(
        result, site=model, jwt_token_text=token, label=spec.label, captures=spec.captures,
        site_text=site_text,
    )


# --- the Streamlit side: which source this browser session reads ---------------------------------

#: The CLI hands the default source to the Streamlit process in this variable (JSON).
SOURCE_ENV = "UPSCOPE_DASHBOARD_SOURCE"
UPLOAD_KEY = "upscope.upload"
#: A system opened from the Fleet page: this browser session reads that system's own service.
SYSTEM_KEY = "upscope.system"


def source_from_config(config: dict[str, Any]) -> DataSource:
    """``{"kind": "service", "url": …}`` or ``{"kind": "files", "captures": […], "keylog": …}``."""
    kind = config.get("kind")
    if kind == "service":
        return ServiceSource(str(config["url"]))
    if kind == "files":
        return load_artifacts(ArtifactSpec(
            tuple(str(c) for c in config.get("captures", [])), config.get("keylog"), config.get("site"),
            config.get("jwt_file"), str(config.get("label") or "offline analysis"),
        ))
    raise SourceError(f"dashboard source {kind!r} unknown (service or files)")


@st.cache_resource(show_spinner=False)
def _default_source(config_json: str) -> DataSource:
    # One source per server process, shared by all sessions: a --capture is analysed once.
    return source_from_config(json.loads(config_json))


def current_source() -> DataSource:
    """The upload of this browser session if there is one, else the system it opened from the Fleet
    page, else the server's default source."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is not None:
        return upload  # type: ignore[no-any-return]
    chosen = st.session_state.get(SYSTEM_KEY)
    if chosen is not None:
        return chosen  # type: ignore[no-any-return]
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
