"""The shapes of an analysis report: the JSON document (a contract, see docs/analysis-json.md)
and a self-contained HTML page. Both are derived from one ``AnalysisResult``.

JSON keys are never renamed; new keys may be added. Floats are rounded to microsecond/3-decimal
precision where that is all the measurement carries, so golden files stay stable.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from core.analysis import AnalysisResult

SCHEMA_VERSION = 2


_FIELDS: dict[type, tuple[str, ...]] = {}


def _clean(value: Any) -> Any:
    """Plain JSON values in one pass: dataclasses → dicts (field names cached per class),
    tuples → lists, NaN/inf → null, floats rounded to 6 decimals (µs for timestamps, enough for
    ms values). Equal to ``core.analysis.to_jsonable`` plus the rounding, several times faster."""
    t = type(value)
    if t is float:
        return round(value, 6) if math.isfinite(value) else None
    if t is int or t is str or t is bool or value is None:
        return value
    names = _FIELDS.get(t)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[t] = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        return {n: _clean(getattr(value, n)) for n in names}
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):  # float subclasses (numpy.float64)
        return round(float(value), 6) if math.isfinite(value) else None
    return value


_QUOTE = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) quotes strings with
_ENCODERS: dict[type, Callable[[Any], str]] = {}


def _dumps(value: Any) -> str:
    """``json.dumps(_clean(value), ensure_ascii=False)``, the same text, without building the
    cleaned copy: dataclasses are written by a function made for their fields (``_encoder``), the
    common scalars inline. Any other type goes through ``_clean`` and ``json.dumps``."""
    t = type(value)
    if t is str:
        return _QUOTE(value)
    if t is float:
        return float.__repr__(round(value, 6)) if math.isfinite(value) else "null"
    if t is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is list or t is tuple:  # before the dataclass test, which is slow for a miss
        return "[" + ", ".join([_dumps(x) for x in value]) + "]"
    enc = _ENCODERS.get(t)
    if enc is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        enc = _ENCODERS[t] = _encoder(t)
    if enc is not None:
        return enc(value)
    if t is dict and all(type(k) is str for k in value):
        return "{" + ", ".join([_QUOTE(k) + ": " + _dumps(x) for k, x in value.items()]) + "}"
    return json.dumps(_clean(value), ensure_ascii=False)


def _encoder(cls: type) -> Callable[[Any], str]:
    """A function writing one instance of the dataclass ``cls`` as ``_dumps`` would: one
    expression per field (str, int, finite float and None inline, anything else via ``_dumps``),
    generated once per class so that a row costs no loop and no generic dispatch per field."""
    names = [f.name for f in dataclasses.fields(cls)]
    lines = ["def enc(v):"]
    for i, name in enumerate(names):
        lines.append(f"    x = v.{name}; t = type(x)")
        lines.append(f"    s{i} = Q(x) if t is str else R(x) if t is int else F(round(x, 6)) "
                     f"if t is float and isfinite(x) else 'null' if x is None else D(x)")
    # one join of all the pieces: a chain of ``+`` would copy the growing text once per field
    pieces = ", ".join(f"{(('{' if i == 0 else ', ') + _QUOTE(name) + ': ')!r}, s{i}" for i, name in enumerate(names))
    lines.append(f"    return ''.join(({pieces}, '}}'))" if names else "    return '{}'")
    scope: dict[str, Any] = {"Q": _QUOTE, "R": int.__repr__, "F": float.__repr__, "isfinite": math.isfinite,
                             "D": _dumps}
    exec("\n".join(lines), scope)  # the source is built from dataclass field names (identifiers) only
    fn: Callable[[Any], str] = scope["enc"]
    return fn


def summary(result: AnalysisResult) -> dict[str, Any]:
    mos = [s.mos for s in result.rtp_streams if s.mos is not None]
    kinds = Counter(e.kind for e in result.errors)
    duration = (result.last_ts - result.first_ts) if result.first_ts is not None and result.last_ts is not None \
        else None
    return {
        "packets": result.packets,
        "duration_s": duration,
        "sip_messages": sum(result.sip_requests.values()) + sum(result.sip_responses.values()),
        "calls": len(result.calls),
        "calls_answered": sum(1 for c in result.calls if c.answered),
        "calls_failed": sum(1 for c in result.calls if c.state == "failed"),
        "calls_one_way_audio": sum(1 for c in result.calls if c.one_way_audio),
        "registrations": len(result.registrations),
        "registered": sum(1 for r in result.registrations if r.registered),
        "rtp_streams": len(result.rtp_streams),
        "worst_mos": min(mos) if mos else None,
        "tls_flows": len(result.tls_flows),
        "errors": dict(result.error_counts) if result.error_counts else dict(sorted(kinds.items())),
        "partial": result.partial,
    }


_LISTS = ("calls", "registrations", "keepalives", "rtp_streams", "rtcp", "tls_flows", "stun", "flows")


def _sections(result: AnalysisResult, findings: list[dict[str, Any]] | None,
              extra: dict[str, Any] | None) -> Iterator[tuple[str, Any, bool]]:
    """(key, value, is_list) in document order; list values are iterables of JSON-ready items."""
    yield "schema", SCHEMA_VERSION, False
    yield "sources", list(result.sources), False
    yield "partial", result.partial, False
    yield "summary", summary(result), False
    yield "packets", result.packets, False
    yield "first_ts", result.first_ts, False
    yield "last_ts", result.last_ts, False
    yield "link_types", list(result.link_types), False
    yield "sip", {"requests": dict(result.sip_requests),
                  "responses": {str(k): v for k, v in result.sip_responses.items()}}, False
    for key in _LISTS:
        yield key, iter(getattr(result, key)), True
    yield "kpis", dict(result.kpis), False
    yield "sip_messages", iter(result.sip_messages), True
    yield "errors", iter(result.errors), True
    if findings is not None:
        yield "findings", iter(findings), True
    for k, v in (extra or {}).items():
        yield k, v, False


def to_json_dict(result: AnalysisResult, findings: list[dict[str, Any]] | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``upscope analyze --format json`` document as a dict (see ``iter_json`` for big results)."""
    doc = {k: list(v) if is_list else v for k, v, is_list in _sections(result, findings, extra)}
    cleaned: dict[str, Any] = _clean(doc)
    return cleaned


