"""A small client of the Prometheus HTTP API (``/api/v1/query``, ``/api/v1/query_range``).

Theory of operation: the fleet view reads everything from a Prometheus-compatible server (Prometheus,
Thanos Query, Mimir, VictoriaMetrics) and from nothing else. An answer from that server is hostile
input like any other: the client sends one POST per query, follows no redirect, accepts no content
encoding it did not ask for, and stops reading at a byte limit and at a deadline that covers the whole
exchange (connect, headers, body), not each socket read. Decoding is sans-IO (``decode_vector``,
``decode_matrix``: status and bytes in, typed frozen values out): the body must be the API's JSON
envelope with the expected ``resultType``, every series, label and value is checked, and anything
else becomes a ``PrometheusError`` that names the server, the endpoint and the problem (never the
credentials of the URL, never more than a short, printable excerpt of what the server said).
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from core.errors import UpscopeError


class PrometheusError(UpscopeError):
    """Prometheus could not be asked or answered something unusable; the message says which."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one exchange with the server."""

    timeout_s: float = 10.0  # the whole request; also sent as the query's ``timeout``
    max_bytes: int = 64 * 2**20  # body size
    max_series: int = 200_000  # series in one answer
    max_points: int = 2_000_000  # samples in one range answer
    max_label_chars: int = 4096  # one label name or value


@dataclass(frozen=True, slots=True)
class Sample:
    """One series of an instant vector."""

    labels: tuple[tuple[str, str], ...]  # sorted by name
    value: float
    ts: float

    def label(self, name: str) -> str:
        for key, value in self.labels:
            if key == name:
                return value
        return ""


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range answer: (timestamp, value) points in time order."""

    labels: tuple[tuple[str, str], ...]
    points: tuple[tuple[float, float], ...]

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


def _excerpt(text: str, limit: int = 200) -> str:
    """A short, single-line, printable piece of what the server said."""
    clean = "".join(c if c.isprintable() else " " for c in text[: limit * 2])
    clean = " ".join(clean.split())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def decode_vector(status: int, body: bytes, where: str, limits: Limits) -> tuple[Sample, ...]:
    """The samples of an ``/api/v1/query`` answer, or a ``PrometheusError`` (sans-IO)."""
    out = []
    for item in _result(_data(status, body, where), "vector", where, limits):
        ts, value = _point(_get(item, "value"), where)
        out.append(Sample(_labels(item, where, limits), value, ts))
    return tuple(out)


def decode_matrix(status: int, body: bytes, where: str, limits: Limits) -> tuple[RangeSeries, ...]:
    """The series of an ``/api/v1/query_range`` answer, or a ``PrometheusError`` (sans-IO)."""
    out, points = [], 0
    for item in _result(_data(status, body, where), "matrix", where, limits):
        values = _get(item, "values")
        if not isinstance(values, list):
            raise PrometheusError(f"{where}: a series without values")
        points += len(values)
        if points > limits.max_points:
            raise PrometheusError(f"{where}: more than {limits.max_points} samples")
        out.append(RangeSeries(_labels(item, where, limits), tuple(_point(v, where) for v in values)))
    return tuple(out)


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else None


def _data(status: int, body: bytes, where: str) -> dict[str, Any]:
    """The ``data`` of the API's envelope; the server's own error text when it sent one."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        if status != 200:
            note = " (redirects are not followed)" if 300 <= status < 400 else ""
            raise PrometheusError(f"{where}: answered HTTP {status}{note}: "
                                  f"{_excerpt(body.decode('utf-8', 'replace'))}") from None
        raise PrometheusError(f"{where}: the answer is not JSON") from None
    if not isinstance(doc, dict):
        raise PrometheusError(f"{where}: the answer is not a JSON object")
    if doc.get("status") != "success":
        kind, error = doc.get("errorType"), doc.get("error")
        detail = f"{kind}: {error}" if isinstance(kind, str) and isinstance(error, str) else f"{error}"
        raise PrometheusError(f"{where}: HTTP {status}, {_excerpt(detail)}")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise PrometheusError(f"{where}: the answer has no data")
    return data


def _result(data: dict[str, Any], kind: str, where: str, limits: Limits) -> list[Any]:
    if data.get("resultType") != kind:
        raise PrometheusError(f"{where}: expected a {kind}, got {_excerpt(str(data.get('resultType')), 40)!r}")
    result = data.get("result")
    if not isinstance(result, list):
        raise PrometheusError(f"{where}: the result is not a list")
    if len(result) > limits.max_series:
        raise PrometheusError(f"{where}: {len(result)} series, more than the limit {limits.max_series}")
    return result


