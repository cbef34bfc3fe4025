"""``upscope bundle``: the support bundle, from a running service or from the evidence files.

With ``--url`` the running ``upscope serve`` builds it (``/api/bundle``: live findings, history,
its ring capture). Otherwise the same engine as ``upscope diagnose`` runs over the given files and
the bundle holds its report, the redacted site file, one capture per failing call and the
trace-profile checklist. Secrets never enter the zip (redaction plus a scrub of the resolved
values); the command prints only the path and the member count.
"""

from __future__ import annotations

import io
import sys
import urllib.error
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import typer

from collectors.analyze import analyze_files
from collectors.export import export_call
from core.analysis import AnalysisResult
from core.diagnosis import DiagnosisInputs, diagnose
from core.errors import UpscopeError
from core.jwt_status import MAX_TOKEN_CHARS
from core.site import load_site
from core.smallfile import read_small_file
from core.snapshot import Snapshot, snapshot_to_dict
from dashboard.cli_site import parse_now
from traces.bundle import build_bundle
from traces.call_export import select_call

MAX_BUNDLE_BYTES = 512 * 1024 * 1024


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"upscope bundle: {' '.join(message.split())}\n")
    return typer.Exit(2)


def _from_service(url: str) -> bytes:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/bundle", timeout=60) as resp:
            data: bytes = resp.read(MAX_BUNDLE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise UpscopeError(f"{url}: the service answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise UpscopeError(f"{url}: cannot reach the service ({getattr(exc, 'reason', exc)})") from None
    if len(data) > MAX_BUNDLE_BYTES or not zipfile.is_zipfile(io.BytesIO(data)):
        raise UpscopeError(f"{url}: the answer is not a support bundle")
    return data


def _offline(site_path: Path | None, captures: list[Path], trace_log: Path | None, keylog: Path | None,
             jwt_file: Path | None, now: str | None) -> bytes:
    site = load_site(site_path) if site_path is not None else None
    token = None
    if jwt_file is not None:
        token = read_small_file(jwt_file, MAX_TOKEN_CHARS * 4, "--jwt-file", head=True).decode("utf-8", "replace")
    inputs = [*captures, *([trace_log] if trace_log is not None else [])]
    for path in [*inputs, *([keylog] if keylog else [])]:
        if not path.is_file():
            raise UpscopeError(f"{path}: no such file")
    analysis: AnalysisResult | None = None
    if inputs:
        ports = (site.endpoints.connector.port,) if site is not None else ()
        analysis = analyze_files(inputs, keylog=keylog, tls_ports=ports)
        if analysis.packets == 0 and not analysis.sip_messages:
            first = analysis.errors[0].message if analysis.errors else "no packets, no SIP messages"
            raise UpscopeError(f"{', '.join(str(p) for p in inputs)}: nothing usable ({first})")
    # Like `diagnose`: judged at the end of the capture unless --now says otherwise.
    if now is None and analysis is not None and analysis.last_ts is not None:
        when = datetime.fromtimestamp(analysis.last_ts, UTC)
    else:
        when = parse_now(now)
    diag = diagnose(DiagnosisInputs(site=site, analysis=analysis, jwt_token_text=token, now=when))
    snap = Snapshot(now=when.timestamp(),
                    system=site.system.name if site else "unknown", itsp=diag.itsp, findings=diag.findings,
                    analysis=analysis, site=site, extra={"firewall": [v.to_dict() for v in diag.firewall]})

    def call_capture(call_id: str) -> bytes | None:
        if analysis is None:
            return None
        buf = io.BytesIO()
        export_call(inputs, select_call(analysis, call_id), buf)
        return buf.getvalue() or None

    secrets = (*(site.secret_values() if site else ()), *([token.strip()] if token and token.strip() else []))
    return build_bundle(snapshot_to_dict(snap), site=site, secrets=secrets, call_capture=call_capture)


def register(app: typer.Typer) -> None:
    @app.command("bundle")
    def bundle(
        out: Path = typer.Option(..., "--out", "-o", help="Where to write the zip."),
        url: str | None = typer.Option(None, "--url", help="A running `upscope serve`, e.g. http://127.0.0.1:9661."),
        site: Path | None = typer.Option(None, "--site", help="Site file (YAML)."),
        capture: list[Path] = typer.Option([], "--capture", help="Capture file(s) (pcap/pcapng, gzip ok)."),
        trace_log: Path | None = typer.Option(None, "--trace-log", help="OSBiz SIP trace log."),
        keylog: Path | None = typer.Option(None, "--keylog", help="TLS key log (SSLKEYLOGFILE) for SIP/TLS."),
        jwt_file: Path | None = typer.Option(None, "--jwt-file", help="File holding the tenant's JWT."),
        now: str | None = typer.Option(None, "--now", help="Judge at this ISO 8601 time (default: capture end)."),
    ) -> None:
        """Write a support bundle: report (JSON+HTML), findings, redacted site file, failing calls' captures,
        trace-profile checklist, versions. No secret ever enters it.
        """
        offline = site is not None or capture or trace_log is not None or jwt_file is not None
        if url is not None and offline:
            raise _fail("--url takes the bundle from a running service; give either it or evidence files")
        if url is None and not offline:
            raise _fail("give --url of a running `upscope serve`, or --site/--capture/--trace-log/--jwt-file")
        try:
            data = _from_service(url) if url is not None else _offline(site, capture, trace_log, keylog, jwt_file, now)
            out.write_bytes(data)
        except (UpscopeError, OSError, ValueError) as exc:
            raise _fail(str(exc)) from None
        members = len(zipfile.ZipFile(io.BytesIO(data)).namelist())
        sys.stdout.write(f"{out}: support bundle with {members} files\n")
