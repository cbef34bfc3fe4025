"""``upscope trace-profiles``: the OSBiz trace profiles, trace components and data to collect per
finding, from the one table (``core.trace_profiles``) the findings carry."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from core.findings import CATALOGUE
from core.trace_profiles import TRACE_SETS
from dashboard.cli_diagnose import Format, emit_json, fail
from dashboard.terminal import console as make_console


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
    format: Format = typer.Option(Format.TABLE, "--format", "-f", help="Output format."),
) -> None:
    """The OSBiz trace profiles, trace components + levels and the data to collect, per finding."""
    if finding is not None and finding not in CATALOGUE:
        raise fail("trace-profiles", f"--finding {finding[:80]!r}: unknown finding id (see `upscope trace-profiles`)")
    rows = _profile_rows(finding)
    if format is Format.JSON:
        family_docs = {name: {"why": ts.why, "trace_profiles": [p.value for p in ts.profiles],
                           "trace_components": [{"name": c.name, "level": c.level} for c in ts.components],
                           "collect": list(ts.collect)}
                    for name, ts in TRACE_SETS.items() if finding is None or name == rows[0]["family"]}
        emit_json({"findings": rows, "families": family_docs})
        raise typer.Exit(0)
    # A checklist, grouped by trace family, printed without wrapping: profile names are copied
    # into the OSBiz Assistant as they stand.
    console = make_console(soft_wrap=True)
    console.print(Text("OSBiz traces to switch on", style="bold"))
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
    app.command("trace-profiles")(trace_profiles_cmd)