def _labels(item: Any, where: str, limits: Limits) -> tuple[tuple[str, str], ...]:
    metric = _get(item, "metric")
    if not isinstance(metric, dict):
        raise PrometheusError(f"{where}: a series without labels")
    cap = limits.max_label_chars
    for key, value in metric.items():
        if not isinstance(value, str) or len(key) > cap or len(value) > cap:
            raise PrometheusError(f"{where}: a label that is not a short string")
    return tuple(sorted(metric.items()))


def _point(pair: Any, where: str) -> tuple[float, float]:
    if (not isinstance(pair, list) or len(pair) != 2 or isinstance(pair[0], bool)
            or not isinstance(pair[0], int | float) or not isinstance(pair[1], str)):
        raise PrometheusError(f"{where}: a sample that is not [time, \"value\"]")
    try:
        value = float(pair[1])  # Prometheus writes NaN, +Inf and -Inf as strings too
        ts = float(pair[0])
    except (ValueError, OverflowError):
        raise PrometheusError(f"{where}: sample value {_excerpt(pair[1], 40)!r} is not a number") from None
    return ts, value


class PrometheusClient:
    """``query`` and ``query_range`` against one server. ``base_url`` may carry a path prefix
    (e.g. ``http://mimir:8080/prometheus``) and user:password for basic authentication; the
    credentials are sent, never shown (``url`` is the address without them)."""

    def __init__(self, base_url: str, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        parts = urllib.parse.urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PrometheusError("Prometheus URL: expected http://HOST:PORT or https://HOST:PORT[/path prefix]")
        if parts.query or parts.fragment:
            raise PrometheusError("Prometheus URL: no query string or fragment, only the address and a path prefix")
        try:
            port = parts.port
        except ValueError as exc:
            raise PrometheusError(f"Prometheus URL: bad port ({exc})") from None
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._auth: str | None = None
        if parts.username is not None:
            pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode()
        host = f"[{self._host}]" if ":" in self._host else self._host
        default = 443 if self._https else 80
        self.url = f"{parts.scheme}://{host}{'' if self._port == default else f':{self._port}'}{self._prefix}"

    def query(self, expr: str, at: float | None = None) -> tuple[Sample, ...]:
        """An instant query; ``at`` in UNIX seconds (default: the server's now)."""
        params = {"query": expr, "timeout": f"{self.limits.timeout_s:g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        path = "/api/v1/query"
        return decode_vector(*self._exchange(path, params), f"Prometheus {self.url}{path}", self.limits)

    def query_range(self, expr: str, start: float, end: float, step: float) -> tuple[RangeSeries, ...]:
        """A range query from ``start`` to ``end`` every ``step`` seconds."""
        if not (math.isfinite(start) and math.isfinite(end) and math.isfinite(step)) or step <= 0 or end < start:
            raise PrometheusError(f"range query {start:g}..{end:g} step {step:g}: not a valid range")
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}",
                  "timeout": f"{self.limits.timeout_s:g}s"}
        path = "/api/v1/query_range"
        return decode_matrix(*self._exchange(path, params), f"Prometheus {self.url}{path}", self.limits)

    def _exchange(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        """POST the form, return (status, body): bounded in size, and in time as a whole."""
        where = f"Prometheus {self.url}{path}"
        body = urllib.parse.urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                   "Accept-Encoding": "identity", "User-Agent": "upscope-fleet"}
        if self._auth is not None:
            headers["Authorization"] = self._auth
        deadline = time.monotonic() + self.limits.timeout_s
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.limits.timeout_s,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.limits.timeout_s)
        try:
            conn.request("POST", self._prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity":
                raise PrometheusError(f"{where}: answered with content encoding {_excerpt(encoding, 40)!r}, "
                                      "which was not asked for")
            return resp.status, self._read(conn, resp, deadline, where)
        except TimeoutError:
            raise PrometheusError(f"{where}: no complete answer within {self.limits.timeout_s:g} s") from None
        except ssl.SSLError as exc:
            raise PrometheusError(f"{where}: TLS failed ({_excerpt(str(exc.reason or exc))})") from None
        except (OSError, http.client.HTTPException) as exc:
            raise PrometheusError(f"{where}: unreachable ({_excerpt(str(exc) or type(exc).__name__)})") from None
        finally:
            conn.close()

    def _read(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, deadline: float,
              where: str) -> bytes:
        """The body, bounded in size and in time (the deadline covers the whole body, so a server
        that trickles bytes cannot hold the page)."""
        length = resp.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > self.limits.max_bytes:
            raise PrometheusError(f"{where}: answer of {int(length)} bytes, more than the limit "
                                  f"{self.limits.max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if conn.sock is not None:
                conn.sock.settimeout(left)
            chunk = resp.read1(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise PrometheusError(f"{where}: answer larger than the limit of {self.limits.max_bytes} bytes")
            chunks.append(chunk)
