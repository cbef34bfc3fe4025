"""The small HTTP face of ``upscope serve``: ``/metrics``, blackbox-style ``/probe``, and a route table.

A ``ThreadingHTTPServer`` bound to 127.0.0.1 by default (exposing it is the operator's choice).
Routes are plain functions ``Request -> Response`` registered with ``add_route``; the runtime adds
its own (``/api/snapshot`` …) next to the two built in here. A handler that raises gets a one-line
500 and a log entry, never a traceback on the wire.

``/probe?target=HOST:PORT&module=NAME`` runs one probe now and answers in the exposition format,
like blackbox_exporter: ``probe_success``, ``probe_duration_seconds``, per-phase durations, status
code, TLS version, certificate expiry. Further parameters set options of the module
(``&transport=tcp``, ``&valid_status=200-299,403`` …; not file paths or credentials). ``&debug=true`` returns the reason and the transcript
(credentials already fingerprinted by the probe) as text instead. The probe timeout follows
Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds`` minus a safety offset, as blackbox does.
A ``ProbeAccess`` (``dashboard.probe_endpoint``, what ``upscope serve`` installs) keeps /probe from being a way into the
network: only the site's own endpoints (and what the operator allows) may be probed, by IP or
name as written, without resolving anything first; ``debug`` only when switched on.

Every request is hostile input: at most ``MAX_CONNECTIONS`` are served at once (one more gets a
503 and is closed, instead of one thread per connection without end), URLs longer than
``MAX_URL_BYTES`` get 414, more than ``MAX_QUERY_FIELDS`` query fields a 400 (GET and HEAD alike),
and a client that stops sending is dropped after ``REQUEST_SOCKET_TIMEOUT_S``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.core import CollectorRegistry
from prometheus_client.exposition import choose_encoder, generate_latest

from collectors.probes import MODULES, ProbeConfigError, ProbeHistory, run_request
from core.errors import UpscopeError
from dashboard.bounded_server import BoundedServer
from dashboard.metrics import DEFAULT_METRICS_PORT
from dashboard.probe_endpoint import ProbeAccess, ProbeModuleConfig, ProbeResultCollector

log = logging.getLogger(__name__)

DEFAULT_PROBE_TIMEOUT_S = 5.0
MAX_PROBE_TIMEOUT_S = 30.0
SCRAPE_TIMEOUT_OFFSET_S = 0.5  # leave Prometheus time to receive the answer (blackbox: timeout_offset)
REQUEST_SOCKET_TIMEOUT_S = 30.0  # a client that stops sending cannot hold a thread forever
MAX_CONNECTIONS = 64  # served at once: Prometheus, a dashboard and a few scripts need far fewer
MAX_URL_BYTES = 8192
MAX_QUERY_FIELDS = 20


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, (text.rstrip("\n") + "\n").encode("utf-8"))


Handler = Callable[[Request], Response]


def parse_addr(text: str, default_port: int = DEFAULT_METRICS_PORT) -> tuple[str, int]:
    """``--metrics-addr`` value: ``HOST:PORT``, ``:PORT`` (127.0.0.1) or ``HOST``."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = text.strip(), str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise UpscopeError(f"metrics address {text[:60]!r}: port must be 0-65535")
    return host, int(port_text)


