"""The findings catalogue as a runbook: ``docs/findings.md`` and the Alertmanager remedy template.

Every alert rule of ``deploy/prometheus/rules`` carries a ``runbook_url`` to an anchor of
``docs/findings.md`` (one per finding id, plus one per alert that no finding covers) and a
``finding`` annotation; the Alertmanager templates print the remedy of that finding. Both files are
rendered here from ``core.findings.CATALOGUE``; a test compares the shipped files with this
rendering, so a catalogue change that is not carried over fails the tests. After changing the
catalogue:

    .venv/bin/python -m dashboard.runbook
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from core.findings import CATALOGUE, FindingSpec

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "findings.md"
TEMPLATE = ROOT / "deploy" / "alertmanager" / "templates" / "upscope-remedies.tmpl"
#: Where the alert rules' runbook_url points; docs/fleet.md says how to point it at your copy.
DOCS_URL = "https://upscope.example.net/docs/findings.md"


@dataclass(frozen=True, slots=True)
class RunbookEntry:
    """A runbook anchor for an alert that watches a series rather than a finding."""

    id: str
    title: str
    severity: str
    remedy: str


ALERT_ONLY: tuple[RunbookEntry, ...] = (
    RunbookEntry(
        "alert.tls-certificate-expiring",
        "The connector's TLS certificate expires within 14 days", "warning",
        "The certificate belongs to the Unify Phone telephony connector, not to the OpenScape Business. "
        "Check the system time of the OSBiz and of upscope first (a wrong clock makes a valid certificate look "
        "expired); if the date is right, report the expiry date to Unify Phone support. Once it has expired, "
        "the trunk cannot register over TLS.",
    ),
    RunbookEntry(
        "alert.collector-down",
        "An upscope collector has been down for 5 minutes", "warning",
        "The dashboard's Overview names the collector and its reason. A capture collector needs the rights "
        "to capture on the interface (root or CAP_NET_RAW) and the interface to exist; a trace-log collector "
        "needs the OSBiz trace log to be readable; a probe collector needs its target to resolve. While a "
        "collector is down upscope judges only from the others, so its findings may be missing.",
    ),
    RunbookEntry(
        "alert.calls-failing",
        "More than a fifth of the calls of the last 15 minutes failed", "warning",
        "Open the dashboard's Calls page for the final SIP codes. 503 or 486 from the OSBiz with all trunk "
        "lines in use points at calls.trunk-lines-busy; 403 or 404 at the user's licences, station type or "
        "numbering (calls.license-missing, calls.not-trusted-external-user, calls.numbering-mismatch); a "
        "trunk that is not registered fails every call (this alert is then held back by Alertmanager).",
    ),
)

def _check(text: str, where: str) -> str:
    if "{{" in text or "}}" in text or "§" in text or "\n" in text:
        raise ValueError(f"{where}: text cannot go into the runbook as is: {text!r}")
    return text


def _entry(spec: FindingSpec) -> list[str]:
    traces = spec.traces
    lines = [
        f'<a id="{spec.id}"></a>',
        f"### `{spec.id}`",
        "",
        f"**{_check(spec.title, spec.id)}** — severity {spec.severity.value}; "
        f"symptom: {spec.symptom}.",
        "",
        f"**Remedy:** {_check(spec.remedy, spec.id)}",
        "",
        "**Traces to switch on:** " + (", ".join(p.value for p in traces.profiles) or "none")
        + ("; components " + ", ".join(f"{c.name} level {c.level}" for c in traces.components)
           if traces.components else "") + ".",
        "",
        "**Collect:** " + "; ".join(traces.collect) + ".",
        "",
    ]
    return lines


def findings_markdown() -> str:
    out = [
        "# Findings and their remedies",
        "",
        "Every problem upscope reports is a *finding* with a stable id. This page lists each id with what",
        "it means, the remedy, and the OSBiz traces to switch on before contacting support. The alert",
        "rules (`deploy/prometheus/rules/`) link to these anchors with `runbook_url`, and the Alertmanager",
        "templates (`deploy/alertmanager/templates/`) quote the remedy.",
        "",
        "<!-- Generated from core/findings.py by `python -m dashboard.runbook`; tests fail when it drifts. -->",
        "",
        "| id | severity | title |",
        "|---|---|---|",
    ]
    out += [f"| [`{s.id}`](#{s.id}) | {s.severity.value} | {s.title} |" for s in CATALOGUE.values()]
    out += [f"| [`{e.id}`](#{e.id}) | {e.severity} | {e.title} |" for e in ALERT_ONLY]
    out.append("")
    symptoms: dict[str, list[FindingSpec]] = {}
    for spec in CATALOGUE.values():
        symptoms.setdefault(spec.symptom, []).append(spec)
    for symptom, specs in symptoms.items():
        out += [f"## {symptom[0].upper()}{symptom[1:]}", ""]
        for spec in specs:
            out += _entry(spec)
    out += ["## Alerts without a finding", "",
            "These alerts watch a series of `upscope serve` directly; no finding carries their remedy.", ""]
    for e in ALERT_ONLY:
        out += [f'<a id="{e.id}"></a>', f"### `{e.id}`", "", f"**{e.title}** — severity {e.severity}.", "",
                f"**Remedy:** {_check(e.remedy, e.id)}", ""]
    return "\n".join(out)


def remedies_template() -> str:
    """An Alertmanager (Go text/template) definition: ``{{ template "upscope.remedy" "<id>" }}``."""
    out = [
        "{{/* Generated from core/findings.py by `python -m dashboard.runbook`; do not edit by hand. */}}",
        "{{/* The remedy of a finding id (or of an alert without a finding); empty for an unknown id. */}}",
        '{{ define "upscope.remedy" -}}',
    ]
    entries = [(s.id, s.remedy) for s in CATALOGUE.values()] + [(e.id, e.remedy) for e in ALERT_ONLY]
    for n, (fid, remedy) in enumerate(entries):
        out.append(f'{{{{{"" if n == 0 else "-"} {"if" if n == 0 else "else if"} eq . "{fid}" }}}}{_check(remedy, fid)}')
    out += ["{{- end }}", "{{- end }}", ""]
    return "\n".join(out)


def main() -> None:
    for path, text in ((DOCS, findings_markdown()), (TEMPLATE, remedies_template())):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        sys.stderr.write(f"wrote {path.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
