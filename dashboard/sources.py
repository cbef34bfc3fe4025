"""Where the dashboard's Snapshot comes from: a running service, or evidence files analysed here.

Theory of operation: a *source* yields the JSON form of a Snapshot (``core.snapshot.snapshot_to_dict``)
plus a finding history, completed calls, a per-call capture and a support bundle. Two kinds exist
behind one interface, so pages cannot tell them apart:

- ``ServiceSource(base_url)`` (``dashboard.service_source``) reads the JSON API of a running
  ``upscope serve``.
- ``OfflineSource`` holds the Snapshot the one producer (``collectors.producer``) built from
  evidence files: uploads and ``--capture``.

Nothing here judges anything: the Snapshot carries every verdict. Nothing renders a secret: the
snapshot is already the public form, the bundle is scrubbed of the resolved secret values.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from collectors.call_messages import FullMessage, read_call_messages, texts_by_call
from collectors.export import export_call
from collectors.packet_detail import PacketDetail, packet_detail
from collectors.producer import Inputs, OfflineFiles, build_snapshot, judgement_times, load_inputs
from collectors.runtime.totals import digest
from core.analysis import CALL_OPEN_STATES, AnalysisResult
from core.errors import UpscopeError
from core.site.model import Site
from core.snapshot import snapshot_to_dict
from traces.bundle import build_bundle
from traces.call_export import select_call, select_streams
from traces.tracelog import looks_like_trace_log


class SourceError(UpscopeError):
    """The data source could not deliver (service down, bad answer, unreadable artifacts)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status when the service answered with an error


@dataclass(frozen=True, slots=True)
class CallsPage:
    """One page of the calls of a time range: ``rows`` (dicts with ``ts``, ``caller``, ``callee``,
    ``final_code``, ``answered``, ``setup_ms``, ``duration_s``, ``one_way_audio``, ``call_id`` when
    its messages can still be had, ``call_id_hash``), ``total`` matching, and what the list covers."""

    rows: tuple[dict[str, Any], ...]
    total: int
    covers: str


@dataclass(frozen=True, slots=True)
class Messages:
    """The full SIP messages of one call, or why there are none (``note``)."""

    call_id: str
    messages: tuple[FullMessage, ...]
    more: int = 0
    note: str = ""


class DataSource(Protocol):
    """What every page may ask for."""

    label: str

    def snapshot(self) -> dict[str, Any]: ...

    def history(self, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]: ...

    def call_capture(self, call_id: str, digest: str = "") -> bytes | None: ...

    def bundle(self) -> bytes | None: ...

    def calls_since(self, ts: float) -> list[dict[str, Any]]:
        """Completed calls since ``ts``: dicts with ``ts``, ``answered``, ``final_code``."""
        ...

    def calls(self, start: float, end: float, text: str = "", statuses: tuple[str, ...] = (), offset: int = 0,
              limit: int = 100) -> CallsPage:
        """Completed calls that started in ``[start, end)`` (see ``CallsPage``)."""
        ...

    def call_messages(self, call_id: str, digest: str = "") -> Messages: ...

    def packet_detail(self, source: str, frame: int) -> PacketDetail: ...

    def rows(self, table: str, start: float, end: float) -> list[dict[str, Any]]:
        """History rows of ``table`` in the range (the service's; offline: none)."""
        ...


