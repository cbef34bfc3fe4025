"""``upscope diagnose`` and ``upscope firewall``.

``diagnose`` builds the Snapshot with the same producer as ``upscope serve``
(``collectors.producer``) offline over a site file, captures, an OSBiz trace log and a JWT file,
and renders it. Without ``--now`` the site, licences and JWT are judged as of now and the
evidence as of its last packet.

Exit codes: 0 = no findings (``firewall``: every flow as required), 1 = findings (or a partly
damaged input), 2 = unusable input. Errors are one line on stderr, never a traceback; the JWT and
the API key are never printed (fingerprints only).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

from collectors.inputs import parse_host_port
from collectors.producer import NOW_HELP, Inputs, OfflineFiles, build_snapshot, judgement_times, load_inputs
from core.analysis import AnalysisResult
from core.diagnosis import DiagnosisOptions
from core.errors import UpscopeError
from core.firewall import FlowVerdict
from core.snapshot import Snapshot, snapshot_to_dict
from dashboard.cli_site import parse_now
from dashboard.terminal import console as make_console


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
_VERDICT_STYLE = {"working": "green", "blocked": "bold red", "one-way": "bold red", "not-observed": "dim"}
_ITSP_STYLE = {"registered": "bold green", "not-registered": "bold red", "unknown": "yellow", "disabled": "dim"}


def fail(command: str, message: str) -> typer.Exit:
    # Plain write: rich would wrap a long message over several lines.
    sys.stderr.write(f"upscope {command}: {' '.join(message.split())}\n")
    return typer.Exit(2)


def _warn(command: str, message: str) -> None:
    sys.stderr.write(f"upscope {command}: warning: {' '.join(message.split())}\n")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts is not None else None


# ----------------------------------------------------------------------------- inputs


def _snapshot(command: str, files: OfflineFiles, options: DiagnosisOptions,
              now: str | None) -> tuple[Snapshot, Inputs]:
    """Load the evidence through the one loader and build the Snapshot with the one producer."""
    from collectors.tls.keylog import check_keylog

    if files.keylog is not None and files.keylog.exists() and (problem := check_keylog(files.keylog)) is not None:
        # tshark would decrypt nothing and say nothing: say it once, and do not hand it over
        _warn(command, f"--keylog {files.keylog}: {problem}; SIP over TLS stays encrypted")
        files = dataclasses.replace(files, keylog=None)
    try:
        inputs = load_inputs(files, options)
        site_at, evidence_at = judgement_times(parse_now(now) if now is not None else None, inputs.analysis)
    except (UpscopeError, ValueError) as exc:
        raise fail(command, str(exc)) from None
    analysis = inputs.analysis
    if analysis is not None and (analysis.partial or analysis.errors):
        _warn(command, f"{len(analysis.errors)} malformed or unsupported item(s) in the input; the rest is analysed")
    return build_snapshot(inputs, site_at, evidence_at), inputs


def _undecrypted(keylog: Path | None, analysis: AnalysisResult | None) -> bool:
    """A key log was given but SIP over TLS stayed encrypted: the diagnosis saw only part of the input."""
    if keylog is None or analysis is None:
        return False
    from collectors.tls.keylog import undecrypted_sip_tls

    return undecrypted_sip_tls(analysis.tls_flows) > 0


def _connector(command: str, text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    try:
        return parse_host_port(text)
    except ValueError as exc:
        raise fail(command, f"--connector: {exc}") from None


def _https_ports(command: str, ports: list[int] | None) -> tuple[int, ...]:
    if ports and any(not 1 <= p <= 65535 for p in ports):
        raise fail(command, "--osbiz-https-port must be 1-65535")
    return tuple(ports) if ports else (443,)


# ----------------------------------------------------------------------------- rendering


def _itsp_line(snap: Snapshot) -> Text:
    s = snap.itsp
    line = Text("ITSP status Unify Phone (Cloud): ", style="bold")
    line.append(s.label, style=_ITSP_STYLE.get(s.state.value, ""))
    if s.since is not None:
        line.append(f" since {_iso(s.since)}")
    line.append(f" — {s.reason}")
    if s.expiry_ts is not None and s.state.value == "registered":
        line.append(f" (expires {_iso(s.expiry_ts)})")
    return line


def _print_other_registrations(console: Console, snap: Snapshot) -> None:
    """Registrations that are not the Unify Phone trunk (a LAN registrar, another ITSP)."""
    if not snap.other_registrations:
        return
    console.print(Text(f"Other registrations, not the Unify Phone trunk ({len(snap.other_registrations)})",
                       style="bold"))
    for o in snap.other_registrations[:20]:
        line = Text(f"  {o.aor} from {o.client} at {o.registrar}: ")
        line.append(o.state.value, style=_ITSP_STYLE.get(o.state.value, ""))
        line.append(f" — {o.reason}")
        console.print(line)


def _evidence_text(e: dict[str, Any]) -> str:
    text = str(e["text"])
    if e.get("packets"):
        text += " [frames " + ", ".join(str(p) for p in e["packets"]) + "]"
    if e.get("config_path"):
        text += f" ({e['config_path']})"
    return text


def _print_firewall(console: Console, verdicts: tuple[FlowVerdict, ...]) -> None:
    console.print(Text("Firewall", style="bold"))
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


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- commands

_SITE_OPT = typer.Option(None, "--site", "-s", help="Site YAML file (schema: examples/site-healthy.yaml).")
_CAPTURE_OPT = typer.Option(None, "--capture", "-c", help="pcap/pcapng capture (repeatable).")
_KEYLOG_OPT = typer.Option(None, "--keylog", help="TLS key log (SSLKEYLOGFILE format) to decrypt SIP/TLS.")
_GCP_OPT = typer.Option(None, "--gcp-ranges", help="A copy of GCP's cloud.json (default: the site's gcp_ranges_file).")
_FORMAT_OPT = typer.Option(Format.TABLE, "--format", "-f", help="Output format.")
_CONNECTOR_OPT = typer.Option(None, "--connector", help="HOST:PORT of the Unify Phone connector the trunk "
                              "registers with (default: the site file's; without a site, any registrar on 65061).")
_HTTPS_OPT = typer.Option(None, "--osbiz-https-port", help="Port standing for the OSBiz's inbound HTTPS "
                          "(default 443; repeatable; e.g. the lab's emulated 443 from lab.json).")


def diagnose_cmd(
    site: Path | None = _SITE_OPT,
    capture: list[Path] | None = _CAPTURE_OPT,
    trace_log: Path | None = typer.Option(None, "--trace-log", help="OSBiz SIP trace log."),
    keylog: Path | None = _KEYLOG_OPT,
    jwt_file: Path | None = typer.Option(None, "--jwt-file", help="File holding the tenant's JWT (never printed)."),
    gcp_ranges: Path | None = _GCP_OPT,
    now: str | None = typer.Option(None, "--now", help=NOW_HELP),
    max_loss_pct: float = typer.Option(3.0, "--max-loss-pct", help="Packet loss % beyond which media is poor."),
    max_jitter_ms: float = typer.Option(30.0, "--max-jitter-ms", help="Mean jitter (ms) beyond which media is poor."),
    min_mos: float = typer.Option(3.6, "--min-mos", help="MOS below which media is poor."),
    one_way_silence_s: float = typer.Option(5.0, "--one-way-silence-s",
                                            help="One side silent this long while the other sends = one-way audio."),
    osbiz_https_port: list[int] | None = _HTTPS_OPT,
    connector: str | None = _CONNECTOR_OPT,
    format: Format = _FORMAT_OPT,
) -> None:
    """Diagnose the Unify Phone trunk: ITSP status, FAQ findings with evidence, firewall verdicts.

    Exit 0 = no findings, 1 = findings, 2 = unusable input.
    """
    captures = list(capture or [])
    if site is None and not captures and trace_log is None and jwt_file is None:
        raise fail("diagnose", "nothing to diagnose: give --site, --capture, --trace-log or --jwt-file")
    options = DiagnosisOptions(max_loss_pct=max_loss_pct, max_jitter_ms=max_jitter_ms, min_mos=min_mos,
                               one_way_silence_s=one_way_silence_s,
                               osbiz_https_ports=_https_ports("diagnose", osbiz_https_port),
                               connector=_connector("diagnose", connector))
    files = OfflineFiles(site=site, captures=tuple(captures), trace_log=trace_log, keylog=keylog,
                         jwt_file=jwt_file, gcp_ranges=gcp_ranges)
    snap, _ = _snapshot("diagnose", files, options, now)
    doc = {k: v for k, v in snapshot_to_dict(snap).items() if k != "analysis"}
    doc["input_errors"] = len(snap.analysis.errors) if snap.analysis is not None else 0
    if format is Format.JSON:
        emit_json(doc)
    else:
        console = make_console()
        console.print(_itsp_line(snap))
        _print_other_registrations(console, snap)
        _print_findings(console, doc["findings"])
        console.print()
        _print_firewall(console, snap.firewall)
    partial = snap.analysis is not None and (snap.analysis.partial or _undecrypted(keylog, snap.analysis))
    raise typer.Exit(1 if snap.findings or partial else 0)


def firewall_cmd(
    site: Path | None = _SITE_OPT,
    capture: list[Path] | None = _CAPTURE_OPT,
    keylog: Path | None = _KEYLOG_OPT,
    gcp_ranges: Path | None = _GCP_OPT,
    osbiz_https_port: list[int] | None = _HTTPS_OPT,
    connector: str | None = _CONNECTOR_OPT,
    format: Format = _FORMAT_OPT,
) -> None:
    """Check the firewall flows the connector needs against a capture: working / blocked / one-way / not observed.

    Exit 0 = every flow as required, 1 = a flow blocked, one-way or (inbound 443) open, 2 = unusable input.
    """
    captures = list(capture or [])
    if site is None and not captures:
        raise fail("firewall", "nothing to check: give --site and/or --capture")
    options = DiagnosisOptions(osbiz_https_ports=_https_ports("firewall", osbiz_https_port),
                               connector=_connector("firewall", connector))
    files = OfflineFiles(site=site, captures=tuple(captures), keylog=keylog, gcp_ranges=gcp_ranges)
    snap, inputs = _snapshot("firewall", files, options, None)
    gcp = inputs.options.gcp_ranges
    if format is Format.JSON:
        emit_json({"firewall": [v.to_dict() for v in snap.firewall],
                    "gcp_ranges": {"scope": gcp.scope, "sync_token": gcp.sync_token, "prefixes": len(gcp.networks),
                                   "source": gcp.source, "created": gcp.creation_time or None}
                    if gcp is not None else None})
    else:
        _print_firewall(make_console(), snap.firewall)
    raise typer.Exit(0 if all(v.ok for v in snap.firewall) else 1)


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose_cmd)
    app.command("firewall")(firewall_cmd)
