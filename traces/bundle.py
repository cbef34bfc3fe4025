"""Support bundle: one zip a partner sends to the next support level.

Contents: ``report.json`` and ``report.html`` (ITSP status, findings with evidence, analysis
summary), ``site.yaml`` (the loaded site, secrets replaced by fingerprints), per failing call (not
answered, or one-way audio; at most ``MAX_CALLS``) ``calls/<digest>.pcap`` (its SIP + RTP) and
``calls/<digest>.txt`` (its full SIP messages, redacted) with ``calls/index.txt`` naming them,
``streams/one-way-<n>.pcap`` for one-way RTP of no call, ``trace-profiles.txt`` (what to switch
on in the OSBiz), ``versions.json``.
Every text member passes through ``redact_text`` with the known secret values as a last line of
defence, so a secret that slipped into a reason string still never leaves the machine.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import platform
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import yaml

from core.findings import CATALOGUE
from core.site.model import Site
from core.trace_profiles import TRACE_SETS
from traces.redact import redact_text, redact_tree


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    try:
        out["upscope"] = metadata.version("upscope")
    except metadata.PackageNotFoundError:
        out["upscope"] = "unknown"
    if shutil.which("tshark"):
        try:
            first = subprocess.run(["tshark", "--version"], capture_output=True, text=True, timeout=10).stdout
            out["tshark"] = first.splitlines()[0] if first else "unknown"
        except (OSError, subprocess.SubprocessError):
            out["tshark"] = "unavailable"
    return out


def trace_checklist(finding_ids: Iterable[str]) -> str:
    """The OSBiz trace-profile checklist for these findings (all families when none)."""
    families: dict[str, list[str]] = {}
    for fid in finding_ids:
        spec = CATALOGUE.get(fid)
        if spec:
            families.setdefault(spec.trace_family, []).append(fid)
    if not families:
        families = {name: [] for name in TRACE_SETS}
    lines = ["OpenScape Business traces to switch on", ""]
    for family, ids in families.items():
        ts = TRACE_SETS[family]
        lines.append(f"[{family}] {ts.why}" + (f" — for {', '.join(sorted(ids))}" if ids else ""))
        lines += [f"  [ ] trace profile: {p.value}" for p in ts.profiles]
        lines += [f"  [ ] trace component: {c.name} level {c.level}" for c in ts.components]
        lines += [f"  [ ] collect: {c}" for c in ts.collect]
        lines.append("")
    return "\n".join(lines)


def _html(report: dict[str, Any]) -> str:
    itsp = report.get("itsp_status") or {}
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            html.escape(f["severity"]), html.escape(f["id"]), html.escape(f["title"]),
            "<br>".join(html.escape(e.get("text", "")) for e in f.get("evidence", [])),
            html.escape(f["remedy"]),
        )
        for f in report.get("findings", [])
    )
    return (
        "<!doctype html><meta charset=utf-8><title>upscope support bundle</title>"
        f"<h1>upscope report — {html.escape(str(report.get('system', '')))}</h1>"
        f"<p>ITSP status: <b>{html.escape(str(itsp.get('label', 'unknown')))}</b> "
        f"{html.escape(str(itsp.get('reason', '')))}</p>"
        "<table border=1><tr><th>severity</th><th>id</th><th>title</th><th>evidence</th><th>remedy</th></tr>"
        f"{rows}</table>"
    )


#: Failing calls whose capture and messages go into one bundle (the first ones of the report).
MAX_CALLS = 50


def failing_calls(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Calls of the report that failed: not answered (rejected, cancelled, unanswered), or with
    one-way audio — the first ``MAX_CALLS``."""
    calls = (report.get("analysis") or {}).get("calls", [])
    return [c for c in calls if isinstance(c, dict) and c.get("call_id")
            and (not c.get("answered") or c.get("one_way_audio"))][:MAX_CALLS]


