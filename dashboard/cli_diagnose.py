"""``upscope diagnose``, ``upscope firewall`` and ``upscope trace-profiles``.

``diagnose`` runs the same engine as ``upscope serve`` (``core.diagnosis``) offline over a site
file, captures, an OSBiz trace log and a JWT file. Without ``--now`` the diagnosis is judged at the
end of the capture (what the capture can still vouch for), else at the current time.

Exit codes: 0 = no findings (``firewall``: every flow as required), 1 = findings (or a partly
damaged input), 2 = unusable input. Errors are one line on stderr, never a traceback; the JWT and
the API key are never printed (fingerprints only).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from core.analysis import AnalysisResult
from core.diagnosis import Diagnosis, DiagnosisInputs, DiagnosisOptions, diagnose
from core.errors import ConfigError, UpscopeError
from core.findings import CATALOGUE
from core.firewall import FlowVerdict, GcpRanges, load_gcp_ranges
from core.jwt_status import MAX_TOKEN_CHARS
from core.site import Site, load_site
from core.smallfile import UnreadableFile, read_small_file
from core.trace_profiles import TRACE_SETS
from dashboard.cli_site import parse_now
from dashboard.terminal import console as make_console

MAX_GCP_BYTES = 16 * 1024 * 1024  # the real cloud.json is ~100 KB; refuse anything absurd


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
_VERDICT_STYLE = {"working": "green", "blocked": "bold red", "one-way": "bold red", "not-observed": "dim"}
_ITSP_STYLE = {"registered": "bold green", "not-registered": "bold red", "unknown": "yellow", "disabled": "dim"}


class _InputError(Exception):
    """Unusable input: reported as one line, exit 2."""


def _fail(command: str, message: str) -> typer.Exit:
    # Plain write: rich would wrap a long message over several lines.
    sys.stderr.write(f"upscope {command}: {' '.join(message.split())}\n")
    return typer.Exit(2)


def _warn(command: str, message: str) -> None:
    sys.stderr.write(f"upscope {command}: warning: {' '.join(message.split())}\n")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts is not None else None


# ----------------------------------------------------------------------------- input loading


def _load_site(path: Path | None) -> Site | None:
    if path is None:
        return None
    try:
        return load_site(path)
    except ConfigError as exc:
        raise _InputError(str(exc)) from None


def _read_jwt(path: Path | None) -> str | None:
    """The token text; the file's content is never echoed, not even in an error."""
    if path is None:
        return None
    try:
        raw = read_small_file(path, MAX_TOKEN_CHARS * 4, "--jwt-file", head=True)
    except UnreadableFile as exc:
        raise _InputError(str(exc)) from None
    # Over-long or binary content is handed on as is: the JWT status calls it an invalid token.
    return raw.decode("utf-8", errors="replace")


def _load_gcp(path: Path | None, site: Site | None, site_path: Path | None) -> GcpRanges | None:
    if path is None and site is not None and site.gcp_ranges_file:
        path = Path(site.gcp_ranges_file)
        if not path.is_absolute() and site_path is not None:
            path = site_path.parent / path  # relative to the site file, like every path in it
    if path is None:
        return None
    try:
        text = read_small_file(path, MAX_GCP_BYTES, "GCP ranges").decode("utf-8", errors="replace")
    except UnreadableFile as exc:
        raise _InputError(str(exc)) from None
    try:
        return load_gcp_ranges(text, source=str(path))
    except ConfigError as exc:
        raise _InputError(str(exc)) from None