class UpscopeHttpServer:
    """``/metrics`` from ``registry``, ``/probe``, ``/-/healthy``, plus routes added by others."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = "127.0.0.1",
        port: int = DEFAULT_METRICS_PORT,
        probe_modules: Mapping[str, ProbeModuleConfig] | None = None,
        probe_history: ProbeHistory | None = None,
        probe_access: ProbeAccess | None = None,
        probe_endpoint: bool = True,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        """``probe_access`` None: any target, debug allowed (a building block, as blackbox_exporter);
        ``upscope serve`` always restricts it. ``probe_endpoint`` False: no /probe route at all."""
        self.registry = registry
        self.probe_access = probe_access
        self.probe_modules: dict[str, ProbeModuleConfig] = dict(probe_modules) if probe_modules is not None else {
            str(name): ProbeModuleConfig(name) for name in MODULES
        }
        self.probe_history = probe_history
        self.routes: dict[str, Handler] = {
            "/": self._index,
            "/metrics": self._metrics,
            "/-/healthy": lambda _req: Response.text(200, "OK"),
        }
        if probe_endpoint:
            self.routes["/probe"] = self._probe
        self._httpd = BoundedServer((host, port), self._handler_class(), max_connections)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def add_route(self, path: str, handler: Handler) -> None:
        """Register ``handler`` for an exact path (no patterns: routes stay a readable table)."""
        if not path.startswith("/"):
            raise ValueError("route paths start with '/'")
        self.routes[path] = handler

    def start(self) -> None:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="upscope-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever: only when it runs
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> UpscopeHttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- built-in routes ---------------------------------------------------------------------------

    def _index(self, request: Request) -> Response:
        links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in sorted(self.routes) if p != "/")
        body = f"<html><head><title>upscope</title></head><body><h1>upscope</h1><ul>{links}</ul></body></html>"
        return Response(200, body.encode(), "text/html; charset=utf-8")

    def _metrics(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(200, encoder(self.registry), content_type)

    def _probe(self, request: Request) -> Response:
        target, name = request.param("target"), request.param("module")
        if not target:
            return Response.text(400, "target parameter is missing")
        if not name:
            return Response.text(400, "module parameter is missing")
        config = self.probe_modules.get(name)
        if config is None:
            return Response.text(400, f"unknown module {name[:40]!r} (known: {', '.join(sorted(self.probe_modules))})")
        debug = (request.param("debug") or "").lower() == "true"
        access = self.probe_access
        if access is not None:
            refused = access.refusal(target)
            if refused is not None:
                return Response.text(403, refused)
            if debug and not access.debug:
                return Response.text(403, "debug=true is switched off (upscope serve --probe-debug)")
        timeout = DEFAULT_PROBE_TIMEOUT_S
        header = request.headers.get("x-prometheus-scrape-timeout-seconds")
        if header:
            try:
                timeout = float(header) - SCRAPE_TIMEOUT_OFFSET_S
            except ValueError:
                return Response.text(400, "X-Prometheus-Scrape-Timeout-Seconds is not a number")
        timeout = min(max(timeout, 0.1), MAX_PROBE_TIMEOUT_S)
        # Other query parameters are options of the module (not file paths or credentials).
        query = {k: v[0] for k, v in request.query.items() if k not in ("target", "module", "debug") and v}
        try:
            result = run_request(config.kind, target, timeout, config.options, query)
        except ProbeConfigError as exc:
            return Response.text(400, str(exc))
        if self.probe_history is not None:
            self.probe_history.add(result)
        if debug:
            lines = [f"module {name} ({config.kind}) target {result.target}",
                     f"success {result.success}", f"reason {result.reason or '-'}",
                     f"duration {result.duration_s:.6f} s", f"phases {json.dumps(result.phases)}",
                     f"details {json.dumps(result.details, default=str)}", "transcript:",
                     *result.transcript]
            return Response.text(200, "\n".join(lines))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ProbeResultCollector(result))
        return Response(200, generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8")

    # --- plumbing ----------------------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        handler = self.routes.get(request.path)
        if handler is None:
            return Response.text(404, f"no route {request.path[:80]!r}")
        try:
            return handler(request)
        except Exception:
            log.exception("http: handler for %s failed", request.path)
            return Response.text(500, "internal error (see the upscope log)")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_SOCKET_TIMEOUT_S
            server_version = "upscope"
            sys_version = ""

            def _serve(self, head_only: bool) -> None:
                if len(self.path) > MAX_URL_BYTES:
                    self.send_error(414, f"URL longer than {MAX_URL_BYTES} bytes")
                    return
                split = urlsplit(self.path)
                try:
                    query = parse_qs(split.query, max_num_fields=MAX_QUERY_FIELDS)
                except ValueError:  # parse_qs: too many fields
                    self.send_error(400, f"more than {MAX_QUERY_FIELDS} query parameters")
                    return
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                response = server._dispatch(request)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for key, value in response.headers:
                    self.send_header(key, value)
                self.end_headers()
                if not head_only:
                    self.wfile.write(response.body)

            def do_GET(self) -> None:
                self._serve(head_only=False)

            def do_HEAD(self) -> None:
                self._serve(head_only=True)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: %s - %s", self.address_string(), format % args)

        return _Handler