def one_way_streams_without_call(report: dict[str, Any]) -> list[list[int]]:
    """Per one-way-audio finding about streams of no call: the indexes (into the report's
    ``rtp_streams``) of the streams its evidence names by their first and last frame."""
    streams = (report.get("analysis") or {}).get("rtp_streams", [])
    calls = {c.get("call_id") for c in (report.get("analysis") or {}).get("calls", [])}
    out = []
    for f in report.get("findings", []):
        if f.get("id") != "media.one-way-audio" or f.get("subject") in calls:
            continue
        spans = {tuple(e["packets"]) for e in f.get("evidence", []) if len(e.get("packets") or []) == 2}
        picked = [i for i, s in enumerate(streams) if (s.get("first_frame"), s.get("last_frame")) in spans]
        if picked:
            out.append(picked)
    return out


def build_bundle(
    report: dict[str, Any],
    *,
    site: Site | None = None,
    secrets: tuple[str, ...] = (),
    call_capture: Callable[[str], bytes | None] | None = None,
    call_messages: Callable[[Sequence[str]], Mapping[str, str]] | None = None,
    stream_capture: Callable[[Sequence[int]], bytes | None] | None = None,
    now: datetime | None = None,
) -> bytes:
    """Return the zip as bytes. ``report`` is JSON-shaped (``snapshot_to_dict`` or a diagnose report);
    ``site`` is the site as loaded and validated (its public form, redacted, becomes ``site.yaml``:
    the raw file is never read again, so nothing the loader refused can enter the bundle);
    ``secrets`` are the resolved secret values, scrubbed from every member as a last defence.
    ``call_capture(call_id)`` gives a call's pcap, ``call_messages(call_ids)`` their full SIP
    messages as text (already redacted), ``stream_capture(indexes)`` a pcap of those RTP streams."""

    def clean(text: str) -> str:
        return redact_text(text, secrets)

    report = redact_tree(report)
    buf = io.BytesIO()
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("report.json", clean(json.dumps(report, indent=2, sort_keys=True, default=str)))
        zf.writestr("report.html", clean(_html(report)))
        zf.writestr("findings.json", clean(json.dumps(report.get("findings", []), indent=2, default=str)))
        zf.writestr("trace-profiles.txt", trace_checklist(f["id"] for f in report.get("findings", [])))
        zf.writestr("versions.json", json.dumps({**_versions(), "created": stamp}, indent=2))
        if site is not None:
            public = yaml.safe_dump(redact_tree(site.to_public_dict()), sort_keys=False, allow_unicode=True)
            zf.writestr("site.yaml", clean(public))
        failing = failing_calls(report)
        texts = call_messages([c["call_id"] for c in failing]) if call_messages is not None and failing else {}
        index = []
        for call in failing:
            name = hashlib.sha256(call["call_id"].encode()).hexdigest()[:12]
            data = call_capture(call["call_id"]) if call_capture is not None else None
            if data:
                zf.writestr(f"calls/{name}.pcap", data)
            text = texts.get(call["call_id"])
            if text:
                zf.writestr(f"calls/{name}.txt", clean(text))
            status = "one-way audio" if call.get("one_way_audio") else \
                f"{call.get('final_code') or 'no final response'} {call.get('final_reason') or ''}".strip()
            index.append(f"{name}  {call['call_id']}  {call.get('caller') or '?'} -> {call.get('callee') or '?'}  "
                         f"{status}  pcap:{'yes' if data else 'no'} messages:{'yes' if text else 'no'}")
        if index:
            zf.writestr("calls/index.txt", clean("failing calls: digest, Call-ID, caller -> callee, status\n"
                                                 + "\n".join(index) + "\n"))
        if stream_capture is not None:
            for n, picked in enumerate(one_way_streams_without_call(report), start=1):
                data = stream_capture(picked)
                if data:
                    zf.writestr(f"streams/one-way-{n}.pcap", data)
    return buf.getvalue()
