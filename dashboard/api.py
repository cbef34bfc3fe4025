"""The service's JSON API, read by the dashboard's ``ServiceSource`` and by scripts.

Handlers are plain functions ``(service, request) -> Response`` so they mount on the metrics HTTP
server's route table and are testable without a socket. Nothing here returns a secret: the
snapshot goes through ``snapshot_to_dict`` (public views only) and the bundle through
``traces.bundle`` (redaction + scrub of the resolved secret values).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collectors.runtime.on_demand import ServiceBusy
from collectors.runtime.service import Service
from core.errors import UpscopeError
from core.snapshot import snapshot_to_dict
from dashboard.http_server import Request, Response
from traces.bundle import build_bundle


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value, default=str).encode(), "application/json")


def snapshot(service: Service, request: Request) -> Response:
    snap = service.snapshot()
    if snap is None:
        return _json({"error": "no snapshot yet"}, 503)
    return _json(snapshot_to_dict(snap))


#: A range asked for without ``from`` reaches back this far from ``to`` (or now).
DEFAULT_RANGE_S = 3600.0


def _time_range(service: Service, request: Request) -> tuple[float, float]:
    """``from``/``to`` as UNIX seconds or ISO 8601 (no zone = UTC); ``since`` is the older name of
    ``from``. ``to`` defaults to now, ``from`` to an hour before ``to``."""
    end = _instant(request.param("to"), "to") if request.param("to") else service.clock()
    start_text = request.param("from") or request.param("since")
    start = _instant(start_text, "from") if start_text else end - DEFAULT_RANGE_S
    if start > end:
        raise ValueError("from is after to")
    return start, end


def _instant(text: str | None, name: str) -> float:
    value = (text or "").strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: not a time (UNIX seconds or ISO 8601): {value[:40]!r}") from None
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


def _limit(request: Request, default: int, most: int) -> int:
    return max(1, min(int(request.param("limit") or str(default)), most))


def history(service: Service, request: Request) -> Response:
    """Rows of one history table, newest first: ``table``, ``from``/``to`` (or ``since``), ``limit``."""
    table = request.param("table") or "findings"
    try:
        limit = _limit(request, 500, 5000)
        if request.param("from") is None and request.param("to") is None:
            since = float(request.param("since") or "0")  # the original form: everything since
            return _json({"table": table, "rows": service.history.rows(table, since, limit)})
        start, end = _time_range(service, request)
        return _json({"table": table, "from": start, "to": end,
                      "rows": service.history.rows_between(table, start, end, limit)})
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)


def calls(service: Service, request: Request) -> Response:
    """Completed calls of a time range from the history, newest first, one page: ``from``, ``to``,
    ``q`` (part of a number, or a whole Call-ID), ``status`` (comma-separated: answered, failed,
    cancelled, one-way), ``offset``, ``limit`` (≤ 500). ``call_id`` is filled in for calls the
    service still has in its capture files (their ladder and capture can be asked for)."""
    try:
        start, end = _time_range(service, request)
        statuses = tuple(s for s in (request.param("status") or "").split(",") if s)
        offset = int(request.param("offset") or "0")
        total, rows = service.history.calls_page(start, end, text=(request.param("q") or "").strip(),
                                                 statuses=statuses, offset=offset, limit=_limit(request, 100, 500))
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    known = service.call_ids_by_digest()
    for row in rows:
        row["call_id"] = known.get(str(row.get("call_id_hash")))
    return _json({"from": start, "to": end, "total": total, "offset": offset, "rows": rows})


def _call(request: Request) -> tuple[str, str]:
    """(Call-ID, digest) of the call a request names with ``call_id=`` or ``call=<digest>``."""
    return (request.param("call_id") or "")[:1024], (request.param("call") or "")[:64]


def messages(service: Service, request: Request) -> Response:
    """The full SIP messages of one call, redacted, read again from the capture files and the
    trace log: ``call_id=`` or ``call=<digest>``."""
    call_id, call_digest = _call(request)
    if not call_id and not call_digest:
        return _json({"error": "call_id or call parameter is missing"}, 400)
    try:
        found_id, found, more = service.call_messages(call_id, call_digest=call_digest)
    except ServiceBusy as exc:
        return _json({"error": str(exc)}, 503)
    except UpscopeError as exc:
        return _json({"error": str(exc)}, 500)
    if not found:
        return _json({"error": "no message of this call in the service's capture files and trace log"}, 404)
    return _json({"call_id": found_id, "messages": [m.to_dict() for m in found], "more": more})


def packet(service: Service, request: Request) -> Response:
    """One frame of one of the service's capture files as tshark dissects it: ``source``, ``frame``."""
    source = (request.param("source") or "")[:255]
    try:
        frame = int(request.param("frame") or "0")
    except ValueError:
        return _json({"error": "frame must be a number"}, 400)
    if not source or frame < 1:
        return _json({"error": "source and frame parameters are needed"}, 400)
    try:
        return _json(service.packet_detail(source, frame).to_dict())
    except ServiceBusy as exc:
        return _json({"error": str(exc)}, 503)


def call_pcap(service: Service, request: Request) -> Response:
    call_id, call_digest = _call(request)
    try:
        data = service.call_capture(call_id, call_digest=call_digest) if call_id or call_digest else None
    except ServiceBusy as exc:
        return _json({"error": str(exc)}, 503)
    if not data:
        return _json({"error": "call not found in the current capture"}, 404)
    return Response(200, data, "application/vnd.tcpdump.pcap",
                    (("Content-Disposition", 'attachment; filename="call.pcap"'),))


def bundle(service: Service, request: Request) -> Response:
    snap = service.snapshot()
    if snap is None:
        return _json({"error": "no snapshot yet"}, 503)
    # the site as the service loaded it (the last good one), never the file as it is now
    data = build_bundle(
        snapshot_to_dict(snap), site=snap.site, secrets=service.secret_values(),
        call_capture=service.call_capture, call_messages=service.messages_text,
        stream_capture=service.stream_capture,
    )
    return Response(200, data, "application/zip",
                    (("Content-Disposition", 'attachment; filename="upscope-bundle.zip"'),))


ROUTES: dict[str, Callable[[Service, Request], Response]] = {
    "/api/snapshot": snapshot,
    "/api/history": history,
    "/api/calls": calls,
    "/api/messages": messages,
    "/api/packet": packet,
    "/api/call.pcap": call_pcap,
    "/api/bundle": bundle,
}