def _analyse(command: str, captures: list[Path], trace_log: Path | None, keylog: Path | None,
             site: Site | None) -> AnalysisResult | None:
    inputs = [*captures, *([trace_log] if trace_log is not None else [])]
    if not inputs:
        return None
    for p in [*inputs, *([keylog] if keylog is not None else [])]:
        if not p.is_file():
            raise _InputError(f"{p}: no such file")
    # Imported here: the capture engine (numpy, readers) is only needed when there is a capture.
    from collectors.analyze import analyze_files
    from collectors.tls.keylog import check_keylog

    if keylog is not None and (problem := check_keylog(keylog)) is not None:
        _warn(command, f"--keylog {keylog}: {problem}; SIP over TLS stays encrypted")
        keylog = None

    try:
        # The site's connector port is where SIP/TLS is decrypted (tshark needs decode-as for it).
        ports = (site.endpoints.connector.port,) if site is not None else ()
        result = analyze_files(inputs, keylog=keylog, tls_ports=ports)
    except (UpscopeError, OSError) as exc:
        raise _InputError(str(exc)) from None
    if result.packets == 0 and not result.sip_messages:
        raise _InputError(f"{', '.join(str(p) for p in inputs)}: nothing usable (no packets, no SIP messages)")
    if result.partial or result.errors:
        _warn(command, f"{len(result.errors)} malformed or unsupported item(s) in the input; the rest is analysed")
    return result


def _undecrypted(keylog: Path | None, analysis: AnalysisResult) -> bool:
    """A key log was given but SIP over TLS stayed encrypted: the diagnosis saw only part of the input."""
    if keylog is None:
        return False
    from collectors.tls.keylog import undecrypted_sip_tls

    return undecrypted_sip_tls(analysis.tls_flows) > 0


def _https_ports(ports: list[int] | None) -> tuple[int, ...]:
    if ports and any(not 1 <= p <= 65535 for p in ports):
        raise _InputError("--osbiz-https-port must be 1-65535")
    return tuple(ports) if ports else (443,)


def _when(now: str | None, analysis: AnalysisResult | None) -> datetime:
    if now is None and analysis is not None and analysis.last_ts is not None:
        return datetime.fromtimestamp(analysis.last_ts, UTC)
    return parse_now(now)


# ----------------------------------------------------------------------------- rendering


def _itsp_line(d: Diagnosis) -> Text:
    s = d.itsp
    line = Text("ITSP status Unify Phone (Cloud): ", style="bold")
    line.append(s.label, style=_ITSP_STYLE.get(s.state.value, ""))
    if s.since is not None:
        line.append(f" since {_iso(s.since)}")
    line.append(f" — {s.reason}")
    if s.expiry_ts is not None and s.state.value == "registered":
        line.append(f" (expires {_iso(s.expiry_ts)})")
    return line


def _evidence_text(e: dict[str, Any]) -> str:
    text = str(e["text"])
    if e.get("packets"):
        text += " [frames " + ", ".join(str(p) for p in e["packets"]) + "]"
    if e.get("config_path"):
        text += f" ({e['config_path']})"
    return text


def _print_firewall(console: Console, verdicts: tuple[FlowVerdict, ...]) -> None:
    console.print(Text("Firewall (seed §4)", style="bold"))
    for v in verdicts:
        d = v.to_dict()
        line = Text(f"  {v.flow:<12} ")
        label = v.verdict.value if not v.must_be_closed else f"{v.verdict.value} ({'closed: ok' if v.ok else 'OPEN'})"
        style = _VERDICT_STYLE.get(v.verdict.value, "") if not v.must_be_closed else ("green" if v.ok else "bold red")
        line.append(f"{label:<13}", style=style)
        line.append(f" {v.source} → {v.destination} ({v.proto}): {v.reason}")
        console.print(line)
        for e in d["evidence"][:4]:
            console.print(f"      {_evidence_text(e)}")
        for note in v.notes:
            console.print(f"      note: {note}")


def _print_findings(console: Console, findings: list[dict[str, Any]]) -> None:
    if not findings:
        console.print(Text("No findings.", style="bold green"))
        return
    console.print(Text(f"Findings ({len(findings)})", style="bold"))
    for f in findings:
        head = Text("\n")
        head.append(f"[{f['severity']}]", style=_SEVERITY_STYLE.get(f["severity"], ""))
        head.append(f" {f['id']} — {f['title']}" + (f" [{f['subject']}]" if f["subject"] else ""), style="bold")
        console.print(head)
        for e in f["evidence"]:
            console.print(f"    • {_evidence_text(e)}")
        console.print(f"    remedy: {f['remedy']}")
        traces = ", ".join(f["trace_profiles"])
        if f["trace_components"]:
            traces += "; " + ", ".join(f["trace_components"])
        console.print(f"    traces: {traces}")


def _emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- commands

