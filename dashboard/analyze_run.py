"""The body of ``upscope analyze``, without typer: `cli_analyze` wraps it in the typer command, and
``dashboard.analyze_fast.fast_main`` runs it straight from ``sys.argv`` for the plain invocations
scripts use. rich is imported only to draw the progress bar or the table.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from collectors.analyze import Pipeline, exit_code, feed_decrypted_sip
from collectors.report import iter_json, to_html, to_json_dict
from core.analysis import AnalysisResult
from core.errors import UpscopeError
from dashboard.terminal import cell
from traces.tracelog import looks_like_trace_log

if TYPE_CHECKING:
    from rich.console import Console

    from core.site import Site  # pydantic: only loaded with --site

PROGRESS_MIN_BYTES = 20 << 20  # smaller inputs finish before a bar would be readable


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    HTML = "html"


def fail(cmd: str, message: str) -> None:
    """The one-line error of a command (the caller exits with 2)."""
    sys.stderr.write(f"upscope {cmd}: {' '.join(message.split())}\n")


def _site_tls_ports(site: Any) -> tuple[int, ...]:
    """The site's connector port, for key-log decryption (the analysis adds 5061/65061 and the
    TLS server ports the capture shows)."""
    port = getattr(getattr(getattr(site, "endpoints", None), "connector", None), "port", None)
    return (port,) if isinstance(port, int) else ()


@contextmanager
def _progress(total: int, show: bool) -> Iterator[tuple[Callable[[int], None], Callable[[str], None]]]:
    """(advance by n bytes, describe the current file): a rich bar on a terminal for long inputs,
    otherwise no-ops (and rich is not imported)."""
    if show and total >= PROGRESS_MIN_BYTES:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        if console.is_terminal:
            with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), DownloadColumn(),
                          TimeRemainingColumn(), console=console, transient=True) as progress:
                task = progress.add_task("analysing", total=total)
                yield (lambda n: progress.advance(task, n),
                       lambda name: progress.update(task, description=f"analysing {name}"))
            return
    yield (lambda n: None, lambda name: None)


def _run(files: list[Path], keylog: Path | None, show_progress: bool,
         site: Any = None, connector: tuple[str, int] | None = None) -> tuple[AnalysisResult, Any]:
    pipe = Pipeline()
    total = sum(p.stat().st_size for p in files if p.is_file())
    with _progress(total, show_progress) as (advance, describe):
        for path in files:
            describe(path.name)
            if path.is_file() and looks_like_trace_log(path):
                pipe.add_trace_log(path, advance)
            else:
                pipe.add_capture(path, advance)
            if keylog is not None and path.is_file() and not looks_like_trace_log(path):
                feed_decrypted_sip(pipe, path, keylog, _site_tls_ports(site) + ((connector[1],) if connector else ()))
    return pipe.finish(), pipe.outcomes


def _findings(result: AnalysisResult, site: Site, connector: tuple[str, int] | None = None) -> list[dict[str, Any]]:
    """The findings of the Snapshot the one producer builds (as ``upscope diagnose`` does)."""
    from collectors.producer import Inputs, build_snapshot, judgement_times
    from core.diagnosis import DiagnosisOptions

    site_at, evidence_at = judgement_times(None, result)
    snap = build_snapshot(Inputs(site=site, analysis=result, options=DiagnosisOptions(connector=connector)),
                          site_at, evidence_at)
    return [f.finding.to_dict() for f in snap.findings]


def _print_table(console: Console, title: str, columns: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> None:
    """One rich table, left-titled; nothing at all when there are no rows."""
    from rich.table import Table

    t = Table(*columns, title=title, title_justify="left")
    for row in rows:
        t.add_row(*row)
    if t.row_count:
        console.print(t)


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
    _print_table(console, "Findings", ("severity", "id", "title", "evidence"), (
        (f["severity"], f["id"], f["title"], cell("; ".join(e["text"] for e in f["evidence"][:3])))
        for f in doc.get("findings") or ()))
    _print_table(console, "Calls", ("Call-ID", "caller → callee", "state", "final", "setup ms", "duration s",
                                    "streams", "1-way"), (
        (c["call_id"][:40], f"{cell(c['caller'])} → {cell(c['callee'])}", cell(c["state"]), cell(c["final_code"]),
         "—" if c["setup_ms"] is None else f"{c['setup_ms']:.0f}",
         "—" if c["duration_s"] is None else f"{c['duration_s']:.1f}", str(len(c["streams"])),
         "YES" if c["one_way_audio"] else "")
        for c in doc["calls"][:200]))
    _print_table(console, "Registrations", ("AOR", "registrar", "attempts", "401/407", "last code", "expiry s",
                                            "registered"), (
        (cell(r["aor"]), cell(r["registrar"]), cell(r["attempts"]), cell(r["challenges"]), cell(r["last_code"]),
         cell(r["granted_expiry_s"]), "yes" if r["registered"] else "NO")
        for r in doc["registrations"]))
    _print_table(console, "RTP streams", ("src", "dst", "SSRC", "codec", "pkts", "lost", "max Δ ms",
                                          "mean/max jitter ms", "MOS", "call"), (
        (f"{r['src']}:{r['src_port']}", f"{r['dst']}:{r['dst_port']}", f"0x{r['ssrc']:08X}", cell(r["codec"]),
         cell(r["packets"]), cell(r["lost"]), f"{r['max_delta_ms']:.3f}",
         f"{r['mean_jitter_ms']:.3f}/{r['max_jitter_ms']:.3f}",
         "n/a" if r["mos"] is None else f"{r['mos']:.2f}", (r["call_id"] or "—")[:24])
        for r in doc["rtp_streams"][:200]))
    for note in dict.fromkeys(r["mos_note"] for r in doc["rtp_streams"][:200] if r.get("mos_note")):
        console.print(f"MOS n/a: {note}", highlight=False, markup=False)
    _print_table(console, "TLS flows", ("client", "server", "handshake", "version", "SNI", "alerts", "reset by"), (
        (f"{f['client']}:{f['client_port']}", f"{f['server']}:{f['server_port']}", cell(f["handshake"]),
         cell(f["version"]), cell(f["sni"]), cell(", ".join(f["alerts"])), cell(f["reset_by"]))
        for f in doc["tls_flows"]))
    if doc["errors"]:
        counts = ", ".join(f"{k} {v}" for k, v in s["errors"].items())
        console.print(f"[yellow]Problems ({counts}); first ones:[/yellow]")
        for e in doc["errors"][:10]:
            where = f" frame {e['frame']}" if e["frame"] else (f" byte {e['offset']}" if e["offset"] is not None else "")
            console.print(f"  {e['kind']} {e['layer']}{where}: {e['message']}", highlight=False, markup=False)


def analyze(files: list[Path], keylog: Path | None = None, site: Path | None = None,
            format: Format = Format.TABLE, out: Path | None = None, call: str | None = None,
            export_pcap: Path | None = None, progress: bool = True, connector: str | None = None) -> int:
    """Run ``upscope analyze``; the exit code (errors are one line on stderr)."""
    if (call is None) != (export_pcap is None):
        fail("analyze", "--call and --export-pcap go together")
        return 2
    named = None
    if connector is not None:
        from collectors.inputs import parse_host_port

        if site is None:
            fail("analyze", "--connector goes with --site (the findings are judged for the site)")
            return 2
        try:
            named = parse_host_port(connector)
        except ValueError as exc:
            fail("analyze", f"--connector: {exc}")
            return 2
    if keylog is not None and not keylog.exists():
        fail("analyze", f"--keylog {keylog}: no such file")
        return 2
    keylog_problem = None
    if keylog is not None:
        from collectors.tls.keylog import check_keylog

        keylog_problem = check_keylog(keylog)
        if keylog_problem is not None:
            # tshark would decrypt nothing and say nothing: say it, and do not hand it over
            sys.stderr.write(f"upscope analyze: warning: --keylog {keylog}: {keylog_problem}; "
                             "SIP over TLS stays encrypted\n")
            keylog = None
    try:
        loaded_site = None
        if site is not None:  # a bad site file fails before minutes of analysis, not after
            from core.site import load_site

            loaded_site = load_site(site)
        result, outcomes = _run(files, keylog, progress, loaded_site, named)
        findings = _findings(result, loaded_site, named) if loaded_site is not None else None
    except UpscopeError as exc:
        fail("analyze", str(exc))
        return 2
    code = exit_code(outcomes)
    for o in outcomes:
        if o.message:
            sys.stderr.write(f"upscope analyze: {' '.join(o.message.split())}\n")
    if code == 2:
        return 2
    if findings:
        code = max(code, 1)
    if keylog_problem is not None or keylog is not None:
        from collectors.tls.keylog import undecrypted_sip_tls

        left = undecrypted_sip_tls(result.tls_flows)
        if left:
            if keylog_problem is None:
                sys.stderr.write(f"upscope analyze: warning: --keylog {keylog}: decrypts none of the {left} "
                                 "TLS flow(s) that may carry SIP; their SIP is not in the report\n")
            code = max(code, 1)  # partial: SIP the user asked to see stayed encrypted
    if call is not None and export_pcap is not None:
        from collectors.export import export_call
        from traces.call_export import select_call

        try:
            sel = select_call(result, call)
            with export_pcap.open("wb") as pcap:
                exp = export_call(files, sel, pcap)
        except UpscopeError as exc:
            fail("analyze", str(exc))
            return 2
        except OSError as exc:
            fail("analyze", f"--export-pcap {export_pcap}: {exc.strerror or exc}")
            return 2
        sys.stderr.write(f"upscope analyze: wrote {exp.written} packets of call {call} to {export_pcap}\n")
    name = {Format.JSON: "analysis.json", Format.HTML: "analysis.html", Format.TABLE: "analysis.txt"}[format]
    target = out / name if out is not None else None
    try:
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
        fh: TextIO | None = target.open("w", encoding="utf-8") if target is not None else None
    except OSError as exc:
        fail("analyze", f"--out {out}: {exc.strerror or exc}")
        return 2
    # Writing to stdout is not wrapped in an OSError handler: a closed pipe (`| head`) is the
    # caller's business (a quiet exit 0), never an error about a file.
    with fh if fh is not None else nullcontext(sys.stdout) as stream_cm:
        stream: TextIO = stream_cm
        try:
            if format is Format.JSON:
                # streamed item by item: memory does not grow with the number of calls/streams
                for piece in iter_json(result, findings):
                    stream.write(piece)
            elif format is Format.HTML:
                stream.write(to_html(to_json_dict(result, findings)))
            else:
                from dashboard.terminal import console

                _table(to_json_dict(result, findings), console(stream))
        except OSError as exc:
            if fh is None:
                raise
            fail("analyze", f"--out {out}: {exc.strerror or exc}")
            return 2
    if target is not None:
        sys.stderr.write(f"upscope analyze: report written to {target}\n")
    return code
