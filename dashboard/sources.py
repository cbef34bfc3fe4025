"""Where the dashboard's Snapshot comes from: a running service, or evidence files analysed here.

Theory of operation: a *source* yields the JSON form of a Snapshot (``core.snapshot.snapshot_to_dict``)
plus a finding history, completed calls, a per-call capture and a support bundle. Two kinds exist
behind one interface, so pages cannot tell them apart:

- ``ServiceSource(base_url)`` reads the JSON API of a running ``upscope serve``.
- ``OfflineSource`` holds the Snapshot the one producer (``collectors.producer``) built from
  evidence files: uploads and ``--capture``.

Nothing here judges anything: the Snapshot carries every verdict. Nothing renders a secret: the
snapshot is already the public form, the bundle is scrubbed of the resolved secret values.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from collectors.export import export_call
from collectors.producer import Inputs, OfflineFiles, build_snapshot, judgement_times, load_inputs
from core.analysis import CALL_OPEN_STATES, AnalysisResult
from core.errors import UpscopeError
from core.snapshot import snapshot_to_dict
from traces.bundle import build_bundle
from traces.call_export import select_call

#: The service's JSON answers are bounded: a snapshot of a busy site is a few MB.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


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
                body: bytes = resp.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise SourceError(f"service {url} answered HTTP {exc.code}", exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"service {url} unreachable: {reason}") from exc
        if len(body) > MAX_ANSWER_BYTES:
            raise SourceError(f"service {url} answered more than {MAX_ANSWER_BYTES // 2**20} MB")
        return body

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

    def _rows(self, query: str) -> list[dict[str, Any]]:
        raw = self._json(f"/api/history?{query}")
        rows = raw.get("rows") if isinstance(raw, dict) else None
        if not isinstance(rows, list):
            raise SourceError(f"service {self.base_url}/api/history sent no rows")
        return [r for r in rows if isinstance(r, dict)]

    def history(self) -> list[dict[str, Any]]:
        return history_from_events(self._rows("table=findings&limit=5000"))

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
        return self._rows(f"table=calls&since={ts:.3f}&limit=5000")


def history_from_events(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The service's finding events (opened/closed rows) as one entry per episode with ``opened``
    and ``closed`` (None while open), the shape the Diagnoses page shows."""
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


@dataclass
class OfflineSource:
    """A fixed snapshot, plus what per-call export and the bundle need: the analysis, the capture
    files it came from, the site file text and the resolved secrets (in memory only, scrubbed from
    exports as a last defence)."""

    snap: dict[str, Any]
    label: str = "offline analysis"
    captures: tuple[str, ...] = ()
    result: AnalysisResult | None = None
    site_text: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_inputs(cls, inputs: Inputs, *, label: str = "offline analysis", captures: Sequence[str] = (),
                    site_text: str | None = None, now: float | None = None) -> OfflineSource:
        """The Snapshot of ``inputs`` as every offline command builds it (``collectors.producer``),
        judged at ``now`` when given, else by the offline rule (``judgement_times``)."""
        site_at, evidence_at = (now, now) if now is not None else judgement_times(None, inputs.analysis)
        snap = build_snapshot(inputs, site_at, evidence_at)
        secrets = (inputs.site.secret_values() if inputs.site is not None else ()) \
            + ((inputs.jwt_text,) if inputs.jwt_text else ())
        return cls(snapshot_to_dict(snap), label=label, captures=tuple(captures), result=inputs.analysis,
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
        calls = (self.snap.get("analysis") or {}).get("calls", [])
        return [{"ts": c.get("start_ts"), "answered": c.get("answered"), "final_code": c.get("final_code"),
                 "caller": c.get("caller"), "callee": c.get("callee"), "setup_ms": c.get("setup_ms"),
                 "duration_s": c.get("duration_s"), "one_way_audio": c.get("one_way_audio")}
                for c in calls
                if isinstance(c.get("start_ts"), int | float) and c["start_ts"] >= ts
                and c.get("state") not in CALL_OPEN_STATES]


@dataclass(frozen=True, slots=True)
class ArtifactSpec:
    """Files an offline source is built from."""

    captures: tuple[str, ...] = ()
    keylog: str | None = None
    site: str | None = None
    jwt_file: str | None = None
    label: str = "offline analysis"
    tls_ports: tuple[int, ...] = ()  # SIP/TLS server ports besides 5061/65061 (for the key log)


def load_artifacts(spec: ArtifactSpec) -> OfflineSource:
    """Analyse capture files / an OSBiz trace log (+ key log) with the site file and the JWT in
    use, through the one loader and producer. Bad input raises an ``UpscopeError`` naming the file;
    so does an engine failure on hostile input, which must not reach the page as a traceback."""
    try:
        files = OfflineFiles(site=Path(spec.site) if spec.site else None,
                             captures=tuple(Path(c) for c in spec.captures),
                             keylog=Path(spec.keylog) if spec.keylog else None,
                             jwt_file=Path(spec.jwt_file) if spec.jwt_file else None, tls_ports=spec.tls_ports)
        inputs = load_inputs(files)
        site_text = Path(spec.site).read_text(encoding="utf-8", errors="replace") if spec.site else None
        return OfflineSource.from_inputs(inputs, label=spec.label, captures=spec.captures, site_text=site_text)
    except UpscopeError:
        raise
    except Exception as exc:
        name = Path(spec.captures[0]).name if spec.captures else spec.label
        raise SourceError(f"{name}: analysis failed ({type(exc).__name__})") from exc


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
