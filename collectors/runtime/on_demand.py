"""What the pages ask the running service for on demand: one call's pcap, its full SIP messages,
a stream's packets, one packet's dissection. Each reads capture files again (and may run tshark),
so one runs at a time and others are told the service is busy; files are only the service's own
(its ring, the captures it follows), never a path from the request.

``Service`` inherits these reads; the attributes and methods named below are the service's (its
last analysis, its files, its site), declared here for the type checker.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from collectors.analyze import analyze_files
from collectors.call_messages import FullMessage, read_call_messages, texts_by_call
from collectors.export import export_call
from collectors.packet_detail import PacketDetail, packet_detail
from collectors.runtime.history import History
from collectors.runtime.ring import CaptureRing
from collectors.runtime.tail import LogTail
from collectors.runtime.totals import digest
from core.analysis import AnalysisResult, CallInfo
from core.errors import UpscopeError
from core.snapshot import Snapshot
from traces.call_export import select_call, select_streams
from traces.tracelog import TraceMessage

if TYPE_CHECKING:
    from collectors.runtime.service import ServeConfig


class ServiceBusy(UpscopeError):
    """An on-demand read is already running."""


class _Release:
    """Gives the on-demand slot back when the read is done."""

    def __init__(self, lock: threading.BoundedSemaphore) -> None:
        self._lock = lock

    def __enter__(self) -> object:
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _matcher(call_id: str, call_digest: str) -> Callable[[str], bool]:
    """Is a Call-ID the one asked for (by value, or by the digest the history keeps)?"""
    if call_id:
        return lambda cid: cid == call_id
    return lambda cid: digest(cid) == call_digest


class OnDemandReads:
    """The service's on-demand reads, mixed into ``Service``."""

    cfg: ServeConfig
    history: History
    _analysis: AnalysisResult | None
    _analysed_paths: list[Path]
    _snapshot: Snapshot | None
    _ring: CaptureRing | None
    _tail: LogTail | None
    _trace_recent: deque[TraceMessage]
    _on_demand: threading.BoundedSemaphore

    if TYPE_CHECKING:
        def _sip_tls_ports(self) -> tuple[int, ...]: ...
        def secret_values(self) -> tuple[str, ...]: ...

    def call_capture(self, call_id: str = "", *, call_digest: str = "") -> bytes | None:
        """One call's SIP and RTP as a pcap, by Call-ID or by the digest the history keeps: from the
        files of the last analysis, else (a call of the history) from the capture files still on
        disk around its time. None when no file holds it any more."""
        analysis, call = self._find_call(call_id, call_digest)
        if analysis is not None and call is not None:
            buf = io.BytesIO()
            export_call([p for p in self._analysed_paths if p.exists()], select_call(analysis, call.call_id), buf)
            return buf.getvalue() or None
        files, _ = self._files_of_history_call(call_id, call_digest)
        if not files:
            return None
        with self._on_demand_slot():
            wanted = _matcher(call_id, call_digest)
            older = analyze_files(files, keylog=self.cfg.keylog if self._tail is None else None,
                                  tls_ports=self._sip_tls_ports())
            found = next((c for c in older.calls if wanted(c.call_id)), None)
            if found is None:
                return None
            buf = io.BytesIO()
            export_call(files, select_call(older, found.call_id), buf)
            return buf.getvalue() or None

    def call_messages(self, call_id: str = "", *, call_digest: str = "") -> tuple[str, tuple[FullMessage, ...], int]:
        """(the Call-ID, the call's full SIP messages redacted, how many more there were): read again
        from the files the ladder came from (``collectors.call_messages``). Empty when none holds them."""
        wanted = _matcher(call_id, call_digest)
        _, call = self._find_call(call_id, call_digest)
        if call is not None:
            files = [p for p in self._analysed_paths if p.exists() and p != self.cfg.trace_log]
            trace: list[TraceMessage] = list(self._trace_recent)
        else:
            files, trace = self._files_of_history_call(call_id, call_digest)
        if not files and not trace:
            return call_id, (), 0
        with self._on_demand_slot():
            found, more = read_call_messages(
                files, wanted, trace_messages=trace, keylog=self.cfg.keylog if self._tail is None else None,
                tls_ports=self._sip_tls_ports(), known_secrets=self.secret_values())
        return found[0].call_id if found else call_id, found, more

    def messages_text(self, call_ids: Sequence[str]) -> dict[str, str]:
        """The full messages of these calls (of the last analysis) as text per Call-ID: one pass."""
        wanted = set(call_ids)
        files = [p for p in self._analysed_paths if p.exists() and p != self.cfg.trace_log]
        found, _ = read_call_messages(files, wanted.__contains__, trace_messages=list(self._trace_recent),
                                      keylog=self.cfg.keylog if self._tail is None else None,
                                      tls_ports=self._sip_tls_ports(), known_secrets=self.secret_values())
        return texts_by_call(found)

    def stream_capture(self, indexes: Sequence[int]) -> bytes | None:
        """RTP streams of the current Snapshot's analysis (by index) as a pcap."""
        snap = self._snapshot
        if snap is None or snap.analysis is None:
            return None
        buf = io.BytesIO()
        written = export_call([p for p in self._analysed_paths if p.exists()],
                              select_streams(snap.analysis, indexes), buf).written
        return buf.getvalue() if written else None

    def packet_detail(self, source: str, frame: int) -> PacketDetail:
        """The dissection of ``frame`` in the capture file named ``source`` — only files of this
        service (its ring, the captures it follows), never a path from the request."""
        known = {p.name: p for p in self._capture_files()}
        path = known.get(source)
        if path is None:
            return PacketDetail(frame, (), f"{source[:60]} is not one of this service's capture files (any more)")
        with self._on_demand_slot():
            return packet_detail(path, frame, keylog=self.cfg.keylog, tls_ports=self._sip_tls_ports(),
                                 known_secrets=self.secret_values())

    def call_ids_by_digest(self) -> dict[str, str]:
        """Call-IDs of the calls in the last analysis by their history digest."""
        analysis = self._analysis
        return {digest(c.call_id): c.call_id for c in analysis.calls} if analysis is not None else {}

    def _on_demand_slot(self) -> contextlib.AbstractContextManager[object]:
        """One on-demand read at a time (they read capture files and run tshark): others are told
        the service is busy rather than queued behind it."""
        if not self._on_demand.acquire(timeout=1.0):
            raise ServiceBusy("the service is reading capture files for another request; try again")
        return _Release(self._on_demand)

    def _find_call(self, call_id: str, call_digest: str) -> tuple[AnalysisResult | None, CallInfo | None]:
        analysis = self._analysis
        if analysis is None or not (call_id or call_digest):
            return analysis, None
        wanted = _matcher(call_id, call_digest)
        return analysis, next((c for c in analysis.calls if wanted(c.call_id)), None)

    def _capture_files(self) -> list[Path]:
        files = [p for p in self.cfg.captures if p.exists()]
        if self._ring is not None:
            files += self._ring.files()
        return files

    def _files_of_history_call(self, call_id: str, call_digest: str) -> tuple[list[Path], list[TraceMessage]]:
        """Capture files that may hold a call the history remembers (by its start and duration),
        and the trace-log messages of that time."""
        key = call_digest or (digest(call_id) if call_id else "")
        rows = self.history.calls_page(0.0, float("inf"), call_id_hash=key, limit=1)[1] if key else []
        if not rows:
            return [], []
        start = float(rows[0]["ts"])
        end = start + float(rows[0].get("duration_s") or 0.0) + 60.0
        files = [p for p in self.cfg.captures if p.exists()]
        if self._ring is not None:
            before = float("-inf")  # a ring file holds the packets after the previous file's last write
            for p in self._ring.files():
                written = p.stat().st_mtime
                if written >= start - 5.0 and before <= end:
                    files.append(p)
                before = written
        trace = [m for m in self._trace_recent if start - 5.0 <= m.ts <= end]
        return files, trace