_SITE_OPT = typer.Option(None, "--site", "-s", help="Site YAML file (schema: examples/site-healthy.yaml).")
_CAPTURE_OPT = typer.Option(None, "--capture", "-c", help="pcap/pcapng capture (repeatable).")
_KEYLOG_OPT = typer.Option(None, "--keylog", help="TLS key log (SSLKEYLOGFILE format) to decrypt SIP/TLS.")
_GCP_OPT = typer.Option(None, "--gcp-ranges", help="A copy of GCP's cloud.json (default: the site's gcp_ranges_file).")
_FORMAT_OPT = typer.Option(Format.TABLE, "--format", "-f", help="Output format.")
_HTTPS_OPT = typer.Option(None, "--osbiz-https-port", help="Port standing for the OSBiz's inbound HTTPS "
                          "(default 443; repeatable; e.g. the lab's emulated 443 from lab.json).")


def diagnose_cmd(
    site: Path | None = _SITE_OPT,
    capture: list[Path] | None = _CAPTURE_OPT,
    trace_log: Path | None = typer.Option(None, "--trace-log", help="OSBiz SIP trace log."),
    keylog: Path | None = _KEYLOG_OPT,
    jwt_file: Path | None = typer.Option(None, "--jwt-file", help="File holding the tenant's JWT (never printed)."),
    gcp_ranges: Path | None = _GCP_OPT,
    now: str | None = typer.Option(None, "--now", help="Judge at this ISO 8601 time (default: end of the capture, "
                                   "else now; no zone = UTC)."),
    max_loss_pct: float = typer.Option(3.0, "--max-loss-pct", help="Packet loss % beyond which media is poor."),
    max_jitter_ms: float = typer.Option(30.0, "--max-jitter-ms", help="Mean jitter (ms) beyond which media is poor."),
    min_mos: float = typer.Option(3.6, "--min-mos", help="MOS below which media is poor."),
    one_way_silence_s: float = typer.Option(5.0, "--one-way-silence-s",
                                            help="One side silent this long while the other sends = one-way audio."),
    osbiz_https_port: list[int] | None = _HTTPS_OPT,
    format: Format = _FORMAT_OPT,
) -> None:
    """Diagnose the Unify Phone trunk: ITSP status, FAQ findings with evidence, firewall verdicts.

    Exit 0 = no findings, 1 = findings, 2 = unusable input.
    """
    captures = list(capture or [])
    if site is None and not captures and trace_log is None and jwt_file is None:
        raise _fail("diagnose", "nothing to diagnose: give --site, --capture, --trace-log or --jwt-file")
    try:
        loaded = _load_site(site)
        token = _read_jwt(jwt_file)
        gcp = _load_gcp(gcp_ranges, loaded, site)
        https = _https_ports(osbiz_https_port)
        analysis = _analyse("diagnose", captures, trace_log, keylog, loaded)
        when = _when(now, analysis)
    except (_InputError, ValueError) as exc:
        raise _fail("diagnose", str(exc)) from None
    options = DiagnosisOptions(max_loss_pct=max_loss_pct, max_jitter_ms=max_jitter_ms, min_mos=min_mos,
                               one_way_silence_s=one_way_silence_s, gcp_ranges=gcp, osbiz_https_ports=https)
    result = diagnose(DiagnosisInputs(site=loaded, analysis=analysis, jwt_token_text=token, now=when,
                                      options=options))
    doc = {
        "now": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "system": loaded.system.name if loaded is not None else None,
        "sources": list(analysis.sources) if analysis is not None else [],
        "input_errors": len(analysis.errors) if analysis is not None else 0,
        **result.to_dict(),
    }
    if format is Format.JSON:
        _emit_json(doc)
    else:
        console = make_console()
        console.print(_itsp_line(result))
        _print_findings(console, doc["findings"])
        console.print()
        _print_firewall(console, result.firewall)
    partial = analysis is not None and (analysis.partial or _undecrypted(keylog, analysis))
    raise typer.Exit(1 if result.findings or partial else 0)


