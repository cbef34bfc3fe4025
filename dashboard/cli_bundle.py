"""``upscope bundle``: the support bundle, from a running service or from the evidence files.

With ``--url`` the running ``upscope serve`` builds it (``/api/bundle``: live findings, history,
its ring capture). Otherwise the one producer (``collectors.producer``, as ``upscope diagnose``)
runs over the given files and the bundle holds its Snapshot, the redacted site file, one capture per failing call and the
trace-profile checklist. Secrets never enter the zip (redaction plus a scrub of the resolved
values); the command prints only the path and the member count.
"""

from __future__ import annotations

import io
import sys
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

import typer

from collectors.call_messages import read_call_messages, texts_by_call
from collectors.export import export_call
from collectors.producer import NOW_HELP, OfflineFiles, build_snapshot, judgement_times, load_inputs
from core.errors import UpscopeError
from core.snapshot import snapshot_to_dict
from dashboard.cli_site import parse_now
from traces.bundle import build_bundle
from traces.call_export import select_call, select_streams

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


def _offline(files: OfflineFiles, now: str | None) -> bytes:
    inputs = load_inputs(files)
    site_at, evidence_at = judgement_times(parse_now(now) if now is not None else None, inputs.analysis)
    snap = build_snapshot(inputs, site_at, evidence_at)
    analysis = inputs.analysis
    evidence = [*files.captures, *([files.trace_log] if files.trace_log is not None else [])]

    def call_capture(call_id: str) -> bytes | None:
        if analysis is None:
            return None
        buf = io.BytesIO()
        export_call(evidence, select_call(analysis, call_id), buf)
        return buf.getvalue() or None

    def stream_capture(indexes: Sequence[int]) -> bytes | None:
        if analysis is None:
            return None
        buf = io.BytesIO()
        return buf.getvalue() if export_call(evidence, select_streams(analysis, indexes), buf).written else None

    token = (inputs.jwt_text or "").strip()
    secrets = (*(inputs.site.secret_values() if inputs.site else ()), *([token] if token else []))
    ports = (inputs.site.endpoints.connector.port,) if inputs.site is not None else ()

    def call_messages(call_ids: Sequence[str]) -> dict[str, str]:
        wanted = set(call_ids)
        found, _ = read_call_messages(evidence, wanted.__contains__, keylog=files.keylog, tls_ports=ports,
                                      known_secrets=secrets)
        return texts_by_call(found)

    return build_bundle(snapshot_to_dict(snap), site=inputs.site, secrets=secrets, call_capture=call_capture,
                        call_messages=call_messages, stream_capture=stream_capture)


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
        now: str | None = typer.Option(None, "--now", help=NOW_HELP),
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
            files = OfflineFiles(site=site, captures=tuple(capture), trace_log=trace_log, keylog=keylog,
                                 jwt_file=jwt_file)
            data = _from_service(url) if url is not None else _offline(files, now)
            out.write_bytes(data)
        except (UpscopeError, OSError, ValueError) as exc:
            raise _fail(str(exc)) from None
        members = len(zipfile.ZipFile(io.BytesIO(data)).namelist())
        sys.stdout.write(f"{out}: support bundle with {members} files\n")
