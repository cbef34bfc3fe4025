"""The service's JSON API, read by the dashboard's ``ServiceSource`` and by scripts.

Handlers are plain functions ``(service, request) -> Response`` so they mount on the metrics HTTP
server's route table and are testable without a socket. Nothing here returns a secret: the
snapshot goes through ``snapshot_to_dict`` (public views only) and the bundle through
``traces.bundle`` (redaction + scrub of the resolved secret values).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from collectors.runtime.service import Service
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


def history(service: Service, request: Request) -> Response:
    table = request.param("table") or "findings"
    try:
        since = float(request.param("since") or "0")
        limit = max(1, min(int(request.param("limit") or "500"), 5000))
        return _json({"table": table, "rows": service.history.rows(table, since, limit)})
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)


def call_pcap(service: Service, request: Request) -> Response:
    call_id = request.param("call_id") or ""
    data = service.call_capture(call_id) if call_id else None
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
        call_capture=service.call_capture,
    )
    return Response(200, data, "application/zip",
                    (("Content-Disposition", 'attachment; filename="upscope-bundle.zip"'),))


ROUTES: dict[str, Callable[[Service, Request], Response]] = {
    "/api/snapshot": snapshot,
    "/api/history": history,
    "/api/call.pcap": call_pcap,
    "/api/bundle": bundle,
}