@dataclass
class OfflineSource:
    """A fixed snapshot, plus what per-call export and the bundle need: the analysis, the capture
    files it came from, the loaded site and the resolved secrets (in memory only, scrubbed from
    exports as a last defence)."""

    snap: dict[str, Any]
    label: str = "offline analysis"
    captures: tuple[str, ...] = ()
    result: AnalysisResult | None = None
    site: Site | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    keylog: str | None = None
    tls_ports: tuple[int, ...] = ()
    _messages: dict[str, Messages] = field(default_factory=dict, repr=False)

    @classmethod
    def from_inputs(cls, inputs: Inputs, *, label: str = "offline analysis", captures: Sequence[str] = (),
                    now: float | None = None, keylog: str | None = None,
                    tls_ports: tuple[int, ...] = ()) -> OfflineSource:
        """The Snapshot of ``inputs`` as every offline command builds it (``collectors.producer``),
        judged at ``now`` when given, else by the offline rule (``judgement_times``)."""
        site_at, evidence_at = (now, now) if now is not None else judgement_times(None, inputs.analysis)
        snap = build_snapshot(inputs, site_at, evidence_at)
        secrets = (inputs.site.secret_values() if inputs.site is not None else ()) \
            + ((inputs.jwt_text,) if inputs.jwt_text else ())
        ports = tls_ports + ((inputs.site.endpoints.connector.port,) if inputs.site is not None else ())
        return cls(snapshot_to_dict(snap), label=label, captures=tuple(captures), result=inputs.analysis,
                   site=inputs.site, secrets=secrets, keylog=keylog, tls_ports=ports)

    def snapshot(self) -> dict[str, Any]:
        return self.snap

    def history(self, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        return []  # one analysis has no history; the service keeps it

    def rows(self, table: str, start: float, end: float) -> list[dict[str, Any]]:
        return []

    def call_capture(self, call_id: str, digest: str = "") -> bytes | None:
        """The call's SIP (from captures and OSBiz trace logs) and RTP as one pcap."""
        if self.result is None or not self.captures:
            return None
        if not call_id:
            call_id = self._by_digest(digest)
        try:
            selection = select_call(self.result, call_id)
        except UpscopeError as exc:
            raise SourceError(str(exc)) from exc
        buf = io.BytesIO()
        outcome = export_call([Path(c) for c in self.captures], selection, buf)
        return buf.getvalue() if outcome.written else None

    def bundle(self) -> bytes | None:
        return build_bundle(self.snap, site=self.site, secrets=self.secrets,
                            call_capture=self.call_capture, call_messages=self._texts,
                            stream_capture=self._stream_capture)

    def _texts(self, call_ids: Sequence[str]) -> dict[str, str]:
        wanted = set(call_ids)
        found, _ = read_call_messages([Path(c) for c in self.captures], wanted.__contains__,
                                      keylog=Path(self.keylog) if self.keylog else None, tls_ports=self.tls_ports,
                                      known_secrets=self.secrets)
        return texts_by_call(found)

    def _stream_capture(self, indexes: Sequence[int]) -> bytes | None:
        if self.result is None or not self.captures:
            return None
        buf = io.BytesIO()
        written = export_call([Path(c) for c in self.captures], select_streams(self.result, indexes), buf).written
        return buf.getvalue() if written else None

    def calls_since(self, ts: float) -> list[dict[str, Any]]:
        return [r for r in self._call_rows() if r["ts"] >= ts]

    def _call_rows(self) -> list[dict[str, Any]]:
        """The analysis's completed calls in the history's shape (calls still up are on the page's
        live list, not in a history)."""
        calls = (self.snap.get("analysis") or {}).get("calls", [])
        return [{"ts": c.get("start_ts"), "answered": c.get("answered"), "final_code": c.get("final_code"),
                 "caller": c.get("caller"), "callee": c.get("callee"), "setup_ms": c.get("setup_ms"),
                 "duration_s": c.get("duration_s"), "one_way_audio": c.get("one_way_audio"),
                 "call_id": c.get("call_id"), "call_id_hash": digest(str(c.get("call_id")))}
                for c in calls
                if isinstance(c.get("start_ts"), int | float) and c.get("state") not in CALL_OPEN_STATES]

    def calls(self, start: float, end: float, text: str = "", statuses: tuple[str, ...] = (), offset: int = 0,
              limit: int = 100) -> CallsPage:
        needle = text.strip().lower()
        rows = [r for r in self._call_rows() if start <= r["ts"] < end
                and (not needle or needle in str(r.get("caller") or "").lower()
                     or needle in str(r.get("callee") or "").lower() or needle == str(r.get("call_id")).lower())
                and (not statuses or any(_has_status(r, s) for s in statuses))]
        rows.sort(key=lambda r: -float(r["ts"]))
        return CallsPage(tuple(rows[offset:offset + limit]), len(rows), "completed calls of the analysed files")

    def _by_digest(self, key: str) -> str:
        calls = (self.snap.get("analysis") or {}).get("calls", [])
        return next((str(c["call_id"]) for c in calls if digest(str(c.get("call_id"))) == key), "")

    def call_messages(self, call_id: str, digest: str = "") -> Messages:
        """Read again from the files of the analysis, once per call (kept for the session)."""
        call_id = call_id or self._by_digest(digest)
        cached = self._messages.get(call_id)
        if cached is not None:
            return cached
        if not self.captures:
            return Messages(call_id, (), 0, "the files of this analysis are not at hand any more")
        try:
            found, more = read_call_messages(
                [Path(c) for c in self.captures], lambda cid: cid == call_id,
                keylog=Path(self.keylog) if self.keylog else None, tls_ports=self.tls_ports,
                known_secrets=self.secrets)
        except UpscopeError as exc:
            raise SourceError(str(exc)) from exc
        answer = Messages(call_id, found, more, "" if found else "no message of this call in the files")
        if len(self._messages) >= 32:
            self._messages.pop(next(iter(self._messages)))
        self._messages[call_id] = answer
        return answer

    def packet_detail(self, source: str, frame: int) -> PacketDetail:
        by_name = {Path(c).name: Path(c) for c in self.captures}
        path = by_name.get(source)
        if path is None:
            return PacketDetail(frame, (), f"{source[:60]} is not a file of this analysis")
        if looks_like_trace_log(path):
            return PacketDetail(frame, (), "this message comes from the OSBiz trace log: there is no packet to "
                                           "dissect (`upscope convert` makes a pcap of the log)")
        return packet_detail(path, frame, keylog=Path(self.keylog) if self.keylog else None,
                             tls_ports=self.tls_ports, known_secrets=self.secrets)


def _has_status(row: dict[str, Any], status: str) -> bool:
    """The history's call statuses (``collectors.runtime.history.CALL_STATUSES``) of one row."""
    code = row.get("final_code")
    failed = not row.get("answered") and isinstance(code, int) and code >= 400 and code != 487
    return {"answered": bool(row.get("answered")), "failed": failed,
            "cancelled": not row.get("answered") and code == 487,
            "one-way": bool(row.get("one_way_audio"))}.get(status, False)


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
        return OfflineSource.from_inputs(inputs, label=spec.label, captures=spec.captures,
                                         keylog=spec.keylog, tls_ports=spec.tls_ports)
    except UpscopeError:
        raise
    except Exception as exc:
        name = Path(spec.captures[0]).name if spec.captures else spec.label
        # the exception's text may quote the input (a site value, a header): its type only
        raise SourceError(f"{name}: analysis failed ({type(exc).__name__})") from exc


def source_from_config(config: dict[str, Any]) -> DataSource:
    """``{"kind": "service", "url": …}`` or ``{"kind": "files", "captures": […], "keylog": …}``."""
    kind = config.get("kind")
    if kind == "service":
        from dashboard.service_source import ServiceSource  # imports this module's types

        return ServiceSource(str(config["url"]))
    if kind == "files":
        return load_artifacts(ArtifactSpec(
            tuple(str(c) for c in config.get("captures", [])), config.get("keylog"), config.get("site"),
            config.get("jwt_file"), str(config.get("label") or "offline analysis"),
        ))
    raise SourceError(f"dashboard source {kind!r} unknown (service or files)")
