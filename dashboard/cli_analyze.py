"""``upscope analyze`` (captures, OSBiz trace logs) and ``upscope convert`` (trace log → pcap).

Exit codes of ``analyze``: 0 = every input complete (and, with ``--site``, no findings),
1 = some input damaged but a report was written (``partial``) or findings with ``--site``,
2 = nothing usable (empty, not a capture, a directory, unreadable) or bad options.
Errors are one line on stderr: never a traceback, never a secret.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from core.errors import UpscopeError
from dashboard.analyze_run import Format, analyze
from traces.convert import convert_trace_log


def _fail(cmd: str, message: str, code: int = 2) -> typer.Exit:
    sys.stderr.write(f"upscope {cmd}: {' '.join(message.split())}\n")
    return typer.Exit(code)


def analyze_cmd(
    files: list[Path] = typer.Argument(..., help="pcap / pcapng (optionally gzip-compressed) or OSBiz SIP trace logs."),
    keylog: Path | None = typer.Option(None, "--keylog", help="TLS key log (SSLKEYLOGFILE format) to decrypt SIP over TLS."),
    site: Path | None = typer.Option(None, "--site", help="Site file: also list the findings the evidence supports."),
    format: Format = typer.Option(Format.TABLE, "--format", "-f", help="Report format."),
    out: Path | None = typer.Option(None, "--out", help="Write the report into this directory (analysis.txt/.json/.html)."),
    call: str | None = typer.Option(None, "--call", help="Call-ID of the call to export (with --export-pcap)."),
    export_pcap: Path | None = typer.Option(None, "--export-pcap", help="Write the SIP and RTP of --call to this pcap."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr for long files."),
    connector: str | None = typer.Option(None, "--connector", help="With --site: HOST:PORT of the Unify Phone "
                                         "connector, when not the site file's."),
) -> None:
    """Analyse captures and OSBiz SIP trace logs: SIP, calls, registrations, RTP quality, TLS, STUN."""
    raise typer.Exit(analyze(files, keylog, site, format, out, call, export_pcap, progress, connector))


def convert_cmd(
    trace: Path = typer.Argument(..., help="OSBiz SIP trace log (the (SIP_SA … blocks of the OSBiz SIP trace)."),
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
    if res.messages == 0:
        sys.stderr.write(f"upscope convert: {trace}: no SIP message blocks found; {output} holds no packets\n")
        raise typer.Exit(2)
    sys.stderr.write(f"upscope convert: {res.messages} SIP messages written to {output}\n")
    raise typer.Exit(1 if res.errors or res.skipped_too_big else 0)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_cmd)
    app.command("convert")(convert_cmd)
