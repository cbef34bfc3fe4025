"""The dashboard's source for a running ``upscope serve``: its JSON API (``/api/snapshot``,
``/api/history``, per-call captures and messages, the bundle), with bounded answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from collectors.call_messages import FullMessage
from collectors.packet_detail import PacketDetail
from dashboard.sources import CallsPage, Messages, SourceError

#: The service's JSON answers are bounded: a snapshot of a busy site is a few MB.
MAX_ANSWER_BYTES = 64 * 1024 * 1024


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

    def history(self, start: float | None = None, end: float | None = None) -> list[dict[str, Any]]:
        episodes = history_from_events(self._rows("table=findings&limit=5000"))
        if start is None:
            return episodes
        # Episodes that overlap the range: opened before it and closed in it count too.
        return [h for h in episodes
                if float(h.get("opened") or 0) < (end if end is not None else float("inf"))
                and (h.get("closed") is None or float(h["closed"]) >= start)]

    def rows(self, table: str, start: float, end: float) -> list[dict[str, Any]]:
        return self._rows(f"table={table}&from={start:.3f}&to={end:.3f}&limit=5000")

    def _call_query(self, call_id: str, digest: str) -> str:
        return "call_id=" + urllib.parse.quote(call_id, safe="") if call_id else \
            "call=" + urllib.parse.quote(digest, safe="")

    def call_capture(self, call_id: str, digest: str = "") -> bytes | None:
        try:
            return self._get("/api/call.pcap?" + self._call_query(call_id, digest))
        except SourceError as exc:
            if exc.status == 404:
                return None  # the call is no longer in the service's capture files
            raise

    def calls(self, start: float, end: float, text: str = "", statuses: tuple[str, ...] = (), offset: int = 0,
              limit: int = 100) -> CallsPage:
        query = urllib.parse.urlencode({"from": f"{start:.3f}", "to": f"{end:.3f}", "q": text,
                                        "status": ",".join(statuses), "offset": offset, "limit": limit})
        raw = self._json(f"/api/calls?{query}")
        rows = raw.get("rows") if isinstance(raw, dict) else None
        if not isinstance(rows, list):
            raise SourceError(f"service {self.base_url}/api/calls sent no rows")
        return CallsPage(tuple(r for r in rows if isinstance(r, dict)), int(raw.get("total") or 0),
                         "completed calls from the service's history (kept for its retention period)")

    def call_messages(self, call_id: str, digest: str = "") -> Messages:
        try:
            raw = self._json("/api/messages?" + self._call_query(call_id, digest))
        except SourceError as exc:
            if exc.status == 404:
                return Messages(call_id, (), 0, "no message of this call is left in the service's capture "
                                                 "files or trace log")
            raise
        try:
            found = tuple(FullMessage.from_dict(m) for m in raw.get("messages") or [])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(f"service {self.base_url}/api/messages sent an unreadable message") from exc
        return Messages(str(raw.get("call_id") or call_id), found, int(raw.get("more") or 0))

    def packet_detail(self, source: str, frame: int) -> PacketDetail:
        query = urllib.parse.urlencode({"source": source, "frame": frame})
        raw = self._json(f"/api/packet?{query}")
        return PacketDetail.from_dict(raw if isinstance(raw, dict) else {})

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
