"""``upscope check-site SITE.yaml``: validate a site file, derive call numbers, list findings.

Exit codes: 0 = no findings, 1 = findings, 2 = the file (or ``--now``) is invalid. Errors are one
line on stderr, never a traceback and never a secret.
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
from rich.table import Table
from rich.text import Text

from collectors.producer import Inputs, build_snapshot
from core.bandwidth import CODEC_NAMES
from core.errors import ConfigError
from core.site import load_site
from core.site.report import site_report
from dashboard.terminal import console as make_console


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def _fail(message: str) -> typer.Exit:
    # Plain write: rich would wrap a long message over several lines.
    sys.stderr.write(f"upscope check-site: {' '.join(message.split())}\n")
    return typer.Exit(2)


def parse_now(text: str | None) -> datetime:
    """``--now`` as ISO 8601; a value without zone is UTC. None → the current time."""
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--now {text!r} is not an ISO 8601 date-time (e.g. 2026-11-26T12:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _render_table(report: dict[str, Any], console: Console) -> None:
    sysinfo, conn, jwt, lic, bw = (report[k] for k in ("system", "connectivity", "jwt", "licenses", "bandwidth"))
    api = conn["api_key"]
    api_text = "not set" if api is None else (
        f"{api['source']} (fingerprint {api['fingerprint']})" if api["resolvable"]
        else f"{api['source']} (not resolvable here)")
    console.print(Text(f"{sysinfo['name']}: OpenScape Business {sysinfo['model']} {sysinfo['version']}",
                       style="bold"))
    console.print(
        f"Unify Phone {'enabled' if conn['enabled'] else 'DISABLED'} · {conn['domain']} · API key {api_text}\n"
        f"trunk lines {conn['simultaneous_calls']} · upstream {conn['upstream_kbps']} kbps "
        f"(carries {bw['max_calls']} {CODEC_NAMES[bw['codec']]} calls) · numbering {conn['numbering_schema']}"
        + (f" · route location {conn['route_location_number']}" if conn["route_location_number"] else ""),
        highlight=False,
    )
    jwt_line = f"JWT ({jwt['flavour']}): {jwt['status']} — {jwt['reason']}"
    if jwt["fingerprint"]:
        jwt_line += f" (fingerprint {jwt['fingerprint']})"
    if not jwt["required"]:
        jwt_line += " — needed only for Unify Phone for Unify Video"
    support = lic["software_support_until"] or "not recorded"
    console.print(f"{jwt_line}\nSoftware Support until {support}"
                  f" ({'valid' if lic['software_support_valid'] else 'NOT valid'})", highlight=False)

    users = Table(title="Unify Phone users", title_justify="left")
    for col in ("callno", "DID", "name", "call number", "numbering", "licenses"):
        users.add_column(col)
    for u in report["users"]:
        number = u["call_number"] or "—"
        if u["team"]:
            number += f" (team {u['team']})"
        licenses = u["licenses"]
        lic_text = licenses["state"]
        if licenses["missing"]:
            lic_text += ": " + ", ".join(licenses["missing"])
        elif licenses["expired"]:
            lic_text += ": " + ", ".join(licenses["expired"])
        users.add_row(u["callno"], u["did"] or "—", u["name"], number,
                      Text(u["numbering"], style="green" if u["numbering"] == "ok" else "red"),
                      Text(lic_text, style="green" if licenses["state"] == "ok" else "red"))
    console.print(users)

    findings = report["findings"]
    if not findings:
        console.print(Text("No findings.", style="bold green"))
        return
    # One block per finding rather than a wide table: remedies are sentences and must stay readable
    # at 80 columns.
    console.print(Text(f"Findings ({len(findings)})", style="bold"))
    for f in findings:
        head = Text()
        head.append(f"{f['severity'].upper():8} ", style=_SEVERITY_STYLE.get(f["severity"], ""))
        head.append(f"{f['id']}", style="bold")
        head.append(f" — {f['title']}" + (f" [{f['subject']}]" if f["subject"] else ""))
        console.print(head)
        body = Table.grid(padding=(0, 1))
        body.add_column(no_wrap=True, style="dim")
        body.add_column(ratio=1)
        for e in f["evidence"]:
            body.add_row("  evidence", Text(e["text"] + (f" ({e['config_path']})" if e.get("config_path") else "")))
        body.add_row("  remedy", Text(f["remedy"]))
        traces = ", ".join(f["trace_profiles"])
        if f["trace_components"]:
            traces += "; components " + ", ".join(f["trace_components"])
        body.add_row("  traces", Text(traces))
        console.print(body)


def check_site(
    site: Path = typer.Argument(..., help="The site YAML file (schema: examples/site-healthy.yaml).",
                                show_default=False),
    format: Format = typer.Option(Format.TABLE, "--format", "-f", help="Output format."),
    now: str | None = typer.Option(None, "--now", help="Judge at this ISO 8601 time (default: now; no zone = UTC)."),
) -> None:
    """Validate a site file, derive Unify Phone call numbers, list findings with remedies.

    Exit 0 = no findings, 1 = findings, 2 = the site file is invalid.
    """
    try:
        when = parse_now(now)
        loaded = load_site(site)
    except ConfigError as exc:
        # every problem of the file on its own line (up to a limit, then their count)
        for line in exc.lines()[:-1]:
            sys.stderr.write(f"upscope check-site: {' '.join(line.split())}\n")
        raise _fail(exc.lines()[-1]) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    report = site_report(build_snapshot(Inputs(site=loaded), when.timestamp()))
    if format is Format.JSON:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        _render_table(report, make_console())
    raise typer.Exit(1 if report["findings"] else 0)


def register(app: typer.Typer) -> None:
    app.command("check-site")(check_site)
