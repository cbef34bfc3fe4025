"""``upscope analyze`` (captures, OSBiz trace logs) and ``upscope convert`` (trace log → pcap).

Exit codes of ``analyze``: 0 = every input complete (and, with ``--site``, no findings),
1 = some input damaged but a report was written (``partial``) or findings with ``--site``,
2 = nothing usable (empty, not a capture, a directory, unreadable) or bad options.
Errors are one line on stderr: never a traceback, never a secret.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from collectors.analyze import Pipeline, exit_code, feed_decrypted_sip
from collectors.capture.tracelog import looks_like_trace_log
from collectors.export import convert_trace_log, export_call
from collectors.report import iter_json, to_html, to_json_dict
from core.analysis import AnalysisResult
from core.errors import UpscopeError
from traces.call_export import select_call

PROGRESS_MIN_BYTES = 20 << 20  # smaller inputs finish before a bar would be readable


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    HTML = "html"


def _fail(cmd: str, message: str, code: int = 2) -> typer.Exit:
    sys.stderr.write(f"upscope {cmd}: {' '.join(message.split())}\n")
    return typer.Exit(code)


def _site_tls_ports(site: Any) -> tuple[int, ...]:
    """The site's connector port, for key-log decryption (the analysis adds 5061/65061 and the
    TLS server ports the capture shows)."""
    port = getattr(getattr(getattr(site, "endpoints", None), "connector", None), "port", None)
    return (port,) if isinstance(port, int) else ()


def _run(files: list[Path], keylog: Path | None, show_progress: bool,
         site: Any = None) -> tuple[AnalysisResult, Any]:
    pipe = Pipeline()
    total = sum(p.stat().st_size for p in files if p.is_file())
    console = Console(stderr=True)
    bar = show_progress and total >= PROGRESS_MIN_BYTES and console.is_terminal
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=console, transient=True, disable=not bar) as progress:
        task = progress.add_task("analysing", total=total or None)

        def advance(n: int) -> None:
            progress.advance(task, n)

        for path in files:
            progress.update(task, description=f"analysing {path.name}")
            if path.is_file() and looks_like_trace_log(path):
                pipe.add_trace_log(path, advance)
            else:
                pipe.add_capture(path, advance)
            if keylog is not None and path.is_file() and not looks_like_trace_log(path):
                feed_decrypted_sip(pipe, path, keylog, _site_tls_ports(site))
    return pipe.finish(), pipe.outcomes


def _findings(result: AnalysisResult, site: Any) -> list[dict[str, Any]]:
    from core.diagnosis import DiagnosisInputs, diagnose

    diag = diagnose(DiagnosisInputs(site=site, analysis=result))
    return [f.to_dict() for f in diag.findings]


def _table(doc: dict[str, Any], console: Console) -> None:
    s = doc["summary"]
    console.print(f"[bold]{', '.join(doc['sources'])}[/bold]: {s['packets']} packets, "
                  f"{(s['duration_s'] or 0):.1f} s, link types {', '.join(doc['link_types']) or '—'}"
                  + (" [red]PARTIAL (damaged input)[/red]" if doc["partial"] else ""), highlight=False)
    console.print(f"SIP: {s['sip_messages']} messages · requests "
                  + (" ".join(f"{k}×{v}" for k, v in sorted(doc["sip"]["requests"].items())) or "—")
                  + " · responses "
                  + (" ".join(f"{k}×{v}" for k, v in sorted(doc["sip"]["responses"].items())) or "—"),
                  highlight=False)
    if doc.get("findings"):
        t = Table(title="Findings", title_justify="left")
        for col in ("severity", "id", "title", "evidence"):
            t.add_column(col)
        for f in doc["findings"]:
            t.add_row(f["severity"], f["id"], f["title"], "; ".join(e["text"] for e in f["evidence"][:3]))
        console.print(t)
    if doc["calls"]:
        t = Table(title="Calls", title_justify="left")
        for col in ("Call-ID", "caller → callee", "state", "final", "setup ms", "duration s", "streams", "1-way"):
            t.add_column(col)
        for c in doc["calls"][:200]:
            t.add_row(c["call_id"][:40], f"{c['caller']} → {c['callee']}", c["state"], str(c["final_code"] or "—"),
                      "—" if c["setup_ms"] is None else f"{c['setup_ms']:.0f}",
                      "—" if c["duration_s"] is None else f"{c['duration_s']:.1f}", str(len(c["streams"])),
                      "YES" if c["one_way_audio"] else "")
        console.print(t)
    if doc["registrations"]:
        t = Table(title="Registrations", title_justify="left")
        for col in ("AOR", "registrar", "attempts", "401/407", "last code", "expiry s", "registered"):
            t.add_column(col)
        for r in doc["registrations"]:
            t.add_row(r["aor"], r["registrar"], str(r["attempts"]), str(r["challenges"]), str(r["last_code"]),
                      str(r["granted_expiry_s"]), "yes" if r["registered"] else "NO")
        console.print(t)
    if doc["rtp_streams"]:
        t = Table(title="RTP streams", title_justify="left")
        for col in ("src", "dst", "SSRC", "codec", "pkts", "lost", "max Δ ms", "mean/max jitter ms", "MOS", "call"):
            t.add_column(col)
        for r in doc["rtp_streams"][:200]:
            t.add_row(f"{r['src']}:{r['src_port']}", f"{r['dst']}:{r['dst_port']}", f"0x{r['ssrc']:08X}", r["codec"],
                      str(r["packets"]), str(r["lost"]), f"{r['max_delta_ms']:.3f}",
                      f"{r['mean_jitter_ms']:.3f}/{r['max_jitter_ms']:.3f}",
                      "—" if r["mos"] is None else f"{r['mos']:.2f}", (r["call_id"] or "—")[:24])
        console.print(t)
    if doc["tls_flows"]:
        t = Table(title="TLS flows", title_justify="left")
        for col in ("client", "server", "handshake", "version", "SNI", "alerts", "reset by"):
            t.add_column(col)
        for f in doc["tls_flows"]:
            t.add_row(f"{f['client']}:{f['client_port']}", f"{f['server']}:{f['server_port']}", f["handshake"],
                      str(f["version"]), str(f["sni"]), ", ".join(f["alerts"]), str(f["reset_by"]))
        console.print(t)
    if doc["errors"]:
        counts = ", ".join(f"{k} {v}" for k, v in s["errors"].items())
        console.print(f"[yellow]Problems ({counts}); first ones:[/yellow]")
        for e in doc["errors"][:10]:
            where = f" frame {e['frame']}" if e["frame"] else (f" byte {e['offset']}" if e["offset"] is not None else "")
            console.print(f"  {e['kind']} {e['layer']}{where}: {e['message']}", highlight=False, markup=False)


def analyze_cmd(
    files: list[Path] = typer.Argument(..., help="pcap / pcapng (optionally gzip-compressed) or OSBiz SIP trace logs."),
    keylog: Path | None = typer.Option(None, "--keylog", help="TLS key log (SSLKEYLOGFILE format) to decrypt SIP over TLS."),
    site: Path | None = typer.Option(None, "--site", help="Site file: also list the findings the evidence supports."),
    format: Format = typer.Option(Format.TABLE, "--format", "-f", help="Report format."),
    out: Path | None = typer.Option(None, "--out", help="Write the report into this directory (analysis.txt/.json/.html)."),
    call: str | None = typer.Option(None, "--call", help="Call-ID of the call to export (with --export-pcap)."),
    export_pcap: Path | None = typer.Option(None, "--export-pcap", help="Write the SIP and RTP of --call to this pcap."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr for long files."),
) -> None:
    """Analyse captures and OSBiz SIP trace logs: SIP, calls, registrations, RTP quality, TLS, STUN."""
    if (call is None) != (export_pcap is None):
        raise _fail("analyze", "--call and --export-pcap go together")
    if keylog is not None and not keylog.is_file():
        raise _fail("analyze", f"--keylog {keylog}: no such file")
    try:
        loaded_site = None
        if site is not None:  # a bad site file fails before minutes of analysis, not after
            from core.site import load_site

            loaded_site = load_site(site)
        result, outcomes = _run(files, keylog, progress, loaded_site)
        findings = _findings(result, loaded_site) if loaded_site is not None else None
    except UpscopeError as exc:
        raise _fail("analyze", str(exc)) from None
    code = exit_code(outcomes)
    for o in outcomes:
        if o.message:
            sys.stderr.write(f"upscope analyze: {' '.join(o.message.split())}\n")
    if code == 2:
        raise typer.Exit(2)
    if findings:
        code = max(code, 1)
    if call is not None and export_pcap is not None:
        try:
            sel = select_call(result, call)
            with export_pcap.open("wb") as fh:
                exp = export_call(files, sel, fh)
        except UpscopeError as exc:
            raise _fail("analyze", str(exc)) from None
        except OSError as exc:
            raise _fail("analyze", f"--export-pcap {export_pcap}: {exc.strerror or exc}") from None
        sys.stderr.write(f"upscope analyze: wrote {exp.written} packets of call {call} to {export_pcap}\n")
    name = {Format.JSON: "analysis.json", Format.HTML: "analysis.html", Format.TABLE: "analysis.txt"}[format]
    target = out / name if out is not None else None
    try:
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
        with (target.open("w", encoding="utf-8") if target is not None else nullcontext(sys.stdout)) as fh:
            if format is Format.JSON:
                # streamed item by item: memory does not grow with the number of calls/streams
                for piece in iter_json(result, findings):
                    fh.write(piece)
            elif format is Format.HTML:
                fh.write(to_html(to_json_dict(result, findings)))
            elif target is not None:
                _table(to_json_dict(result, findings), Console(file=fh, width=160, no_color=True))
            else:
                _table(to_json_dict(result, findings), Console(width=None if sys.stdout.isatty() else 160))
    except OSError as exc:
        raise _fail("analyze", f"--out {out}: {exc.strerror or exc}") from None
    if target is not None:
        sys.stderr.write(f"upscope analyze: report written to {target}\n")
    raise typer.Exit(code)


def convert_cmd(
    trace: Path = typer.Argument(..., help="OSBiz SIP trace log (DOMAIN §11 format)."),
    output: Path = typer.Option(..., "-o", "--output", help="The pcap file to write."),
) -> None:
    """Convert an OSBiz SIP trace log into a pcap that Wireshark/tshark decode as SIP."""
    try:
        with output.open("wb") as fh:
            res = convert_trace_log(trace, fh)
    except UpscopeError as exc:
        output.unlink(missing_ok=True)
        raise _fail("convert", str(exc)) from None
    except OSError as exc:
        raise _fail("convert", f"{exc.filename or output}: {exc.strerror or exc}") from None
    for e in res.errors[:10]:
        sys.stderr.write(f"upscope convert: {e.kind} at byte {e.offset}: {e.message}\n")
    if res.skipped_too_big:
        sys.stderr.write(f"upscope convert: {res.skipped_too_big} messages too big for one UDP datagram skipped\n")
    sys.stderr.write(f"upscope convert: {res.messages} SIP messages written to {output}\n")
    if res.messages == 0:
        raise typer.Exit(2)
    raise typer.Exit(1 if res.errors or res.skipped_too_big else 0)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_cmd)
    app.command("convert")(convert_cmd)