def firewall_cmd(
    site: Path | None = _SITE_OPT,
    capture: list[Path] | None = _CAPTURE_OPT,
    keylog: Path | None = _KEYLOG_OPT,
    gcp_ranges: Path | None = _GCP_OPT,
    osbiz_https_port: list[int] | None = _HTTPS_OPT,
    format: Format = _FORMAT_OPT,
) -> None:
    """Check the firewall flows of seed §4 against a capture: working / blocked / one-way / not observed.

    Exit 0 = every flow as required, 1 = a flow blocked, one-way or (inbound 443) open, 2 = unusable input.
    """
    captures = list(capture or [])
    if site is None and not captures:
        raise _fail("firewall", "nothing to check: give --site and/or --capture")
    try:
        loaded = _load_site(site)
        gcp = _load_gcp(gcp_ranges, loaded, site)
        https = _https_ports(osbiz_https_port)
        analysis = _analyse("firewall", captures, None, keylog, loaded)
        when = _when(None, analysis)
    except (_InputError, ValueError) as exc:
        raise _fail("firewall", str(exc)) from None
    options = DiagnosisOptions(gcp_ranges=gcp, osbiz_https_ports=https)
    result = diagnose(DiagnosisInputs(site=loaded, analysis=analysis, now=when, options=options))
    if format is Format.JSON:
        _emit_json({"firewall": [v.to_dict() for v in result.firewall],
                    "gcp_ranges": {"scope": gcp.scope, "sync_token": gcp.sync_token, "prefixes": len(gcp.networks)}
                    if gcp is not None else None})
    else:
        _print_firewall(make_console(), result.firewall)
    raise typer.Exit(0 if all(v.ok for v in result.firewall) else 1)


def _profile_rows(finding: str | None) -> list[dict[str, Any]]:
    specs = [CATALOGUE[finding]] if finding is not None else list(CATALOGUE.values())
    rows: list[dict[str, Any]] = []
    for spec in specs:
        ts = spec.traces
        rows.append({
            "id": spec.id,
            "title": spec.title,
            "symptom": spec.symptom,
            "family": spec.trace_family,
            "why": ts.why,
            "trace_profiles": [p.value for p in ts.profiles],
            "trace_components": [{"name": c.name, "level": c.level} for c in ts.components],
            "collect": list(ts.collect),
        })
    return rows


def trace_profiles_cmd(
    finding: str | None = typer.Option(None, "--finding", help="Only this finding id (e.g. itsp.not-registered.auth)."),
    format: Format = _FORMAT_OPT,
) -> None:
    """The OSBiz trace profiles, trace components + levels and the data to collect (seed §5.1), per finding."""
    if finding is not None and finding not in CATALOGUE:
        raise _fail("trace-profiles", f"--finding {finding[:80]!r}: unknown finding id (see `upscope trace-profiles`)")
    rows = _profile_rows(finding)
    if format is Format.JSON:
        family_docs = {name: {"why": ts.why, "trace_profiles": [p.value for p in ts.profiles],
                           "trace_components": [{"name": c.name, "level": c.level} for c in ts.components],
                           "collect": list(ts.collect)}
                    for name, ts in TRACE_SETS.items() if finding is None or name == rows[0]["family"]}
        _emit_json({"findings": rows, "families": family_docs})
        raise typer.Exit(0)
    # A checklist, grouped by trace family, printed without wrapping: profile names are copied
    # into the OSBiz Assistant as they stand.
    console = make_console(soft_wrap=True)
    console.print(Text("OSBiz traces to switch on (seed §5.1; spellings from the seed, DOMAIN §12)", style="bold"))
    families: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        families.setdefault(r["family"], []).append(r)
    for members in families.values():
        first = members[0]
        comps = ", ".join(f"{c['name']} level {c['level']}" for c in first["trace_components"]) or "—"
        console.print(Text(f"\n{first['why']}", style="bold"))
        for r in members:
            console.print(f"  finding:        {r['id']} — {r['title']}")
        console.print(f"  trace profiles: {', '.join(first['trace_profiles'])}")
        console.print(f"  components:     {comps}")
        console.print("  collect:        " + "\n                  ".join(first["collect"]))
    raise typer.Exit(0)


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose_cmd)
    app.command("firewall")(firewall_cmd)
    app.command("trace-profiles")(trace_profiles_cmd)
