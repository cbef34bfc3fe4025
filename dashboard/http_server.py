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
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector

from collectors.probes import MODULES, ProbeConfigError, ProbeHistory, run_request
from core.errors import UpscopeError
from core.probes import ProbeResult
from dashboard.metrics import DEFAULT_METRICS_PORT

log = logging.getLogger(__name__)

DEFAULT_PROBE_TIMEOUT_S = 5.0
MAX_PROBE_TIMEOUT_S = 30.0
SCRAPE_TIMEOUT_OFFSET_S = 0.5  # leave Prometheus time to receive the answer (blackbox: timeout_offset)
REQUEST_SOCKET_TIMEOUT_S = 30.0  # a client that stops sending cannot hold a thread forever


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


@dataclass(frozen=True, slots=True)
class ProbeModuleConfig:
    """A named probe configuration for /probe (blackbox's "module"): a probe kind plus options."""

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


def parse_addr(text: str, default_port: int = DEFAULT_METRICS_PORT) -> tuple[str, int]:
    """``--metrics-addr`` value: ``HOST:PORT``, ``:PORT`` (127.0.0.1) or ``HOST``."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep:
        host, port_text = text.strip(), str(default_port)
    host = host.strip("[]") or "127.0.0.1"
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise UpscopeError(f"metrics address {text[:60]!r}: port must be 0-65535")
    return host, int(port_text)


class _ProbeCollector(Collector):
    def __init__(self, result: ProbeResult) -> None:
        self._r = result

    def collect(self) -> list[Metric]:
        r = self._r
        out: list[Metric] = []

        def gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> None:
            family = GaugeMetricFamily(name, doc, labels=list(labels or {}))
            family.add_metric(list((labels or {}).values()), value)
            out.append(family)

        gauge("probe_success", "1 when the probe succeeded.", 1.0 if r.success else 0.0)
        gauge("probe_duration_seconds", "How long the probe took, in seconds.", r.duration_s)
        phases = GaugeMetricFamily("probe_phase_duration_seconds", "Duration of each probe phase.",
                                   labels=["phase"])
        for phase, seconds in r.phases.items():
            phases.add_metric([phase], float(seconds))
        out.append(phases)
        d = r.details
        if isinstance(d.get("status_code"), int):
            gauge("probe_status_code", "SIP or HTTP status code of the answer.", float(d["status_code"]))
        if isinstance(d.get("tls_version"), str):
            gauge("probe_tls_version_info", "TLS version negotiated.", 1.0, {"version": d["tls_version"]})
        if isinstance(d.get("cert_not_after"), int | float):
            gauge("probe_ssl_earliest_cert_expiry", "notAfter of the peer certificate (UNIX seconds).",
                  float(d["cert_not_after"]))
        if isinstance(d.get("cert_verified"), bool):
            gauge("probe_tls_cert_verified", "1 when chain and host name were verified.",
                  1.0 if d["cert_verified"] else 0.0)
        if isinstance(d.get("retransmissions"), int):
            gauge("probe_retransmissions", "Requests re-sent over UDP before the answer.",
                  float(d["retransmissions"]))
        return out


class UpscopeHttpServer:
    """``/metrics`` from ``registry``, ``/probe``, ``/-/healthy``, plus routes added by others."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str = "127.0.0.1",
        port: int = DEFAULT_METRICS_PORT,
        probe_modules: Mapping[str, ProbeModuleConfig] | None = None,
        probe_history: ProbeHistory | None = None,
    ) -> None:
        self.registry = registry
        self.probe_modules: dict[str, ProbeModuleConfig] = dict(probe_modules) if probe_modules is not None else {
            str(name): ProbeModuleConfig(name) for name in MODULES
        }
        self.probe_history = probe_history
        self.routes: dict[str, Handler] = {
            "/": self._index,
            "/metrics": self._metrics,
            "/probe": self._probe,
            "/-/healthy": lambda _req: Response.text(200, "OK"),
        }
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
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
        if (request.param("debug") or "").lower() == "true":
            lines = [f"module {name} ({config.kind}) target {result.target}",
                     f"success {result.success}", f"reason {result.reason or '-'}",
                     f"duration {result.duration_s:.6f} s", f"phases {json.dumps(result.phases)}",
                     f"details {json.dumps(result.details, default=str)}", "transcript:",
                     *result.transcript]
            return Response.text(200, "\n".join(lines))
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_ProbeCollector(result))
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
                split = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=split.path,
                    query=parse_qs(split.query, max_num_fields=20),
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
                try:
                    self._serve(head_only=False)
                except ValueError:  # parse_qs: too many fields
                    self.send_error(400, "too many query parameters")

            def do_HEAD(self) -> None:
                self._serve(head_only=True)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: %s - %s", self.address_string(), format % args)

        return _Handler