def iter_json(result: AnalysisResult, findings: list[dict[str, Any]] | None = None,
              extra: dict[str, Any] | None = None) -> Iterator[str]:
    """The same document as text, one list item per line, built item by item.

    Memory stays at one item: a capture with tens of thousands of calls and streams would
    otherwise need the whole document (and ``json.dumps(indent=…)``'s pieces) at once.
    """
    yield "{"
    for n, (key, value, is_list) in enumerate(_sections(result, findings, extra)):
        yield ("\n" if n == 0 else ",\n") + f" {json.dumps(key)}: "
        if not is_list:
            yield _dumps(value)
            continue
        empty = True
        for item in value:
            yield ("[\n  " if empty else ",\n  ") + _dumps(item)
            empty = False
        yield "[]" if empty else "\n ]"
    yield "\n}\n"


# -- HTML ------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;margin:.4em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f2f2f2}.bad{color:#b00020;font-weight:600}.warn{color:#a05a00}.muted{color:#777}
"""


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, list | tuple):
        return ", ".join(_fmt(x) for x in v[:20]) + (" …" if len(v) > 20 else "")
    return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str], bad: str | None = None) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    out = ["<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"]
    for r in rows:
        cls = ' class="bad"' if bad and r.get(bad) else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _ts(v: float | None) -> str:
    return "—" if v is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v)) + f".{int(v % 1 * 1e6):06d} UTC"


def to_html(doc: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external resources) from the JSON document."""
    s = doc["summary"]
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<title>upscope analysis</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>upscope analysis of {html.escape(', '.join(doc['sources']))}</h1>",
    ]
    if doc["partial"]:
        parts.append('<p class="bad">PARTIAL: the input is damaged; everything readable was analysed.</p>')
    parts.append(f"<p>{s['packets']} packets from {_ts(doc['first_ts'])} to {_ts(doc['last_ts'])}; "
                 f"link types {html.escape(', '.join(doc['link_types']) or '—')}.</p>")
    parts.append("<h2>Summary</h2>" + _table([s], list(s)))
    if "findings" in doc:
        rows = [{"severity": f["severity"], "id": f["id"], "title": f["title"],
                 "evidence": "; ".join(e["text"] for e in f["evidence"][:5])} for f in doc["findings"]]
        parts.append("<h2>Findings</h2>" + _table(rows, ["severity", "id", "title", "evidence"]))
    req = [{"method": k, "count": v} for k, v in sorted(doc["sip"]["requests"].items())]
    resp = [{"code": k, "count": v} for k, v in sorted(doc["sip"]["responses"].items())]
    parts.append("<h2>SIP requests</h2>" + _table(req, ["method", "count"]))
    parts.append("<h2>SIP responses</h2>" + _table(resp, ["code", "count"]))
    parts.append("<h2>Calls</h2>" + _table(doc["calls"], [
        "call_id", "caller", "callee", "state", "final_code", "final_reason", "setup_ms", "pdd_ms",
        "duration_s", "hangup_by", "q850_cause", "one_way_audio", "streams"], bad="one_way_audio"))
    parts.append("<h2>Registrations</h2>" + _table(doc["registrations"], [
        "aor", "registrar", "attempts", "challenges", "last_code", "granted_expiry_s", "registered",
        "request_delay_ms"]))
    parts.append("<h2>Keepalives</h2>" + _table(doc["keepalives"], [
        "kind", "client", "peer", "count", "answered", "failures", "mean_rtt_ms", "max_rtt_ms"]))
    parts.append("<h2>RTP streams</h2>" + _table(doc["rtp_streams"], [
        "src", "src_port", "dst", "dst_port", "ssrc", "codec", "packets", "lost", "loss_pct",
        "max_delta_ms", "mean_jitter_ms", "max_jitter_ms", "mos", "mos_note", "call_id"]))
    parts.append("<h2>TLS flows</h2>" + _table(doc["tls_flows"], [
        "client", "server", "server_port", "handshake", "version", "sni", "alerts", "reset_by",
        "cert_valid_at_capture"]))
    parts.append("<h2>Errors</h2>" + _table(doc["errors"], ["kind", "layer", "message", "frame", "offset",
                                                           "source"]))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
